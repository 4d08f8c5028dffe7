package params_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/params"
)

func TestFromQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want params.Set
	}{
		{"empty", "", params.Set{}},
		{"one", "CommonName=example.com", params.Set{"CommonName": "example.com"}},
		{"escapes", "CommonName=b%C3%BCcher.example&SANs=a.example.com%2Cb.example.com", params.Set{"CommonName": "bücher.example", "SANs": "a.example.com,b.example.com"}},
		{"plus is space", "Organization=Acme+Inc", params.Set{"Organization": "Acme Inc"}},
		{"empty pairs skipped", "&&CommonName=x&&", params.Set{"CommonName": "x"}},
		{"no equals", "CommonName", params.Set{"CommonName": ""}},
		{"same value twice", "CommonName=x&CommonName=x", params.Set{"CommonName": "x"}},
		{"case-sensitive names", "commonname=a&CommonName=b", params.Set{"commonname": "a", "CommonName": "b"}},
		{"common parameters kept", "Action=CreateDcdnCertificateSigningRequest&Version=2018-01-15&AccessKeyId=k",
			params.Set{"Action": "CreateDcdnCertificateSigningRequest", "Version": "2018-01-15", "AccessKeyId": "k"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := params.FromQuery(tc.raw, "query string")
			if err != nil {
				t.Fatalf("FromQuery(%q) error: %v", tc.raw, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("FromQuery(%q) = %v, want %v", tc.raw, got, tc.want)
			}
		})
	}
}

func TestFromQueryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		msg  string // a fragment of the message
	}{
		{"twice different", "CommonName=a.com&CommonName=b.com", `The parameter "CommonName" is given more than once with different values (query string).`},
		{"twice different empty", "Country=CN&Country=", `"Country" is given more than once`},
		{"semicolon", "CommonName=a;b", "semicolon"},
		{"bad escape in value", "CommonName=%zz", `not valid URL encoding in parameter "CommonName"`},
		{"bad escape in key", "Common%zzName=x", "not valid URL encoding near"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := params.FromQuery(tc.raw, "query string")
			if err == nil {
				t.Fatalf("FromQuery(%q) = %v, want an error", tc.raw, got)
			}
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *params.Error", err)
			}
			if !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", pe.Msg, tc.msg)
			}
		})
	}
}

func TestFromQueryWhere(t *testing.T) {
	t.Parallel()
	_, err := params.FromQuery("A=1&A=2", "form body")
	if err == nil || !strings.Contains(err.Error(), "(form body)") {
		t.Errorf("error = %v, want it to name the form body", err)
	}
}

func TestFromJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want params.Set
	}{
		{"empty object", `{}`, params.Set{}},
		{"strings", `{"CommonName":"example.com","Country":"cn"}`, params.Set{"CommonName": "example.com", "Country": "cn"}},
		{"SANs array", `{"SANs":["a.example.com"," b.example.com ",""]}`, params.Set{"SANs": "a.example.com, b.example.com ,"}},
		{"SANs empty array", `{"SANs":[]}`, params.Set{"SANs": ""}},
		{"SANs string", `{"SANs":"a.example.com,b.example.com"}`, params.Set{"SANs": "a.example.com,b.example.com"}},
		{"null is absent", `{"CommonName":"x","Email":null,"SANs":null}`, params.Set{"CommonName": "x"}},
		{"untyped ignored whatever type", `{"CommonName":"x","Extra":{"a":[1,2]},"Version":5,"OwnerId":123}`, params.Set{"CommonName": "x"}},
		{"same value twice", `{"CommonName":"x","CommonName":"x"}`, params.Set{"CommonName": "x"}},
		{"escapes", `{"CommonName":"b\u00fccher.example"}`, params.Set{"CommonName": "bücher.example"}},
		{"whitespace", " \n{ \"CommonName\" : \"x\" }\n ", params.Set{"CommonName": "x"}},
		{"Action and Format typed", `{"Action":"CreateCdnCertificateSigningRequest","Format":"XML"}`, params.Set{"Action": "CreateCdnCertificateSigningRequest", "Format": "XML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := params.FromJSON([]byte(tc.body))
			if err != nil {
				t.Fatalf("FromJSON(%s) error: %v", tc.body, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("FromJSON(%s) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

func TestFromJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		msg  string
	}{
		{"not JSON", `CommonName=x`, "The body is not valid JSON"},
		{"truncated", `{"CommonName":"x"`, "The body is not valid JSON"},
		{"trailing comma", `{"CommonName":"x",}`, "The body is not valid JSON"},
		{"empty", ``, "The body is not valid JSON"},
		{"array", `["CommonName"]`, "The body must be a JSON object of parameters."},
		{"string", `"x"`, "The body must be a JSON object of parameters."},
		{"data after", `{"CommonName":"x"} {}`, "The body holds data after the JSON object."},
		{"invalid UTF-8", "{\"CommonName\":\"\xff\"}", "The body is not valid UTF-8."},
		{"number", `{"CommonName":5}`, `The parameter "CommonName" must be a JSON string.`},
		{"bool", `{"Country":true}`, `The parameter "Country" must be a JSON string.`},
		{"object", `{"Email":{}}`, `The parameter "Email" must be a JSON string.`},
		{"array for string param", `{"CommonName":["a"]}`, `The parameter "CommonName" must be a JSON string.`},
		{"number for KeyAlgorithm", `{"KeyAlgorithm":2048}`, `The parameter "KeyAlgorithm" must be a JSON string.`},
		{"number for Format", `{"Format":1}`, `The parameter "Format" must be a JSON string.`},
		{"SANs number", `{"SANs":1}`, `The parameter "SANs" must be a string or an array of strings.`},
		{"SANs array of numbers", `{"SANs":[1,2]}`, `The parameter "SANs" must be a string or an array of strings.`},
		{"SANs array with null", `{"SANs":["a",null]}`, `The parameter "SANs" must be a string or an array of strings.`},
		{"SANs nested array", `{"SANs":[["a"]]}`, `The parameter "SANs" must be a string or an array of strings.`},
		{"SANs item with comma", `{"SANs":["a.com,b.com"]}`, `An item of parameter "SANs" holds a comma; give one name per item.`},
		{"twice different", `{"CommonName":"a","CommonName":"b"}`, `The parameter "CommonName" is given more than once with different values (JSON body).`},
		{"SANs twice different", `{"SANs":["a"],"SANs":"b"}`, `The parameter "SANs" is given more than once with different values (JSON body).`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := params.FromJSON([]byte(tc.body))
			if err == nil {
				t.Fatalf("FromJSON(%s) = %v, want an error", tc.body, got)
			}
			var pe *params.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *params.Error", err)
			}
			if !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", pe.Msg, tc.msg)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	a := params.Set{"CommonName": "x", "Format": "XML"}
	b := params.Set{"CommonName": "x", "Country": "CN"}
	got, err := params.Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := params.Set{"CommonName": "x", "Format": "XML", "Country": "CN"}
	if !maps.Equal(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
	if len(a) != 2 || len(b) != 2 {
		t.Errorf("Merge modified its inputs: %v %v", a, b)
	}
	if got, err := params.Merge(nil, b); err != nil || !maps.Equal(got, b) {
		t.Errorf("Merge(nil, b) = %v, %v", got, err)
	}

	_, err = params.Merge(params.Set{"CommonName": "a"}, params.Set{"CommonName": "b"})
	var pe *params.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Merge of a conflict: error %v, want a *params.Error", err)
	}
	if want := `The parameter "CommonName" is given more than once with different values (query string and body).`; pe.Msg != want {
		t.Errorf("message %q, want %q", pe.Msg, want)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	s := params.Set{"A": "1"}
	if s.Get("A") != "1" || s.Get("B") != "" {
		t.Errorf("Get: %q %q", s.Get("A"), s.Get("B"))
	}
	var nilSet params.Set
	if nilSet.Get("A") != "" {
		t.Error("Get on a nil Set")
	}
}
