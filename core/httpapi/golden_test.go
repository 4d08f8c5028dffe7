package httpapi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/service"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// render writes a response as the golden files hold it: the status, every
// header sorted, a blank line, the body. A success body's PubMd5 and Csr
// are random and are replaced by placeholders after their form is checked.
func render(t *testing.T, resp httpapi.Response) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("HTTP " + strconv.Itoa(resp.Status) + "\n")
	var keys []string
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	b.WriteString("\n")
	body := resp.Body
	if resp.Status == http.StatusOK {
		body = mask(t, body)
	}
	b.Write(body)
	return b.Bytes()
}

var (
	xmlMd5 = regexp.MustCompile(`<PubMd5>[0-9a-f]{32}</PubMd5>`)
	xmlCsr = regexp.MustCompile(`<Csr>-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n</Csr>`)
)

func mask(t *testing.T, body []byte) []byte {
	t.Helper()
	if bytes.HasPrefix(body, []byte("<?xml")) {
		if !xmlMd5.Match(body) || !xmlCsr.Match(body) {
			t.Fatalf("XML success body has no well-formed PubMd5 and Csr: %s", body)
		}
		body = xmlMd5.ReplaceAll(body, []byte("<PubMd5>(md5)</PubMd5>"))
		return xmlCsr.ReplaceAll(body, []byte("<Csr>(csr)</Csr>"))
	}
	var v service.Response
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if !md5RE.MatchString(v.PubMd5) || !strings.HasPrefix(v.Csr, "-----BEGIN CERTIFICATE REQUEST-----\n") {
		t.Fatalf("JSON success body has no well-formed PubMd5 and Csr: %s", body)
	}
	v.PubMd5, v.Csr = "(md5)", "(csr)"
	masked := httpapi.EncodeJSON(&v)
	// The masking must not hide a change of field order or encoding.
	reencoded := bytes.Replace(bytes.Replace(masked, []byte("(md5)"), []byte(jsonString(t, body, "PubMd5")), 1), []byte(`"(csr)"`), []byte(jsonRaw(t, body, "Csr")), 1)
	if !bytes.Equal(reencoded, body) {
		t.Fatalf("success body is not in the canonical encoding:\n%s", body)
	}
	return masked
}

func jsonString(t *testing.T, body []byte, field string) string {
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m[field]
}

func jsonRaw(t *testing.T, body []byte, field string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return string(m[field])
}

// TestGolden pins the exact bytes of error bodies (JSON and XML) and of
// the response headers, with the RequestId fixed by the NewID seam.
func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		req  httpapi.Request
		fail bool // use a failing store
	}{
		{"missing_json", httpapi.Request{Method: "GET"}, false},
		{"missing_xml", httpapi.Request{Method: "GET", RawQuery: "Format=XML"}, false},
		{"country_json", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&Country=CHN"}, false},
		{"country_letters_xml", httpapi.Request{Method: "GET", RawQuery: "Format=XML&CommonName=example.com&Country=C1"}, false},
		{"invalid_cn_json", httpapi.Request{Method: "GET", RawQuery: "CommonName=*.co.uk"}, false},
		{"invalid_cn_xml", httpapi.Request{Method: "GET", RawQuery: "Format=XML&CommonName=a*.x.com"}, false},
		{"body_twice_json", httpapi.Request{Method: "POST", RawQuery: "CommonName=a.example.com", Header: ct(ctJSON), Body: []byte(`{"CommonName":"b.example.com"}`)}, false},
		{"body_type_xml", httpapi.Request{Method: "POST", RawQuery: "Format=XML", Header: ct(ctJSON), Body: []byte(`{"CommonName":["example.com"]}`)}, false},
		{"action_json", httpapi.Request{Method: "GET", RawQuery: "Action=Nope"}, false},
		{"action_xml", httpapi.Request{Method: "GET", RawQuery: "Action=Nope&Format=XML"}, false},
		{"method_json", httpapi.Request{Method: "PUT"}, false},
		{"method_xml", httpapi.Request{Method: "DELETE", RawQuery: "Format=XML"}, false},
		{"too_large_json", httpapi.Request{Method: "POST", Body: bytes.Repeat([]byte("x"), 64<<10+1)}, false},
		{"internal_json", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, true},
		{"internal_xml", httpapi.Request{Method: "GET", RawQuery: "Format=XML&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, true},
		{"success_json", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, false},
		{"success_xml", httpapi.Request{Method: "GET", RawQuery: "Format=XML&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, false},
		{"success_alias_xml", httpapi.Request{Method: "GET", RawQuery: "Action=CreateCdnCertificateSigningRequest&Format=XML&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *service.Config) {
				if tc.fail {
					c.Store = failStore{}
				}
			})
			got := render(t, h.serve(tc.req))
			path := filepath.Join("testdata", tc.file+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./core/httpapi -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}
