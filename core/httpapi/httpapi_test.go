package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/testkit"
)

const fixedID = "0AEDAF20-4DDF-4165-8750-47FF9C1929C9"

// harness is a Binding over a real file store and a real local sealer.
type harness struct {
	dir     string
	store   *keystore.File
	sealer  *seal.Local
	logs    *testkit.SyncBuffer
	binding *httpapi.Binding
}

func newHarness(t *testing.T, edit func(*service.Config)) *harness {
	t.Helper()
	h := &harness{dir: filepath.Join(t.TempDir(), "store"), logs: &testkit.SyncBuffer{}}
	var err error
	h.store, err = keystore.OpenFile(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.store.Close() })
	mk := make([]byte, seal.MasterKeySize)
	rand.Read(mk)
	h.sealer, err = seal.NewLocal(mk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{
		Store:  h.store,
		Sealer: h.sealer,
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil)),
		Now:    func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) },
		NewID:  func() string { return fixedID },
	}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.binding = &httpapi.Binding{Service: svc}
	return h
}

func (h *harness) serve(req httpapi.Request) httpapi.Response {
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if req.Host == "" {
		req.Host = "csrfn.example"
	}
	return h.binding.Serve(context.Background(), req)
}

func (h *harness) files(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func ct(v string) http.Header { return http.Header{"Content-Type": {v}} }

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

// errBody decodes a JSON error body, insisting on exactly its four fields.
func errBody(t *testing.T, resp httpapi.Response) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatalf("error body is not a JSON object of strings: %v\n%s", err, resp.Body)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "Code,HostId,Message,RequestId" {
		t.Errorf("error body fields %v, want RequestId HostId Code Message", keys)
	}
	return m
}

func TestServeErrors(t *testing.T) {
	t.Parallel()
	missingCN := `The input parameter "CommonName" that is mandatory for processing this request is not supplied.`
	big := bytes.Repeat([]byte("a"), 64<<10+1)
	tests := []struct {
		name   string
		req    httpapi.Request
		status int
		code   string
		msg    string // exact, unless contains is set
		frag   bool   // msg is a fragment
	}{
		{"no parameters", httpapi.Request{Method: "GET"}, 400, "MissingParameter", missingCN, false},
		{"blank CommonName in query", httpapi.Request{Method: "GET", RawQuery: "CommonName=%20%20"}, 400, "MissingParameter", missingCN, false},
		{"empty CommonName in JSON", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":""}`)}, 400, "MissingParameter", missingCN, false},
		{"null CommonName in JSON", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":null}`)}, 400, "MissingParameter", missingCN, false},
		{"blank CommonName in form", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: []byte(`CommonName=+`)}, 400, "MissingParameter", missingCN, false},
		{"Country of 3", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&Country=CHN"}, 400, "InvalidValue.Malformed", "Country must be 2 characters.", false},
		{"Country with digit", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&Country=C1"}, 400, "InvalidValue.Malformed", "Country must be an ISO 3166-1 alpha-2 code (two ASCII letters).", false},
		{"wildcard above com", httpapi.Request{Method: "GET", RawQuery: "CommonName=*.com"}, 400, "InvalidParameter",
			`The specified value of parameter "CommonName" is not valid. "*.com" is a wildcard directly above the public suffix "com".`, false},
		{"bad SAN", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","SANs":["a.example.com","*.*.example.com"]}`)}, 400, "InvalidParameter",
			`The specified value of parameter "SANs" is not valid. `, true},
		{"bad KeyAlgorithm", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&KeyAlgorithm=RSA_1024"}, 400, "InvalidParameter",
			`The specified value of parameter "KeyAlgorithm" is not valid. Use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1.`, false},
		{"bad Format", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&Format=YAML"}, 400, "InvalidParameter",
			`The specified value of parameter "Format" is not valid. Use JSON or XML.`, false},
		{"bad JSON", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":`)}, 400, "InvalidParameter.Body", "The body is not valid JSON", true},
		{"JSON not an object", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`["example.com"]`)}, 400, "InvalidParameter.Body", "The body must be a JSON object of parameters.", false},
		{"JSON number", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":42}`)}, 400, "InvalidParameter.Body", `The parameter "CommonName" must be a JSON string.`, false},
		{"JSON bool", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","Country":true}`)}, 400, "InvalidParameter.Body", `The parameter "Country" must be a JSON string.`, false},
		{"JSON SANs object", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","SANs":{"a":1}}`)}, 400, "InvalidParameter.Body", `The parameter "SANs" must be a string or an array of strings.`, false},
		{"JSON SANs numbers", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","SANs":[1]}`)}, 400, "InvalidParameter.Body", `The parameter "SANs" must be a string or an array of strings.`, false},
		{"twice in query", httpapi.Request{Method: "GET", RawQuery: "CommonName=a.example.com&CommonName=b.example.com"}, 400, "InvalidParameter.Body",
			`The parameter "CommonName" is given more than once with different values (query string).`, false},
		{"twice in form body", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: []byte("CommonName=a.example.com&CommonName=b.example.com")}, 400, "InvalidParameter.Body",
			`The parameter "CommonName" is given more than once with different values (form body).`, false},
		{"twice in JSON body", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"a.example.com","CommonName":"b.example.com"}`)}, 400, "InvalidParameter.Body",
			`The parameter "CommonName" is given more than once with different values (JSON body).`, false},
		{"query and JSON body differ", httpapi.Request{Method: "POST", RawQuery: "CommonName=a.example.com", Header: ct(ctJSON), Body: []byte(`{"CommonName":"b.example.com"}`)}, 400, "InvalidParameter.Body",
			`The parameter "CommonName" is given more than once with different values (query string and body).`, false},
		{"query and form body differ", httpapi.Request{Method: "POST", RawQuery: "Country=CN", Header: ct(ctForm), Body: []byte("CommonName=example.com&Country=DE")}, 400, "InvalidParameter.Body",
			`The parameter "Country" is given more than once with different values (query string and body).`, false},
		{"semicolon in query", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com;Country=CN"}, 400, "InvalidParameter.Body", "semicolon", true},
		{"bad escape in query", httpapi.Request{Method: "GET", RawQuery: "CommonName=%zz"}, 400, "InvalidParameter.Body", "not valid URL encoding", true},
		{"unsupported content type", httpapi.Request{Method: "POST", Header: ct("text/plain"), Body: []byte("CommonName=example.com")}, 400, "InvalidParameter.Body",
			`The Content-Type "text/plain" is not supported; send parameters in the query string, as application/x-www-form-urlencoded or as application/json.`, false},
		{"multipart", httpapi.Request{Method: "POST", Header: ct("multipart/form-data; boundary=x"), Body: []byte("--x\r\n")}, 400, "InvalidParameter.Body", `"multipart/form-data" is not supported`, true},
		{"unparseable content type", httpapi.Request{Method: "POST", Header: ct("application/json; ;;"), Body: []byte(`{}`)}, 400, "InvalidParameter.Body", "cannot be parsed", true},
		{"JSON body declared as form", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: []byte(`{"CommonName":"example.com"}`)}, 400, "MissingParameter", missingCN, false},
		{"bad base64", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte("{not base64}"), Base64: true}, 400, "InvalidParameter.Body",
			"The body is marked base64-encoded but is not valid base64.", false},
		{"unknown action", httpapi.Request{Method: "GET", RawQuery: "Action=DescribeDcdnDomainDetail&CommonName=example.com"}, 404, "InvalidAction.NotFound",
			"Specified api is not found, please check your url and method.", false},
		{"unknown action in JSON", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"Action":"SetDcdnDomainCSRCertificate"}`)}, 404, "InvalidAction.NotFound",
			"Specified api is not found, please check your url and method.", false},
		{"PUT", httpapi.Request{Method: "PUT", RawQuery: "CommonName=example.com"}, 405, "UnsupportedHTTPMethod", `The HTTP method "PUT" is not supported; use GET or POST.`, false},
		{"raw body over 64 KiB", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: big}, 413, "RequestEntityTooLarge",
			"The request body exceeds the limit of 65536 bytes (64 KiB).", false},
		{"base64 body over 64 KiB", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: []byte(base64.StdEncoding.EncodeToString(big)), Base64: true}, 413, "RequestEntityTooLarge",
			"The request body exceeds the limit of 65536 bytes (64 KiB).", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			resp := h.serve(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			b := errBody(t, resp)
			if b["Code"] != tc.code {
				t.Errorf("Code %q, want %q", b["Code"], tc.code)
			}
			if tc.frag && !strings.Contains(b["Message"], tc.msg) || !tc.frag && b["Message"] != tc.msg {
				t.Errorf("Message\n got  %q\n want %q", b["Message"], tc.msg)
			}
			if b["RequestId"] != fixedID || b["HostId"] != "csrfn.example" {
				t.Errorf("RequestId %q HostId %q", b["RequestId"], b["HostId"])
			}
			assertHeaders(t, resp, "application/json; charset=utf-8")
			if got := resp.Header.Get("Allow"); (tc.status == 405) != (got == "GET, POST") {
				t.Errorf("Allow header %q for status %d", got, tc.status)
			}
			if got := h.files(t); len(got) != 0 {
				t.Errorf("a refused request stored %q", got)
			}
			lines := h.logs.JSONLines(t)
			if len(lines) != 1 || lines[0]["Code"] != tc.code || lines[0]["Status"] != float64(tc.status) || lines[0]["RequestId"] != fixedID {
				t.Errorf("log lines %v", lines)
			}
		})
	}
}

func assertHeaders(t *testing.T, resp httpapi.Response, contentType string) {
	t.Helper()
	if got := resp.Header.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type %q, want %q", got, contentType)
	}
	if got := resp.Header.Values("Cache-Control"); !slices.Equal(got, []string{"no-store"}) {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := resp.Header.Get("X-Acs-Request-Id"); got == "" {
		t.Error("no X-Acs-Request-Id")
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, m := range []string{"PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "get", ""} {
		resp := h.serve(httpapi.Request{Method: m, RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1"})
		if resp.Status != 405 {
			t.Errorf("%q: status %d, want 405", m, resp.Status)
			continue
		}
		if got := resp.Header.Get("Allow"); got != "GET, POST" {
			t.Errorf("%q: Allow %q", m, got)
		}
		b := errBody(t, resp)
		if b["Code"] != "UnsupportedHTTPMethod" || !strings.Contains(b["Message"], "GET") || !strings.Contains(b["Message"], "POST") {
			t.Errorf("%q: body %v does not name the allowed methods", m, b)
		}
	}
	// The caller's Format is honoured for a 405 too.
	resp := h.serve(httpapi.Request{Method: "DELETE", RawQuery: "Format=XML"})
	if resp.Status != 405 || resp.Header.Get("Content-Type") != "application/xml; charset=utf-8" || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("XML 405: %d %v", resp.Status, resp.Header)
	}
	if got := h.files(t); len(got) != 0 {
		t.Errorf("stored %q", got)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	// A JSON body of exactly n bytes: padded with spaces inside the object.
	jsonBody := func(n int) []byte {
		b := []byte(`{"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`)
		pad := bytes.Repeat([]byte(" "), n-len(b))
		return append(append([]byte{'{'}, pad...), b[1:]...)
	}
	tests := []struct {
		name   string
		body   []byte
		b64    bool
		status int
	}{
		{"raw at the limit", jsonBody(64 << 10), false, 200},
		{"raw one over", jsonBody(64<<10 + 1), false, 413},
		{"base64 at the limit", []byte(base64.StdEncoding.EncodeToString(jsonBody(64 << 10))), true, 200},
		{"base64 one over", []byte(base64.StdEncoding.EncodeToString(jsonBody(64<<10 + 1))), true, 413},
		{"base64 with surrounding whitespace", []byte("\n " + base64.StdEncoding.EncodeToString(jsonBody(100)) + " \n"), true, 200},
		{"base64 text far over", bytes.Repeat([]byte("QUFB"), 30000), true, 413},
		{"base64 invalid and over", bytes.Repeat([]byte("!"), 100000), true, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			resp := h.serve(httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: tc.body, Base64: tc.b64})
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %.200s", resp.Status, tc.status, resp.Body)
			}
			if tc.status == 413 {
				b := errBody(t, resp)
				if b["Code"] != "RequestEntityTooLarge" || !strings.Contains(b["Message"], "64 KiB") {
					t.Errorf("body %v", b)
				}
			}
		})
	}
}

type okBody struct {
	RequestId, PubMd5, Csr, CommonName string
}

// decodeOK decodes a JSON success body, insisting on exactly its fields.
func decodeOK(t *testing.T, resp httpapi.Response) okBody {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(resp.Body, &m); err != nil {
		t.Fatalf("success body: %v\n%s", err, resp.Body)
	}
	if len(m) != 4 {
		t.Errorf("success body fields %v, want RequestId PubMd5 Csr CommonName", m)
	}
	return okBody{m["RequestId"], m["PubMd5"], m["Csr"], m["CommonName"]}
}

var md5RE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestServeSuccess(t *testing.T) {
	t.Parallel()
	b64 := func(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }
	tests := []struct {
		name string
		req  httpapi.Request
		cn   string
		sans []string
	}{
		{"GET query", httpapi.Request{Method: "GET", RawQuery: "CommonName=Example.COM&SANs=www.example.com,192.0.2.1&KeyAlgorithm=EC_prime256v1"},
			"example.com", []string{"example.com", "www.example.com", "192.0.2.1"}},
		{"POST query only", httpapi.Request{Method: "POST", RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, "example.com", []string{"example.com"}},
		{"POST form", httpapi.Request{Method: "POST", Header: ct(ctForm + "; charset=utf-8"), Body: []byte("CommonName=b%C3%BCcher.example&SANs=www.b%C3%BCcher.example&KeyAlgorithm=EC_prime256v1")},
			"xn--bcher-kva.example", []string{"xn--bcher-kva.example", "www.xn--bcher-kva.example"}},
		{"POST form without Content-Type", httpapi.Request{Method: "POST", Body: []byte("CommonName=example.com&KeyAlgorithm=EC_prime256v1")}, "example.com", []string{"example.com"}},
		{"POST JSON", httpapi.Request{Method: "POST", Header: ct("application/json; charset=utf-8"), Body: []byte(`{"CommonName":"example.com.","SANs":"a.example.com, ,A.EXAMPLE.com,","KeyAlgorithm":"EC_prime256v1"}`)},
			"example.com", []string{"example.com", "a.example.com"}},
		{"POST JSON SANs array", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","SANs":["www.example.com","example.com","2001:DB8::1"],"KeyAlgorithm":"EC_prime256v1"}`)},
			"example.com", []string{"www.example.com", "example.com", "2001:db8::1"}},
		{"POST +json type", httpapi.Request{Method: "POST", Header: ct("application/vnd.api+json"), Body: []byte(`{"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`)}, "example.com", []string{"example.com"}},
		{"POST JSON without Content-Type", httpapi.Request{Method: "POST", Body: []byte(` {"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`)}, "example.com", []string{"example.com"}},
		{"base64 JSON", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: b64(`{"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`), Base64: true}, "example.com", []string{"example.com"}},
		{"base64 form", httpapi.Request{Method: "POST", Header: ct(ctForm), Body: b64("CommonName=example.com&KeyAlgorithm=EC_prime256v1"), Base64: true}, "example.com", []string{"example.com"}},
		{"base64 empty body", httpapi.Request{Method: "POST", RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1", Body: nil, Base64: true}, "example.com", []string{"example.com"}},
		{"query and body merged", httpapi.Request{Method: "POST", RawQuery: "CommonName=example.com", Header: ct(ctJSON), Body: []byte(`{"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`)},
			"example.com", []string{"example.com"}},
		{"same value twice", httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, "example.com", []string{"example.com"}},
		{"common parameters ignored", httpapi.Request{Method: "GET", RawQuery: "Action=CreateDcdnCertificateSigningRequest&Version=2018-01-15&AccessKeyId=LTAI&Signature=abc%3D&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2024-01-01T00%3A00%3A00Z&RegionId=cn-hangzhou&OwnerId=1&CommonName=example.com&KeyAlgorithm=EC_prime256v1&Format=JSON"},
			"example.com", []string{"example.com"}},
		{"alias action", httpapi.Request{Method: "GET", RawQuery: "Action=CreateCdnCertificateSigningRequest&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, "example.com", []string{"example.com"}},
		{"IP CommonName", httpapi.Request{Method: "GET", RawQuery: "CommonName=::ffff:192.0.2.9&KeyAlgorithm=EC_secp384r1"}, "192.0.2.9", []string{"192.0.2.9"}},
		{"wildcard CommonName", httpapi.Request{Method: "GET", RawQuery: "CommonName=*.Example.com&KeyAlgorithm=EC_prime256v1"}, "*.example.com", []string{"*.example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *service.Config) { c.NewID = nil })
			resp := h.serve(tc.req)
			if resp.Status != 200 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			assertHeaders(t, resp, "application/json; charset=utf-8")
			b := decodeOK(t, resp)
			if b.RequestId != resp.Header.Get("X-Acs-Request-Id") {
				t.Errorf("RequestId %q, header %q", b.RequestId, resp.Header.Get("X-Acs-Request-Id"))
			}
			if !regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`).MatchString(b.RequestId) {
				t.Errorf("RequestId %q is not an upper-case UUID v4", b.RequestId)
			}
			if b.CommonName != tc.cn || !md5RE.MatchString(b.PubMd5) {
				t.Errorf("CommonName %q PubMd5 %q", b.CommonName, b.PubMd5)
			}
			if !strings.HasSuffix(b.Csr, "-----END CERTIFICATE REQUEST-----\n") {
				t.Error("Csr is not newline-terminated PEM")
			}
			if strings.Contains(string(resp.Body), `\u003c`) || strings.Contains(string(resp.Body), `\u0026`) {
				t.Error("JSON body is HTML-escaped")
			}
			data, err := h.store.Load(context.Background(), record.Name(b.PubMd5))
			if err != nil {
				t.Fatalf("no record for the returned PubMd5: %v", err)
			}
			rec, err := record.Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rec.SANs, tc.sans) || rec.Csr != b.Csr || rec.RequestId != b.RequestId {
				t.Errorf("record SANs %q (want %q), or Csr/RequestId differ", rec.SANs, tc.sans)
			}
			lines := h.logs.JSONLines(t)
			if len(lines) != 1 || lines[0]["PubMd5"] != b.PubMd5 || lines[0]["Status"] != float64(200) || lines[0]["RequestId"] != b.RequestId {
				t.Errorf("log lines %v", lines)
			}
		})
	}
}

// TestRequestIDsFresh checks that each request gets its own RequestId.
func TestRequestIDsFresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *service.Config) { c.NewID = nil })
	a := h.serve(httpapi.Request{Method: "GET"})
	b := h.serve(httpapi.Request{Method: "GET"})
	ida, idb := a.Header.Get("X-Acs-Request-Id"), b.Header.Get("X-Acs-Request-Id")
	if ida == idb || errBody(t, a)["RequestId"] != ida || errBody(t, b)["RequestId"] != idb {
		t.Errorf("ids %q %q", ida, idb)
	}
}

type xmlOK struct {
	XMLName    xml.Name
	RequestId  string
	PubMd5     string
	Csr        string
	CommonName string
}

type xmlErr struct {
	XMLName   xml.Name
	RequestId string
	HostId    string
	Code      string
	Message   string
}

func TestServeXML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  httpapi.Request
		root string
	}{
		{"query", httpapi.Request{Method: "GET", RawQuery: "Format=XML&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, "CreateDcdnCertificateSigningRequestResponse"},
		{"lower case in JSON body", httpapi.Request{Method: "POST", Header: ct(ctJSON), Body: []byte(`{"Format":"xml","CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`)}, "CreateDcdnCertificateSigningRequestResponse"},
		{"alias", httpapi.Request{Method: "GET", RawQuery: "Action=CreateCdnCertificateSigningRequest&Format=XML&CommonName=example.com&KeyAlgorithm=EC_prime256v1"}, "CreateCdnCertificateSigningRequestResponse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			resp := h.serve(tc.req)
			if resp.Status != 200 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			assertHeaders(t, resp, "application/xml; charset=utf-8")
			if !bytes.HasPrefix(resp.Body, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
				t.Errorf("no XML declaration: %.60s", resp.Body)
			}
			var v xmlOK
			if err := xml.Unmarshal(resp.Body, &v); err != nil {
				t.Fatal(err)
			}
			if v.XMLName.Local != tc.root {
				t.Errorf("root <%s>, want <%s>", v.XMLName.Local, tc.root)
			}
			if v.RequestId != fixedID || v.CommonName != "example.com" || !md5RE.MatchString(v.PubMd5) {
				t.Errorf("XML response %+v", v)
			}
			block, rest := pem.Decode([]byte(v.Csr))
			if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 || !strings.HasSuffix(v.Csr, "\n") {
				t.Fatal("Csr is not one newline-terminated PEM CERTIFICATE REQUEST")
			}
			if _, err := x509.ParseCertificateRequest(block.Bytes); err != nil {
				t.Error(err)
			}
			if _, err := h.store.Load(context.Background(), record.Name(v.PubMd5)); err != nil {
				t.Errorf("no record: %v", err)
			}
		})
	}

	h := newHarness(t, nil)
	resp := h.serve(httpapi.Request{Method: "GET", RawQuery: "Format=XML&Country=CHN&CommonName=example.com"})
	if resp.Status != 400 {
		t.Fatalf("status %d", resp.Status)
	}
	assertHeaders(t, resp, "application/xml; charset=utf-8")
	var e xmlErr
	if err := xml.Unmarshal(resp.Body, &e); err != nil {
		t.Fatal(err)
	}
	if e != (xmlErr{XMLName: xml.Name{Local: "Error"}, RequestId: fixedID, HostId: "csrfn.example", Code: "InvalidValue.Malformed", Message: "Country must be 2 characters."}) {
		t.Errorf("XML error %+v", e)
	}
}

func TestHostID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.binding.HostID = "cdn.aliyuncs.com"
	if got := errBody(t, h.serve(httpapi.Request{Method: "GET"}))["HostId"]; got != "cdn.aliyuncs.com" {
		t.Errorf("HostId %q with Binding.HostID set", got)
	}
	h.binding.HostID = ""
	resp := h.binding.Serve(context.Background(), httpapi.Request{Method: "GET", Header: http.Header{}})
	if got := errBody(t, resp)["HostId"]; got != "csrfn" {
		t.Errorf("HostId %q without any host, want csrfn", got)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-t0ken-for-tests-9d8c7b6a"
	h := newHarness(t, nil)
	h.binding.Authorize = httpapi.BearerToken(token)
	tests := []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"none", "", 401, "MissingToken"},
		{"basic", "Basic dXNlcjpwYXNz", 401, "MissingToken"},
		{"no token", "Bearer", 401, "MissingToken"},
		{"wrong", "Bearer nope", 401, "InvalidToken"},
		{"prefix of it", "Bearer " + token[:10], 401, "InvalidToken"},
		{"right", "Bearer " + token, 200, ""},
		{"scheme case", "bearer " + token, 200, ""},
	}
	for _, tc := range tests {
		hdr := http.Header{}
		if tc.auth != "" {
			hdr.Set("Authorization", tc.auth)
		}
		resp := h.serve(httpapi.Request{Method: "GET", RawQuery: "CommonName=example.com&KeyAlgorithm=EC_prime256v1", Header: hdr})
		if resp.Status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, resp.Status, tc.status)
			continue
		}
		if bytes.Contains(resp.Body, []byte(token)) {
			t.Errorf("%s: the body shows the token", tc.name)
		}
		if tc.status == 401 {
			if got := errBody(t, resp)["Code"]; got != tc.code {
				t.Errorf("%s: Code %q, want %q", tc.name, got, tc.code)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate", tc.name)
			}
		}
	}
	// Unauthorised callers learn nothing else: not even the method check.
	resp := h.serve(httpapi.Request{Method: "PUT"})
	if resp.Status != 401 {
		t.Errorf("unauthorised PUT: %d, want 401", resp.Status)
	}
	if strings.Contains(h.logs.String(), token) {
		t.Error("the log shows the token")
	}
}

type failStore struct{}

func (failStore) Create(context.Context, string, []byte) error {
	return errors.New("store exploded: INTERNAL-DETAIL")
}

func TestServeInternalError(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"JSON", "XML"} {
		h := newHarness(t, func(c *service.Config) { c.Store = failStore{} })
		resp := h.serve(httpapi.Request{Method: "GET", RawQuery: "Format=" + format + "&CommonName=example.com&KeyAlgorithm=EC_prime256v1"})
		if resp.Status != 500 {
			t.Fatalf("%s: status %d", format, resp.Status)
		}
		for _, bad := range []string{"INTERNAL-DETAIL", "BEGIN", "Csr", "PubMd5"} {
			if bytes.Contains(resp.Body, []byte(bad)) {
				t.Errorf("%s: the 5xx body carries %q", format, bad)
			}
		}
		if !bytes.Contains(resp.Body, []byte("The request processing has failed due to backend service exception.")) || !bytes.Contains(resp.Body, []byte("Internal.Error")) {
			t.Errorf("%s: body %s", format, resp.Body)
		}
		l := h.logs.JSONLines(t)
		if len(l) != 1 || !strings.Contains(l[0]["Cause"].(string), "INTERNAL-DETAIL") || l[0]["RequestId"] != fixedID || l[0]["level"] != "ERROR" {
			t.Errorf("%s: log %v", format, l)
		}
	}
}

// TestServeHTTP drives the net/http entry point.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)

	rec := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/?Format=XML", strings.NewReader(`{"CommonName":"example.com","KeyAlgorithm":"EC_prime256v1"}`))
	r.Header.Set("Content-Type", ctJSON)
	h.binding.ServeHTTP(rec, r)
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/xml; charset=utf-8" ||
		rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("X-Acs-Request-Id") != fixedID {
		t.Errorf("ServeHTTP: %d %v", rec.Code, rec.Header())
	}

	rec = httptest.NewRecorder()
	h.binding.ServeHTTP(rec, httptest.NewRequest("POST", "/", bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20))))
	if rec.Code != 413 {
		t.Errorf("1 MiB body: %d, want 413", rec.Code)
	}

	rec = httptest.NewRecorder()
	h.binding.ServeHTTP(rec, httptest.NewRequest("POST", "/", io.MultiReader(strings.NewReader("CommonName="), errReader{})))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "InvalidParameter.Body") {
		t.Errorf("unreadable body: %d %s", rec.Code, rec.Body)
	}

	rec = httptest.NewRecorder()
	h.binding.ServeHTTP(rec, httptest.NewRequest("DELETE", "/", nil))
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, POST" {
		t.Errorf("DELETE: %d %v", rec.Code, rec.Header())
	}
	if n := len(h.logs.JSONLines(t)); n != 4 {
		t.Errorf("%d log lines for 4 requests", n)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// TestOverLoopback serves the binding on a 127.0.0.1 listener and checks
// what a real client receives.
func TestOverLoopback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	srv := httptest.NewUnstartedServer(h.binding)
	srv.Start() // httptest listens on 127.0.0.1
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("server on %s, want 127.0.0.1", srv.URL)
	}
	resp, err := srv.Client().Post(srv.URL+"/?KeyAlgorithm=EC_prime256v1", ctForm, strings.NewReader("CommonName=example.com"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Acs-Request-Id") != fixedID {
		t.Errorf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	req, _ := http.NewRequest("PUT", srv.URL, nil)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestEncodeJSON(t *testing.T) {
	t.Parallel()
	got := string(httpapi.EncodeJSON(map[string]string{"Message": `a <b> & "c"`}))
	if got != `{"Message":"a <b> & \"c\""}`+"\n" {
		t.Errorf("EncodeJSON = %q", got)
	}
}
