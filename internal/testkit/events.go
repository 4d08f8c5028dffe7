package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
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
