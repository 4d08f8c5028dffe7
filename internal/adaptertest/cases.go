package adaptertest

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/invoke"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/internal/testkit"
)

// ---------------------------------------------------------------------------
// HTTP requests.

// Ptr returns a pointer to s, for an optional body.
func Ptr(s string) *string { return &s }

// B64 is s in standard base64.
func B64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// FormOfSize is a valid form body of exactly n bytes.
func FormOfSize(n int) string {
	s := "CommonName=limit.example.com&KeyAlgorithm=EC_prime256v1&Pad="
	return s + strings.Repeat("p", n-len(s))
}

// HTTPCase is one HTTP request to an HTTP envelope and its expected answer.
type HTTPCase struct {
	Name        string
	Method      string
	Query       url.Values // decoded; each platform encodes it as it delivers it
	ContentType string     // "" = no Content-Type header
	Body        *string    // nil = no body
	Base64      bool       // the envelope marks the body base64
	Want        Want
}

// MsgMissingCommonName is the message of a request without CommonName.
const MsgMissingCommonName = `The input parameter "CommonName" that is mandatory for processing this request is not supplied.`

// HTTPBodyCases are the requests every HTTP envelope must answer alike:
// base64 bodies, missing and empty bodies, the 64 KiB limit before and
// after base64 decoding, and bodies of the wrong type. A platform adds its
// own refusals (methods, actions) to them.
func HTTPBodyCases() []HTTPCase {
	const limit = apierr.MaxBodyBytes
	tooLarge := strings.Repeat("a", limit+1)
	xml := url.Values{"Format": {"XML"}}
	return []HTTPCase{
		{"base64 JSON", "POST", nil, "application/json", Ptr(B64(`{"CommonName":"B64.Example.com.","KeyAlgorithm":"EC_prime256v1"}`)), true,
			Want{CN: "b64.example.com", SANs: []string{"b64.example.com"}, Alg: keys.ECP256}},
		{"base64 form", "POST", nil, "application/x-www-form-urlencoded", Ptr(B64("CommonName=form.example.com&SANs=a.form.example.com%2C198.51.100.1&KeyAlgorithm=EC_prime256v1")), true,
			Want{CN: "form.example.com", SANs: []string{"form.example.com", "a.form.example.com", "198.51.100.1"}, Alg: keys.ECP256}},
		{"base64 XML answer", "POST", xml, "application/json", Ptr(B64(`{"CommonName":"xml.example.com","KeyAlgorithm":"EC_prime256v1"}`)), true,
			Want{CN: "xml.example.com", Alg: keys.ECP256, XMLRoot: "CreateDcdnCertificateSigningRequestResponse"}},
		{"invalid base64", "POST", nil, "application/json", Ptr("{not base64!}"), true,
			Want{Code: apierr.CodeBody}},
		{"truncated base64", "POST", nil, "application/json", Ptr("eyJDb21tb25OYW1lI"), true,
			Want{Code: apierr.CodeBody}},
		{"missing body", "POST", nil, "", nil, false,
			Want{Code: apierr.CodeMissingParameter, Msg: MsgMissingCommonName}},
		{"empty body GET", "GET", nil, "", Ptr(""), false,
			Want{Code: apierr.CodeMissingParameter, Msg: MsgMissingCommonName}},
		{"empty base64 body", "POST", nil, "application/json", Ptr(""), true,
			Want{Code: apierr.CodeMissingParameter, Msg: MsgMissingCommonName}},
		{"oversize raw", "POST", nil, "application/x-www-form-urlencoded", Ptr(tooLarge), false,
			Want{Code: apierr.CodeTooLarge}},
		{"oversize base64", "POST", nil, "application/x-www-form-urlencoded", Ptr(B64(tooLarge)), true,
			Want{Code: apierr.CodeTooLarge}},
		{"oversize XML error", "POST", xml, "", Ptr(tooLarge), false,
			Want{Code: apierr.CodeTooLarge, XMLRoot: "Error"}},
		{"limit raw", "POST", nil, "application/x-www-form-urlencoded", Ptr(FormOfSize(limit)), false,
			Want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"limit base64", "POST", nil, "application/x-www-form-urlencoded", Ptr(B64(FormOfSize(limit))), true,
			Want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"JSON array body", "POST", nil, "application/json", Ptr(`[{"CommonName":"x.example.com"}]`), false,
			Want{Code: apierr.CodeBody}},
		{"unsupported content type", "POST", nil, "text/plain", Ptr("CommonName=x.example.com"), false,
			Want{Code: apierr.CodeBody}},
	}
}

// ---------------------------------------------------------------------------
// Batches.

// Requests is the batch of items.
func Requests(items ...string) string { return `{"Requests":[` + strings.Join(items, ",") + `]}` }

// BatchItem is a valid batch item.
const BatchItem = `{"CommonName":"x.example.com","KeyAlgorithm":"EC_prime256v1"}`

// TooManyItems is a batch of one item more than invoke.MaxBatch.
func TooManyItems() string {
	many := make([]string, invoke.MaxBatch+1)
	for i := range many {
		many[i] = BatchItem
	}
	return Requests(many...)
}

// Item is one item of a batch and its expected outcome.
type Item struct {
	Payload string
	Want    Want
}

// Wrap is one way a platform delivers a payload to its function: as is,
// or inside an event of some trigger.
type Wrap struct {
	Name string
	Wrap func(payload string) string
}

// Direct is the Wrap.Wrap of a direct invocation: the payload as is.
func Direct(payload string) string { return payload }

// CheckBatches sends the batch of items through each wrapping, on a fresh
// harness each (a subtest), and checks the answer with CheckBatch.
func (a Adapter) CheckBatches(t *testing.T, wraps []Wrap, items []Item) {
	t.Helper()
	var payloads []string
	var wants []Want
	for _, it := range items {
		payloads = append(payloads, it.Payload)
		wants = append(wants, it.Want)
	}
	for _, w := range wraps {
		t.Run(w.Name, func(t *testing.T) {
			h := New(t, a)
			out := h.HandleOK("pid-batch", []byte(w.Wrap(Requests(payloads...))))
			h.CheckBatch("pid-batch", out, wants)
		})
	}
}

// RefusedBatch is a payload that the batch rules refuse as a whole.
type RefusedBatch struct{ Name, Payload string }

// RefusedBatches are the batches every adapter refuses as a whole: too
// many items, no items, and Requests beside the parameters of one
// request. A platform adds the refusals of its own wrappings.
func RefusedBatches() []RefusedBatch {
	return []RefusedBatch{
		{"101 items", TooManyItems()},
		{"empty Requests", `{"Requests":[]}`},
		{"null Requests", `{"Requests":null}`},
		{"Requests and CommonName", `{"Requests":[` + BatchItem + `],"CommonName":"y.example.com"}`},
	}
}

// CheckRefusedBatches sends RefusedBatches and the platform's own refused
// batches, each in a parallel subtest on a fresh harness, and checks the
// answers with CheckRefusedBatch.
func (a Adapter) CheckRefusedBatches(t *testing.T, own ...RefusedBatch) {
	t.Helper()
	for _, c := range append(RefusedBatches(), own...) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			h := New(t, a)
			h.CheckRefusedBatch(h.HandleOK("pid-batch", []byte(c.Payload)))
		})
	}
}

// ConcurrentItems are n good batch items, n0.example.com to
// n<n-1>.example.com, for CheckConcurrentBatch.
func ConcurrentItems(n int) []string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"CommonName":"n%d.example.com","KeyAlgorithm":"EC_prime256v1"}`, i)
	}
	return items
}

// CheckConcurrentBatch sends a batch of ConcurrentItems(20), wrapped by
// wrap, and checks it with Harness.CheckConcurrentBatch.
func (a Adapter) CheckConcurrentBatch(t *testing.T, wrap func(payload string) string) {
	t.Helper()
	h := New(t, a)
	out := h.HandleOK("pid-20", []byte(wrap(Requests(ConcurrentItems(20)...))))
	h.CheckConcurrentBatch("pid-20", out, 20)
}

// ---------------------------------------------------------------------------
// Sample events.

// Prefix is a naming rule of sample files: a name that starts with Prefix
// holds an event of envelope kind Kind.
type Prefix[K any] struct {
	Prefix string
	Kind   K
}

// KindByPrefix returns the kind of the first rule whose Prefix starts name.
func KindByPrefix[K any](name string, rules []Prefix[K]) (K, bool) {
	for _, r := range rules {
		if strings.HasPrefix(name, r.Prefix) {
			return r.Kind, true
		}
	}
	var zero K
	return zero, false
}

// ForEachSample runs check, as a parallel subtest, on every sample event
// (*.json) in dir, and asserts that there is at least one and that every
// name wants has an entry for is among them.
func ForEachSample[W any](t *testing.T, dir string, wants map[string]W, check func(t *testing.T, name string, payload []byte)) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range testkit.SampleEvents(t, dir) {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, name, testkit.ReadFile(t, f))
		})
	}
	for name := range wants {
		if !seen[name] {
			t.Errorf("sampleWants has %s, which is not in %s", name, dir)
		}
	}
}
