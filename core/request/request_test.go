package request_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
)

// set builds a parameter set from name/value pairs.
func set(kv ...string) params.Set {
	s := params.Set{}
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i]] = kv[i+1]
	}
	return s
}

const invalidPrefix = `The specified value of parameter "%s" is not valid.`

func invalid(name, reason string) string {
	return fmt.Sprintf(invalidPrefix, name) + " " + reason
}

// hostList returns n distinct host names under example.net.
func hostList(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d.example.net", i)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	missingCN := `The input parameter "CommonName" that is mandatory for processing this request is not supplied.`
	cn65 := strings.Repeat("a", 61) + ".com"
	san254 := strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 62)
	tests := []struct {
		name   string
		p      params.Set
		code   string
		status int
		msg    string
	}{
		{"CommonName absent", set("SANs", "a.example.com"), "MissingParameter", 400, missingCN},
		{"CommonName empty", set("CommonName", ""), "MissingParameter", 400, missingCN},
		{"CommonName blank", set("CommonName", "  \t "), "MissingParameter", 400, missingCN},
		{"CommonName above public suffix", set("CommonName", "*.com"), "InvalidParameter", 400,
			invalid("CommonName", `"*.com" is a wildcard directly above the public suffix "com".`)},
		{"CommonName above co.uk", set("CommonName", "*.co.uk"), "InvalidParameter", 400,
			invalid("CommonName", `"*.co.uk" is a wildcard directly above the public suffix "co.uk".`)},
		{"CommonName partial wildcard", set("CommonName", "a*.x.com"), "InvalidParameter", 400,
			invalid("CommonName", `"a*.x.com" is not a valid name: a wildcard is allowed only as the whole leftmost label (*.example.com).`)},
		{"CommonName double wildcard", set("CommonName", "*.*.x.com"), "InvalidParameter", 400,
			invalid("CommonName", `"*.*.x.com" is not a valid name: a wildcard is allowed only as the whole leftmost label (*.example.com).`)},
		{"CommonName 65 octets", set("CommonName", cn65), "InvalidParameter", 400,
			invalid("CommonName", `"`+cn65+`" is 65 octets long after conversion; the limit is 64.`)},
		{"CommonName label with hyphen", set("CommonName", "-a.example.com"), "InvalidParameter", 400,
			invalid("CommonName", `"-a.example.com" is not a valid host name (invalid label "-a").`)},
		{"CommonName bad IP", set("CommonName", "2001:db8::zz"), "InvalidParameter", 400,
			invalid("CommonName", `"2001:db8::zz" is not a valid IP address.`)},
		{"SANs above public suffix", set("CommonName", "example.com", "SANs", "a.example.com,*.co.uk"), "InvalidParameter", 400,
			invalid("SANs", `"*.co.uk" is a wildcard directly above the public suffix "co.uk".`)},
		{"SANs 254 octets", set("CommonName", "example.com", "SANs", san254), "InvalidParameter", 400,
			invalid("SANs", `"`+san254[:80]+`…" is not a valid host name: 254 octets long; the limit is 253.`)},
		{"SANs label of 64", set("CommonName", "example.com", "SANs", strings.Repeat("x", 64)+".com"), "InvalidParameter", 400,
			invalid("SANs", `"`+strings.Repeat("x", 64)+`.com" is not a valid host name: the label "`+strings.Repeat("x", 64)+`" is 64 octets long; the limit is 63.`)},
		{"SANs 101 names", set("CommonName", "example.com", "SANs", strings.Join(hostList(100), ",")), "InvalidParameter", 400,
			invalid("SANs", "A CSR holds at most 100 names, the CommonName included; 101 were given.")},
		{"Country 3", set("CommonName", "example.com", "Country", "CHN"), "InvalidValue.Malformed", 400, "Country must be 2 characters."},
		{"Country 1", set("CommonName", "example.com", "Country", "C"), "InvalidValue.Malformed", 400, "Country must be 2 characters."},
		{"Country digit", set("CommonName", "example.com", "Country", "C1"), "InvalidValue.Malformed", 400,
			"Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
		{"Country non-ASCII", set("CommonName", "example.com", "Country", "中国"), "InvalidValue.Malformed", 400,
			"Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
		{"Country punctuation", set("CommonName", "example.com", "Country", "C-"), "InvalidValue.Malformed", 400,
			"Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
		{"Organization 65", set("CommonName", "example.com", "Organization", strings.Repeat("o", 65)), "InvalidParameter", 400,
			invalid("Organization", "It is 65 characters long; the limit is 64.")},
		{"OrganizationUnit 65", set("CommonName", "example.com", "OrganizationUnit", strings.Repeat("é", 65)), "InvalidParameter", 400,
			invalid("OrganizationUnit", "It is 65 characters long; the limit is 64.")},
		{"OrganizationUnit control", set("CommonName", "example.com", "OrganizationUnit", "Ops\nDev"), "InvalidParameter", 400,
			invalid("OrganizationUnit", "It must not contain control characters.")},
		{"Organization NUL", set("CommonName", "example.com", "Organization", "A\x00B"), "InvalidParameter", 400,
			invalid("Organization", "It must not contain control characters.")},
		{"State 129", set("CommonName", "example.com", "State", strings.Repeat("s", 129)), "InvalidParameter", 400,
			invalid("State", "It is 129 characters long; the limit is 128.")},
		{"City bad UTF-8", set("CommonName", "example.com", "City", "Hang\xffzhou"), "InvalidParameter", 400,
			invalid("City", "It must be valid UTF-8.")},
		{"City C1 control", set("CommonName", "example.com", "City", "Hang\u0085zhou"), "InvalidParameter", 400,
			invalid("City", "It must not contain control characters.")},
		{"Email not an address", set("CommonName", "example.com", "Email", "not-an-address"), "InvalidParameter", 400,
			invalid("Email", "It must be one address such as name@example.com, without a display name or angle brackets.")},
		{"Email display name", set("CommonName", "example.com", "Email", "Admin <admin@example.com>"), "InvalidParameter", 400,
			invalid("Email", "It must be a plain ASCII address such as name@example.com.")},
		{"Email angle brackets", set("CommonName", "example.com", "Email", "<admin@example.com>"), "InvalidParameter", 400,
			invalid("Email", "It must be one address such as name@example.com, without a display name or angle brackets.")},
		{"Email two", set("CommonName", "example.com", "Email", "a@example.com,b@example.com"), "InvalidParameter", 400,
			invalid("Email", "It must be one address such as name@example.com, without a display name or angle brackets.")},
		{"Email non-ASCII", set("CommonName", "example.com", "Email", "ü@example.com"), "InvalidParameter", 400,
			invalid("Email", "It must be a plain ASCII address such as name@example.com.")},
		{"Email 129", set("CommonName", "example.com", "Email", strings.Repeat("a", 64)+"@"+strings.Repeat("b", 60)+".com"), "InvalidParameter", 400,
			invalid("Email", "It is 129 characters long; the limit is 128.")},
		{"KeyAlgorithm unknown", set("CommonName", "example.com", "KeyAlgorithm", "RSA_1024"), "InvalidParameter", 400,
			invalid("KeyAlgorithm", "Use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1.")},
		{"KeyAlgorithm case", set("CommonName", "example.com", "KeyAlgorithm", "rsa_2048"), "InvalidParameter", 400,
			invalid("KeyAlgorithm", "Use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1.")},
		{"KeyAlgorithm P-521", set("CommonName", "example.com", "KeyAlgorithm", "EC_secp521r1"), "InvalidParameter", 400,
			invalid("KeyAlgorithm", "Use one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1.")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := request.Parse(tc.p, request.SeedDefaults)
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *apierr.Error", err)
			}
			if ae.Code != tc.code || ae.Status != tc.status {
				t.Errorf("code %s status %d, want %s %d", ae.Code, ae.Status, tc.code, tc.status)
			}
			if ae.Message != tc.msg {
				t.Errorf("message\n got  %q\n want %q", ae.Message, tc.msg)
			}
			if ae.Status != http.StatusBadRequest || ae.Server() {
				t.Errorf("status %d: a rule violation is the caller's fault", ae.Status)
			}
		})
	}
}

func TestParseInvalidPrefix(t *testing.T) {
	t.Parallel()
	// Every InvalidParameter message starts with the contract's sentence
	// naming the parameter.
	for _, name := range []string{"CommonName", "SANs", "Organization", "OrganizationUnit", "State", "City", "Email", "KeyAlgorithm"} {
		p := set("CommonName", "example.com", name, strings.Repeat("\x01", 200))
		if name == "CommonName" {
			p[name] = "*.com"
		}
		_, err := request.Parse(p, request.SeedDefaults)
		if !errors.Is(err, apierr.ErrInvalidParameter) {
			t.Errorf("%s: error %v, want InvalidParameter", name, err)
			continue
		}
		prefix := fmt.Sprintf(`The specified value of parameter "%s" is not valid. `, name)
		if msg := apierr.As(err).Message; !strings.HasPrefix(msg, prefix) {
			t.Errorf("%s: message %q does not start with %q", name, msg, prefix)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	seed := csr.Subject{Country: "CN", State: "Zhejiang", City: "Hangzhou", Organization: "Alibaba Inc", OrganizationUnit: "Aliyun CDN", CommonName: "example.com"}
	custom := request.Defaults{Organization: "Acme", OrganizationUnit: "Web", Country: "DE", State: "Berlin", City: "Berlin"}
	tests := []struct {
		name string
		p    params.Set
		d    request.Defaults
		want csr.Subject
	}{
		{"absent", set("CommonName", "example.com"), request.SeedDefaults, seed},
		{"empty", set("CommonName", "example.com", "Organization", "", "OrganizationUnit", "", "Country", "", "State", "", "City", "", "Email", "", "KeyAlgorithm", ""), request.SeedDefaults, seed},
		{"blank", set("CommonName", "example.com", "Organization", " ", "OrganizationUnit", "\t", "Country", "  ", "State", " ", "City", " ", "Email", " "), request.SeedDefaults, seed},
		{"custom defaults", set("CommonName", "example.com"), custom,
			csr.Subject{Country: "DE", State: "Berlin", City: "Berlin", Organization: "Acme", OrganizationUnit: "Web", CommonName: "example.com"}},
		{"given values", set("CommonName", "Example.COM.", "Organization", "Example Ltd", "OrganizationUnit", "IT", "Country", "us", "State", "California", "City", "San Francisco", "Email", "admin@example.com"), request.SeedDefaults,
			csr.Subject{Country: "US", State: "California", City: "San Francisco", Organization: "Example Ltd", OrganizationUnit: "IT", CommonName: "example.com", Email: "admin@example.com"}},
		{"values trimmed", set("CommonName", " example.com ", "Organization", " Example Ltd ", "Country", " us ", "Email", " admin@example.com "), request.SeedDefaults,
			csr.Subject{Country: "US", State: "Zhejiang", City: "Hangzhou", Organization: "Example Ltd", OrganizationUnit: "Aliyun CDN", CommonName: "example.com", Email: "admin@example.com"}},
		{"limits in characters", set("CommonName", "example.com", "Organization", strings.Repeat("阿", 64), "State", strings.Repeat("é", 128), "City", strings.Repeat("c", 128)), request.SeedDefaults,
			csr.Subject{Country: "CN", State: strings.Repeat("é", 128), City: strings.Repeat("c", 128), Organization: strings.Repeat("阿", 64), OrganizationUnit: "Aliyun CDN", CommonName: "example.com"}},
		{"UTF-8 text", set("CommonName", "example.com", "City", "杭州", "Organization", "阿里巴巴"), request.SeedDefaults,
			csr.Subject{Country: "CN", State: "Zhejiang", City: "杭州", Organization: "阿里巴巴", OrganizationUnit: "Aliyun CDN", CommonName: "example.com"}},
		{"email at 128", set("CommonName", "example.com", "Email", strings.Repeat("a", 64)+"@"+strings.Repeat("b", 59)+".com"), request.SeedDefaults,
			csr.Subject{Country: "CN", State: "Zhejiang", City: "Hangzhou", Organization: "Alibaba Inc", OrganizationUnit: "Aliyun CDN", CommonName: "example.com",
				Email: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 59) + ".com"}},
		{"common parameters ignored", set("CommonName", "example.com", "Version", "2018-01-15", "AccessKeyId", "x", "Signature", "y", "SignatureMethod", "HMAC-SHA1",
			"SignatureNonce", "z", "SignatureVersion", "1.0", "Timestamp", "2024-01-01T00:00:00Z", "RegionId", "cn-hangzhou", "OwnerId", "1", "Format", "XML"), request.SeedDefaults, seed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := request.Parse(tc.p, tc.d)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Subject != tc.want {
				t.Errorf("Subject\n got  %+v\n want %+v", r.Subject, tc.want)
			}
			if r.CommonName != tc.want.CommonName {
				t.Errorf("CommonName %q, want %q", r.CommonName, tc.want.CommonName)
			}
			if r.KeyAlgorithm != keys.RSA2048 {
				t.Errorf("KeyAlgorithm %q, want the default RSA_2048", r.KeyAlgorithm)
			}
		})
	}
}

func TestParseKeyAlgorithm(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1"} {
		r, err := request.Parse(set("CommonName", "example.com", "KeyAlgorithm", v), request.SeedDefaults)
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if string(r.KeyAlgorithm) != v {
			t.Errorf("KeyAlgorithm %q, want %q", r.KeyAlgorithm, v)
		}
	}
	r, err := request.Parse(set("CommonName", "example.com", "KeyAlgorithm", " EC_prime256v1 "), request.SeedDefaults)
	if err != nil || r.KeyAlgorithm != keys.ECP256 {
		t.Errorf("padded value: %q %v", r.KeyAlgorithm, err)
	}
}

// sanValues returns the SAN values of r.
func sanValues(r request.Request) []string {
	out := make([]string, len(r.SANs))
	for i, n := range r.SANs {
		out[i] = n.Value
	}
	return out
}

func TestParseSANs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cn     string
		sans   string
		wantCN string
		want   []string
	}{
		{"CN only", "example.com", "", "example.com", []string{"example.com"}},
		{"CN added first", "example.com", "www.example.com,api.example.com", "example.com", []string{"example.com", "www.example.com", "api.example.com"}},
		{"CN listed keeps caller order", "example.com", "www.example.com,example.com", "example.com", []string{"www.example.com", "example.com"}},
		{"CN listed in other case", "Example.com", "www.example.com,EXAMPLE.COM.", "example.com", []string{"www.example.com", "example.com"}},
		{"duplicates case-insensitive, first kept", "example.com", "b.example.com,B.EXAMPLE.COM,a.example.com,b.example.com.", "example.com", []string{"example.com", "b.example.com", "a.example.com"}},
		{"empty items ignored", "example.com", ",a.example.com,, ,b.example.com,", "example.com", []string{"example.com", "a.example.com", "b.example.com"}},
		{"spaces trimmed", "example.com", "  a.example.com ,\tb.example.com  ", "example.com", []string{"example.com", "a.example.com", "b.example.com"}},
		{"IDN", "bücher.example", "www.bücher.example", "xn--bcher-kva.example", []string{"xn--bcher-kva.example", "www.xn--bcher-kva.example"}},
		{"IDN CN listed as A-label", "bücher.example", "xn--bcher-kva.example", "xn--bcher-kva.example", []string{"xn--bcher-kva.example"}},
		{"wildcard CN", "*.example.com", "example.com", "*.example.com", []string{"*.example.com", "example.com"}},
		{"IPs", "192.0.2.1", "2001:DB8::1,198.51.100.7", "192.0.2.1", []string{"192.0.2.1", "2001:db8::1", "198.51.100.7"}},
		{"IP CN listed as v4-mapped", "192.0.2.1", "2001:DB8::1,::ffff:192.0.2.1,198.51.100.7", "192.0.2.1", []string{"2001:db8::1", "192.0.2.1", "198.51.100.7"}},
		{"IPv6 CN canonical", "2001:0db8:0:0::1", "", "2001:db8::1", []string{"2001:db8::1"}},
		{"mixed", "example.com", "192.0.2.1,*.example.com,2001:db8::2", "example.com", []string{"example.com", "192.0.2.1", "*.example.com", "2001:db8::2"}},
		{"CN trailing dot", "example.com.", "", "example.com", []string{"example.com"}},
		{"SAN of 253 octets", "example.com", strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61), "example.com",
			[]string{"example.com", strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61)}},
		{"CN of 64 octets", strings.Repeat("c", 60) + ".com", "", strings.Repeat("c", 60) + ".com", []string{strings.Repeat("c", 60) + ".com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := set("CommonName", tc.cn)
			if tc.sans != "" {
				p["SANs"] = tc.sans
			}
			r, err := request.Parse(p, request.SeedDefaults)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.CommonName != tc.wantCN || r.Subject.CommonName != tc.wantCN {
				t.Errorf("CommonName %q (subject %q), want %q", r.CommonName, r.Subject.CommonName, tc.wantCN)
			}
			if got := sanValues(r); !slices.Equal(got, tc.want) {
				t.Errorf("SANs\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

func TestParseSANKinds(t *testing.T) {
	t.Parallel()
	r, err := request.Parse(set("CommonName", "*.example.com", "SANs", "192.0.2.1,example.com"), request.SeedDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := []names.Kind{names.Wildcard, names.IP, names.DNS}
	for i, n := range r.SANs {
		if n.Kind != want[i] {
			t.Errorf("SAN %d %q kind %d, want %d", i, n.Value, n.Kind, want[i])
		}
	}
	if !r.SANs[1].Addr.Is4() {
		t.Errorf("IP SAN Addr %v is not IPv4", r.SANs[1].Addr)
	}
}

func TestParseSANsJSONArray(t *testing.T) {
	t.Parallel()
	p, err := params.FromJSON([]byte(`{"CommonName":"example.com","SANs":["www.example.com"," API.example.com ","","192.0.2.1","www.example.com"]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := request.Parse(p, request.SeedDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"example.com", "www.example.com", "api.example.com", "192.0.2.1"}
	if got := sanValues(r); !slices.Equal(got, want) {
		t.Errorf("SANs %q, want %q", got, want)
	}
}

func TestParseNameLimit(t *testing.T) {
	t.Parallel()
	hosts := hostList(100)
	upper := make([]string, len(hosts))
	for i, h := range hosts {
		upper[i] = strings.ToUpper(h)
	}
	tests := []struct {
		name string
		cn   string
		sans []string
		n    int // want this many names; 0 means an error
	}{
		{"CN and 99", "example.com", hosts[:99], 100},
		{"CN and 100", "example.com", hosts, 0},
		{"100 with CN listed", hosts[0], hosts, 100},
		{"CN counted", "example.com", hosts[:100], 0},
		{"duplicates removed first", "example.com", append(append(slices.Clone(hosts[:99]), upper[:99]...), hosts[:50]...), 100},
		{"duplicates of CN removed", "example.com", append(slices.Clone(hosts[:99]), "EXAMPLE.COM", "example.com."), 100},
		{"200 duplicates over 101 names", "example.com", append(slices.Clone(hosts), upper...), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := request.Parse(set("CommonName", tc.cn, "SANs", strings.Join(tc.sans, ",")), request.SeedDefaults)
			if tc.n == 0 {
				if !errors.Is(err, apierr.ErrInvalidParameter) {
					t.Fatalf("error %v, want InvalidParameter", err)
				}
				if msg := apierr.As(err).Message; !strings.Contains(msg, "at most 100 names") {
					t.Errorf("message %q does not state the limit", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(r.SANs) != tc.n {
				t.Errorf("%d names, want %d", len(r.SANs), tc.n)
			}
		})
	}
}

func TestParseAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action string
		want   string
	}{
		{"", request.ActionDcdn},
		{"CreateDcdnCertificateSigningRequest", "CreateDcdnCertificateSigningRequest"},
		{"CreateCdnCertificateSigningRequest", "CreateCdnCertificateSigningRequest"},
		{" CreateDcdnCertificateSigningRequest\t", "CreateDcdnCertificateSigningRequest"}, // values are trimmed
	}
	for _, tc := range tests {
		p := set()
		if tc.action != "" {
			p["Action"] = tc.action
		}
		got, err := request.ParseAction(p)
		if err != nil || got != tc.want {
			t.Errorf("ParseAction(%q) = %q, %v; want %q", tc.action, got, err, tc.want)
		}
	}
	for _, bad := range []string{"DescribeDcdnDomain", "createdcdncertificatesigningrequest", "Create DcdnCertificateSigningRequest"} {
		_, err := request.ParseAction(set("Action", bad))
		var ae *apierr.Error
		if !errors.As(err, &ae) {
			t.Fatalf("ParseAction(%q) error %v, want *apierr.Error", bad, err)
		}
		if ae.Status != 404 || ae.Code != "InvalidAction.NotFound" || ae.Message != "Specified api is not found, please check your url and method." {
			t.Errorf("ParseAction(%q) = %d %s %q", bad, ae.Status, ae.Code, ae.Message)
		}
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want request.Format
		ok   bool
	}{
		{"", request.JSON, true},
		{"JSON", request.JSON, true},
		{"json", request.JSON, true},
		{"XML", request.XML, true},
		{"xml", request.XML, true},
		{" Xml ", request.XML, true},
		{"YAML", request.JSON, false},
	}
	for _, tc := range tests {
		got, err := request.ParseFormat(set("Format", tc.in))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseFormat(%q) = %q, %v", tc.in, got, err)
		}
		if !tc.ok {
			ae := apierr.As(err)
			if want := `The specified value of parameter "Format" is not valid. Use JSON or XML.`; ae.Code != "InvalidParameter" || ae.Status != 400 || ae.Message != want {
				t.Errorf("ParseFormat(%q) error %d %s %q", tc.in, ae.Status, ae.Code, ae.Message)
			}
		}
	}
}

func TestCountry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, msg string
	}{
		{"CN", "CN", ""},
		{"cn", "CN", ""},
		{"uS", "US", ""},
		{"", "", "Country must be 2 characters."},
		{"CHN", "", "Country must be 2 characters."},
		{"É", "", "Country must be 2 characters."},
		{"ÉS", "", "Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
		{"1N", "", "Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
		{"C ", "", "Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."},
	}
	for _, tc := range tests {
		got, err := request.Country(tc.in)
		if tc.msg == "" {
			if err != nil || got != tc.want {
				t.Errorf("Country(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, apierr.ErrMalformed) {
			t.Errorf("Country(%q) error %v, want InvalidValue.Malformed", tc.in, err)
			continue
		}
		if ae := apierr.As(err); ae.Message != tc.msg || ae.Status != 400 {
			t.Errorf("Country(%q) = %d %q, want 400 %q", tc.in, ae.Status, ae.Message, tc.msg)
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	if err := request.SeedDefaults.Validate(); err != nil {
		t.Fatalf("seed defaults: %v", err)
	}
	if request.SeedDefaults != (request.Defaults{Organization: "Alibaba Inc", OrganizationUnit: "Aliyun CDN", Country: "CN", State: "Zhejiang", City: "Hangzhou"}) {
		t.Errorf("seed defaults changed: %+v", request.SeedDefaults)
	}
	tests := []struct {
		name  string
		edit  func(*request.Defaults)
		param string
	}{
		{"country", func(d *request.Defaults) { d.Country = "CHN" }, "Country"},
		{"country digits", func(d *request.Defaults) { d.Country = "12" }, "Country"},
		{"organization", func(d *request.Defaults) { d.Organization = strings.Repeat("o", 65) }, "Organization"},
		{"unit", func(d *request.Defaults) { d.OrganizationUnit = "a\tb" }, "OrganizationUnit"},
		{"state", func(d *request.Defaults) { d.State = strings.Repeat("s", 129) }, "State"},
		{"city", func(d *request.Defaults) { d.City = "\xff" }, "City"},
	}
	for _, tc := range tests {
		d := request.SeedDefaults
		tc.edit(&d)
		err := d.Validate()
		var de *request.DefaultError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v, want *request.DefaultError", tc.name, err)
			continue
		}
		if de.Param != tc.param || de.Reason == "" {
			t.Errorf("%s: Param %q Reason %q, want Param %q", tc.name, de.Param, de.Reason, tc.param)
		}
	}
}
