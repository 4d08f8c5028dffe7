package params_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/csrfn/csrfn/core/params"
)

// fuzzMaxMsg bounds an error message: caller input is echoed truncated.
const fuzzMaxMsg = 512

// fuzzCheckError asserts that err is a *params.Error with a bounded,
// non-empty, valid UTF-8 message.
func fuzzCheckError(t *testing.T, err error) {
	t.Helper()
	var pe *params.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %T %v is not a *params.Error", err, err)
	}
	if pe.Msg == "" || len(pe.Msg) > fuzzMaxMsg || !utf8.ValidString(pe.Msg) {
		t.Fatalf("error message of %d bytes (valid UTF-8: %v), want 1 to %d bytes of UTF-8", len(pe.Msg), utf8.ValidString(pe.Msg), fuzzMaxMsg)
	}
}

// FuzzFromQuery checks FromQuery against net/url: it accepts exactly what
// url.ParseQuery reads without a conflicting repeated name, gives each name
// that single value, and reads back any url.Values that net/url encodes.
func FuzzFromQuery(f *testing.F) {
	for _, s := range [][3]string{
		{"Action=CreateDcdnCertificateSigningRequest&CommonName=example.com&SANs=www.example.com,203.0.113.7", "Country", "CN"},
		{"CommonName=b%C3%BCcher.example&Organization=Acme+Inc&Email=a%40example.com", "SANs", "a.example.com,b.example.com"},
		{"", "", ""},
		{"&&=&&", "", "="},
		{"CommonName", "CommonName", ""},
		{"CommonName=a&CommonName=a", "a&b", "c=d"},
		{"CommonName=a&CommonName=b", "k", "v"},
		{"CommonName=a;Country=CN", "k;", "v;"},
		{"CommonName=%zz", "%", "%25"},
		{"%zz=1", "+", "+ "},
		{"CommonName=%ff%fe", "\xff", "\x00\r\n"},
		{strings.Repeat("K", 1000) + "=1&" + strings.Repeat("K", 1000) + "=2", "é", "日本"},
		{"a=1&a=1&a=2", "Format", "XML"},
		{"=x&=y", "CommonName", "*.example.com"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, raw, key, value string) {
		got, err := params.FromQuery(raw, "query string")
		std, stdErr := url.ParseQuery(raw)
		conflict := false
		for _, vs := range std {
			for _, v := range vs[1:] {
				if v != vs[0] {
					conflict = true
				}
			}
		}
		switch {
		case err != nil:
			fuzzCheckError(t, err)
			if stdErr == nil && !conflict {
				t.Fatalf("FromQuery(%q) refused what url.ParseQuery reads unambiguously: %v", raw, err)
			}
		case stdErr != nil:
			t.Fatalf("FromQuery(%q) accepted what url.ParseQuery refuses (%v)", raw, stdErr)
		case conflict:
			t.Fatalf("FromQuery(%q) accepted a name given twice with different values", raw)
		default:
			if len(got) != len(std) {
				t.Fatalf("FromQuery(%q) = %q; url.ParseQuery = %q", raw, got, std)
			}
			for k, vs := range std {
				if v, ok := got[k]; !ok || v != vs[0] {
					t.Fatalf("FromQuery(%q)[%q] = %q, %v; want %q", raw, k, v, ok, vs[0])
				}
			}
		}

		// Round trip: what net/url encodes reads back exactly.
		vals := url.Values{}
		for k, v := range got {
			vals.Set(k, v)
		}
		vals.Set(key, value)
		enc := vals.Encode()
		back, err := params.FromQuery(enc, "form body")
		if err != nil {
			t.Fatalf("FromQuery(%q) of url.Values.Encode: %v", enc, err)
		}
		want := params.Set{}
		for k, vs := range vals {
			want[k] = vs[0]
		}
		if !maps.Equal(back, want) {
			t.Fatalf("FromQuery(%q) = %q, want %q", enc, back, want)
		}
	})
}

// fuzzTyped are the parameters whose JSON type FromJSON checks (the
// operation's, plus Action and Format).
var fuzzTyped = map[string]bool{
	"Action": true, "Format": true,
	"CommonName": true, "SANs": true, "Organization": true, "OrganizationUnit": true,
	"Country": true, "State": true, "City": true, "Email": true, "KeyAlgorithm": true,
}

// fuzzJSONModel is the contract of FromJSON written plainly: a UTF-8 JSON
// object; each typed parameter a string or null (SANs also an array of
// strings without commas, joined with commas); a repeated name must repeat
// its value; other members are ignored whatever their type.
func fuzzJSONModel(body []byte) (params.Set, bool) {
	if !utf8.Valid(body) || !json.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := params.Set{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key := kt.(string)
		var rawMember json.RawMessage
		if err := dec.Decode(&rawMember); err != nil {
			return nil, false
		}
		var v any
		md := json.NewDecoder(bytes.NewReader(rawMember))
		md.UseNumber()
		if err := md.Decode(&v); err != nil {
			return nil, false
		}
		if !fuzzTyped[key] {
			continue
		}
		// An escaped lone surrogate would decode to a U+FFFD the text
		// never spelt: refused rather than silently changed.
		if enc, _ := json.Marshal(v); bytes.ContainsRune(enc, utf8.RuneError) &&
			!bytes.ContainsRune(rawMember, utf8.RuneError) && !bytes.Contains(bytes.ToLower(rawMember), []byte(`\ufffd`)) {
			return nil, false
		}
		var s string
		switch v := v.(type) {
		case nil:
			continue
		case string:
			s = v
		case []any:
			if key != "SANs" {
				return nil, false
			}
			items := make([]string, len(v))
			for i, it := range v {
				str, ok := it.(string)
				if !ok || strings.Contains(str, ",") {
					return nil, false
				}
				items[i] = str
			}
			s = strings.Join(items, ",")
		default:
			return nil, false
		}
		if old, ok := out[key]; ok && old != s {
			return nil, false
		}
		out[key] = s
	}
	return out, true
}

// fuzzNonStrings reports a typed parameter other than SANs whose value, in
// any of its occurrences, is neither a string nor null.
func fuzzNonStrings(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return ""
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ""
		}
		key := kt.(string)
		raw = bytes.TrimSpace(raw)
		if fuzzTyped[key] && key != "SANs" && raw[0] != '"' && string(raw) != "null" {
			return key
		}
	}
	return ""
}

// FuzzFromJSON checks FromJSON against fuzzJSONModel, that it never accepts
// a non-string for CommonName or another string parameter, and that a Set
// it returns reads back from its own JSON encoding.
func FuzzFromJSON(f *testing.F) {
	for _, s := range []string{
		`{"Action":"CreateDcdnCertificateSigningRequest","CommonName":"example.com","SANs":"www.example.com,203.0.113.7"}`,
		`{"CommonName":"example.com","SANs":["www.example.com","203.0.113.7"],"KeyAlgorithm":"EC_prime256v1"}`,
		`{"CommonName":"b\u00fccher.example","Email":null,"Version":"2018-01-15","OwnerId":123,"Extra":{"a":[1,{}]}}`,
		`{}`, ` { } `, `[]`, `"CommonName"`, `null`, ``, `{`, `{"CommonName":}`,
		`{"CommonName":1}`, `{"CommonName":true}`, `{"CommonName":null}`, `{"CommonName":{"a":"b"}}`,
		`{"CommonName":["example.com"]}`, `{"CommonName":1e999}`, `{"Format":false}`,
		`{"SANs":[]}`, `{"SANs":[1]}`, `{"SANs":["a",null]}`, `{"SANs":[["a"]]}`, `{"SANs":["a,b"]}`, `{"SANs":{}}`,
		`{"CommonName":"a","CommonName":"a"}`, `{"CommonName":"a","CommonName":"b"}`, `{"CommonName":"a","CommonName":null}`,
		`{"SANs":["a","b"],"SANs":"a,b"}`, `{"SANs":"a","SANs":["b"]}`,
		`{"CommonName":"x"} {}`, `{"CommonName":"x"}]`, `{"CommonName":"x",}`,
		"{\"CommonName\":\"\xff\"}", "\xef\xbb\xbf{}", `{"CommonName":"\ud800"}`, `{"CommonName":"\u0000"}`,
		`{"commonname":1,"COMMONNAME":[]}`, `{"CommonName\u0000":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := params.FromJSON(body)
		want, ok := fuzzJSONModel(body)
		if err != nil {
			fuzzCheckError(t, err)
			if ok {
				t.Fatalf("FromJSON(%q) refused a valid parameter object (%q): %v", body, want, err)
			}
			return
		}
		if !ok {
			t.Fatalf("FromJSON(%q) = %q; the contract refuses it", body, got)
		}
		if key := fuzzNonStrings(body); key != "" {
			t.Fatalf("FromJSON(%q) accepted a non-string %s", body, key)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("FromJSON(%q) = %q, want %q", body, got, want)
		}
		for k := range got {
			if !fuzzTyped[k] {
				t.Fatalf("FromJSON(%q) kept the untyped member %q", body, k)
			}
		}
		enc, err := json.Marshal(map[string]string(got))
		if err != nil {
			t.Fatal(err)
		}
		back, err := params.FromJSON(enc)
		if err != nil || !maps.Equal(back, got) {
			t.Fatalf("FromJSON(%s) = %q, %v; want %q", enc, back, err, got)
		}
	})
}
