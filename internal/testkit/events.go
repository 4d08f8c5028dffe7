package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// Issued is one CSR a response carried.
type Issued struct {
	PubMd5     string
	Csr        string
	CommonName string
}

var xmlIssued = regexp.MustCompile(`<PubMd5>([0-9a-f]{32})</PubMd5><Csr>([^<]*)</Csr><CommonName>([^<]*)</CommonName>`)

// IssuedIn finds every CSR in an API body (JSON object, batch, or XML).
func IssuedIn(t testing.TB, body []byte) []Issued {
	t.Helper()
	if m := xmlIssued.FindAllSubmatch(body, -1); m != nil {
		var out []Issued
		for _, g := range m {
			out = append(out, Issued{PubMd5: string(g[1]), Csr: html.UnescapeString(string(g[2])), CommonName: html.UnescapeString(string(g[3]))})
		}
		return out
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil
	}
	var out []Issued
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if c, ok := x["Csr"].(string); ok {
				p, _ := x["PubMd5"].(string)
				cn, _ := x["CommonName"].(string)
				out = append(out, Issued{PubMd5: p, Csr: c, CommonName: cn})
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// Codes lists the Code of each item of a batch body ("" for a success).
func Codes(t testing.TB, body []byte) []string {
	t.Helper()
	var b struct {
		RequestId string
		Results   []struct{ Code, PubMd5 string }
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("not a batch: %v\n%s", err, body)
	}
	if b.RequestId == "" {
		t.Fatalf("batch without RequestId: %s", body)
	}
	out := make([]string, len(b.Results))
	for i, r := range b.Results {
		out[i] = r.Code
	}
	return out
}

// EventFromEnv returns the sample event named by CSRFN_EVENT (set by `make
// invoke-lambda EVENT=…` / `make invoke-fc EVENT=…`, relative to the
// repository root) or def, and whether the caller asked to see the response.
func EventFromEnv(t testing.TB, def string) (path string, show bool) {
	t.Helper()
	if p := os.Getenv("CSRFN_EVENT"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join("..", "..", p)
		}
		return p, true
	}
	return def, false
}

// PrintResponse writes a response between markers the Makefile cuts out.
func PrintResponse(payload []byte) {
	var v any
	if json.Unmarshal(payload, &v) == nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if enc.Encode(v) == nil {
			payload = bytes.TrimSpace(buf.Bytes())
		}
	}
	fmt.Printf("----- response -----\n%s\n----- end -----\n", payload)
}

// ResponseBody is the body of a function's response: the body of an HTTP
// envelope response ({"statusCode": …, "body": …}), else the payload.
func ResponseBody(payload []byte) []byte {
	var h struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	if json.Unmarshal(payload, &h) == nil && h.StatusCode != 0 {
		return []byte(h.Body)
	}
	return payload
}

// CheckInvokedEvent checks the response of an event that TestInvokeEvent
// sent through the real function: every CSR in it passes CheckCSR against
// the file store and master key, and the default event (show false) gave
// exactly one.
func CheckInvokedEvent(t testing.TB, store string, key, payload []byte, show bool) {
	t.Helper()
	body := ResponseBody(payload)
	issued := IssuedIn(t, body)
	for _, is := range issued {
		CheckCSR(t, store, key, is.PubMd5, is.Csr)
	}
	if !show && len(issued) != 1 {
		t.Fatalf("direct-one.json gave %s", payload)
	}
}

// SampleEvents lists the sample events (*.json) in dir, of which there must
// be at least one.
func SampleEvents(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events in %s (%v)", dir, err)
	}
	return files
}

// ReadFile returns the content of the file at path, failing the test when
// it cannot be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CheckIssued checks the CSRs a response body carries: their CommonNames
// are wantCN, in order, and each passes CheckCSR against the file store and
// master key. A non-nil wantCodes also asks for a batch whose items have
// those codes ("" for a success).
func CheckIssued(t testing.TB, store string, key, body []byte, wantCN, wantCodes []string) {
	t.Helper()
	if wantCodes != nil {
		if got := Codes(t, body); !slices.Equal(got, wantCodes) {
			t.Fatalf("batch codes %q, want %q", got, wantCodes)
		}
	}
	var cns []string
	for _, is := range IssuedIn(t, body) {
		cns = append(cns, is.CommonName)
		CheckCSR(t, store, key, is.PubMd5, is.Csr)
	}
	if !slices.Equal(cns, wantCN) {
		t.Fatalf("CSRs for %q, want %q\n%s", cns, wantCN, body)
	}
}
