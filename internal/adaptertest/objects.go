package adaptertest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/invoke"
	"github.com/csrfn/csrfn/core/service"
)

// Object is an API object (a success or an error) as an adapter returned
// it, decoded from JSON or XML.
type Object struct {
	Root       string   // XML root element; "" for JSON
	Keys       []string // field names, sorted
	RequestId  string
	HostId     string
	Code       string
	Message    string
	PubMd5     string
	Csr        string
	CommonName string
}

// set records field k with value v.
func (o *Object) set(k, v string) {
	o.Keys = append(o.Keys, k)
	fields := map[string]*string{
		"RequestId": &o.RequestId, "HostId": &o.HostId, "Code": &o.Code, "Message": &o.Message,
		"PubMd5": &o.PubMd5, "Csr": &o.Csr, "CommonName": &o.CommonName,
	}
	if p, ok := fields[k]; ok {
		*p = v
	}
}

// DecodeJSONObject decodes a JSON API object whose fields are all strings.
func DecodeJSONObject(t testing.TB, raw []byte) Object {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("API object is not a JSON object: %v: %.300s", err, raw)
	}
	var o Object
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Errorf("field %s is not a string: %s", k, v)
		}
		o.set(k, s)
	}
	sort.Strings(o.Keys)
	return o
}

// DecodeXMLObject decodes an XML API object: the XML declaration, a root
// element and one level of text elements.
func DecodeXMLObject(t testing.TB, raw []byte) Object {
	t.Helper()
	if !bytes.HasPrefix(raw, []byte(xml.Header)) {
		t.Errorf("XML body does not start with the XML declaration: %.80q", raw)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var o Object
	depth := 0
	var cur string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("XML body: %v: %.300s", err, raw)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				o.Root = tk.Name.Local
			case 2:
				cur = tk.Name.Local
				text.Reset()
			default:
				t.Errorf("XML body nests deeper than two levels: %s", tk.Name.Local)
			}
		case xml.CharData:
			if depth == 2 {
				text.Write(tk)
			}
		case xml.EndElement:
			if depth == 2 {
				o.set(cur, text.String())
			}
			depth--
		}
	}
	sort.Strings(o.Keys)
	return o
}

// StatusOf is the HTTP status of an API code ("" for a success).
func StatusOf(code string) int {
	switch {
	case code == "":
		return 200
	case code == apierr.CodeActionNotFound:
		return 404
	case code == apierr.CodeUnsupportedHTTPMethod:
		return 405
	case code == apierr.CodeTooLarge:
		return 413
	case strings.HasPrefix(code, "Internal."):
		return 500
	}
	return 400
}

// Statuses are the HTTP statuses of objs' codes.
func Statuses(objs []Object) []int {
	out := make([]int, len(objs))
	for i, o := range objs {
		out[i] = StatusOf(o.Code)
	}
	return out
}

var requestIDRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

// DirectObject checks that out, an adapter's output, is the API object of
// one request, and decodes it.
func DirectObject(t testing.TB, out any) Object {
	t.Helper()
	switch out.(type) {
	case *service.Response, *service.ErrorBody:
	default:
		t.Fatalf("output is %T, want *service.Response or *service.ErrorBody", out)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeJSONObject(t, raw)
}

// IsBatch reports whether out, an adapter's output, is a batch.
func IsBatch(out any) bool { _, ok := out.(*invoke.Batch); return ok }

// BatchObjects checks that out, an adapter's output, is
// {RequestId, Results:[…]}, and decodes it.
func BatchObjects(t testing.TB, out any) (string, []Object) {
	t.Helper()
	if !IsBatch(out) {
		t.Fatalf("output is %T, want *invoke.Batch", out)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return DecodeBatch(t, raw)
}

// DecodeBatch decodes the JSON of a batch, insisting on exactly RequestId
// (an upper-case UUID v4) and Results.
func DecodeBatch(t testing.TB, raw []byte) (string, []Object) {
	t.Helper()
	var b map[string]json.RawMessage
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("batch is not a JSON object: %v: %.300s", err, raw)
	}
	if len(b) != 2 || b["RequestId"] == nil || b["Results"] == nil {
		t.Fatalf("batch fields: %.300s; want RequestId and Results", raw)
	}
	var id string
	var items []json.RawMessage
	if err := json.Unmarshal(b["RequestId"], &id); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b["Results"], &items); err != nil {
		t.Fatal(err)
	}
	if !requestIDRE.MatchString(id) {
		t.Errorf("batch RequestId %q is not an upper-case UUID v4", id)
	}
	objs := make([]Object, len(items))
	for i, it := range items {
		objs[i] = DecodeJSONObject(t, it)
	}
	return id, objs
}

// HTTPResult is an HTTP response an adapter returned, whatever the
// platform's response type.
type HTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// Header turns single-value response headers into an http.Header.
func Header(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// JSONFields marshals out, an adapter's output, as the runtime will send it,
// and returns the JSON and its top-level fields.
func JSONFields(t testing.TB, out any) (raw []byte, fields map[string]json.RawMessage) {
	t.Helper()
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	return raw, fields
}
