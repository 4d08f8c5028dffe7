package request_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
)

var (
	fuzzKeyOnce sync.Once
	fuzzKey     *ecdsa.PrivateKey
	fuzzCountry = regexp.MustCompile(`^[A-Z]{2}$`)
	// fuzzInvalidRE is the fixed start of an InvalidParameter message.
	fuzzInvalidRE = regexp.MustCompile(`^The specified value of parameter "(CommonName|SANs|Organization|OrganizationUnit|State|City|Email|KeyAlgorithm)" is not valid\.`)
)

// fuzzSigner is one P-256 key for the CSRs the target builds.
func fuzzSigner(t *testing.T) *ecdsa.PrivateKey {
	fuzzKeyOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		fuzzKey = k
	})
	return fuzzKey
}

// fuzzText asserts the free-text rules on an accepted subject value: the
// trimmed input, or the default when the input is blank.
func fuzzText(t *testing.T, name, in, got, def string, limit int) {
	t.Helper()
	want := strings.TrimSpace(in)
	if want == "" {
		want = def
	}
	if got != want {
		t.Fatalf("%s = %q from %q, want %q", name, got, in, want)
	}
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) > limit {
		t.Fatalf("%s %q: not UTF-8 or over %d characters", name, got, limit)
	}
	for _, c := range got {
		if unicode.IsControl(c) {
			t.Fatalf("%s %q holds the control character %U", name, got, c)
		}
	}
}

// FuzzParse builds a parameter set from fuzzed values (plus extra generated
// SANs to reach the name limit) and checks that Parse either refuses it
// with a 400 *apierr.Error of the contract's codes, or returns a request
// whose CommonName is the normalised input, whose SANs are at most 100
// unique normalised names led by or containing the CommonName, whose
// subject obeys the field rules (Country two upper-case letters), and which
// makes a valid CSR.
func FuzzParse(f *testing.F) {
	type seed struct {
		cn, sans, country, email, org, ou, state, city, alg string
		extra                                               uint8
	}
	for _, s := range []seed{
		{"example.com", "www.example.com,203.0.113.7", "", "", "", "", "", "", "", 0},
		{"*.Example.COM.", " example.com , ,www.example.com,EXAMPLE.com", "us", "admin@example.com", "Acme, Inc.", "IT", "California", "San Francisco", "EC_prime256v1", 0},
		{"bücher.example", "ＢÜCHER．example,xn--bcher-kva.example", "de", "", "Bücher GmbH", "Ä", "Bayern", "München", "RSA_4096", 0},
		{"2001:DB8::1", "::ffff:192.0.2.1,192.0.2.1,2001:db8:0::1", "CN", "", "", "", "", "", "EC_secp384r1", 0},
		{"example.com", "", "", "", "", "", "", "", "", 99},
		{"example.com", "example.com", "", "", "", "", "", "", "", 99},
		{"example.com", "", "", "", "", "", "", "", "", 100},
		{"example.com", "a.example.com", "", "", "", "", "", "", "", 120},
		{"", "www.example.com", "", "", "", "", "", "", "", 0},
		{"  ", "", "", "", "", "", "", "", "", 0},
		{"*.com", "", "", "", "", "", "", "", "", 0},
		{"*.co.uk", "", "", "", "", "", "", "", "", 0},
		{strings.Repeat("a", 61) + ".com", "", "", "", "", "", "", "", "", 0},
		{"example.com", strings.Repeat("a", 64) + ".com", "", "", "", "", "", "", "", 0},
		{"example.com", "", "CHN", "", "", "", "", "", "", 0},
		{"example.com", "", "C1", "", "", "", "", "", "", 0},
		{"example.com", "", "ÄÖ", "", "", "", "", "", "", 0},
		{"example.com", "", "c", "", "", "", "", "", "", 0},
		{"example.com", "", "", "Bob <bob@example.com>", "", "", "", "", "", 0},
		{"example.com", "", "", "a@b", "", "", "", "", "", 0},
		{"example.com", "", "", "\"a b\"@example.com", "", "", "", "", "", 0},
		{"example.com", "", "", "ü@example.com", "", "", "", "", "", 0},
		{"example.com", "", "", strings.Repeat("a", 120) + "@example.com", "", "", "", "", "", 0},
		{"example.com", "", "", "", "Acme\x00", "", "", "", "", 0},
		{"example.com", "", "", "", "", "IT\u0085", "", "", "", 0},
		{"example.com", "", "", "", "", "", "\xff", "", "", 0},
		{"example.com", "", "", "", "", "", "", "a\u200bb", "", 0},
		{"example.com", "", "", "", strings.Repeat("é", 65), "", "", "", "", 0},
		{"example.com", "", "", "", "", "", "", "", "rsa_2048", 0},
		{"example.com", "", "", "", "", "", "", "", " RSA_3072 ", 0},
		{"fe80::1%eth0", "", "", "", "", "", "", "", "", 0},
		{"example.com", "a..b,,", "", "", "", "", "", "", "", 0},
	} {
		f.Add(s.cn, s.sans, s.country, s.email, s.org, s.ou, s.state, s.city, s.alg, s.extra)
	}
	f.Fuzz(func(t *testing.T, cn, sans, country, email, org, ou, state, city, alg string, extra uint8) {
		for i := range int(extra) % 128 {
			sans += fmt.Sprintf(",n%d.example.net", i)
		}
		p := params.Set{
			"CommonName": cn, "SANs": sans, "Country": country, "Email": email,
			"Organization": org, "OrganizationUnit": ou, "State": state, "City": city, "KeyAlgorithm": alg,
		}
		d := request.SeedDefaults
		r, err := request.Parse(p, d)
		r2, err2 := request.Parse(p, d)
		if !reflect.DeepEqual(r, r2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Parse is not deterministic")
		}

		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %T %v is not an *apierr.Error", err, err)
			}
			if ae.Status != http.StatusBadRequest || ae.Server() || ae.Cause != nil {
				t.Fatalf("error %v: status %d, want 400 without a cause", ae, ae.Status)
			}
			if len(ae.Message) == 0 || len(ae.Message) > 2048 || !utf8.ValidString(ae.Message) {
				t.Fatalf("error message of %d bytes (valid UTF-8: %v)", len(ae.Message), utf8.ValidString(ae.Message))
			}
			switch ae.Code {
			case apierr.CodeMissingParameter:
				if strings.TrimSpace(cn) != "" {
					t.Fatalf("MissingParameter for CommonName %q", cn)
				}
			case apierr.CodeMalformed:
				if ae.Message != apierr.MsgCountryLength && ae.Message != apierr.MsgCountryLetters {
					t.Fatalf("InvalidValue.Malformed with message %q", ae.Message)
				}
			case apierr.CodeInvalidParameter:
				if !fuzzInvalidRE.MatchString(ae.Message) {
					t.Fatalf("InvalidParameter message %q does not name a parameter", ae.Message)
				}
			default:
				t.Fatalf("error code %s, want MissingParameter, InvalidParameter or InvalidValue.Malformed", ae.Code)
			}
			if strings.TrimSpace(cn) == "" && ae.Code != apierr.CodeMissingParameter {
				t.Fatalf("blank CommonName refused with %s, want MissingParameter first", ae.Code)
			}
			return
		}

		// CommonName: the normalised input, within 64 octets.
		cnName, cnErr := names.Parse(cn, names.MaxCommonName)
		if cnErr != nil || r.CommonName != cnName.Value || r.Subject.CommonName != r.CommonName {
			t.Fatalf("CommonName %q (subject %q) from %q; names.Parse gives %q, %v", r.CommonName, r.Subject.CommonName, cn, cnName.Value, cnErr)
		}
		if len(r.CommonName) > names.MaxCommonName {
			t.Fatalf("CommonName %q longer than 64 octets", r.CommonName)
		}

		// SANs: the caller's names normalised, first occurrence kept, the
		// CommonName first unless listed; at most 100, unique.
		var want []names.Name
		seen := map[string]bool{}
		for _, item := range strings.Split(sans, ",") {
			n, err := names.Parse(item, names.MaxDNSName)
			if errors.Is(err, names.ErrEmpty) {
				continue
			}
			if err != nil {
				t.Fatalf("Parse accepted the SAN %q that names.Parse refuses: %v", item, err)
			}
			if !seen[strings.ToLower(n.Value)] {
				seen[strings.ToLower(n.Value)] = true
				want = append(want, n)
			}
		}
		if !seen[r.CommonName] {
			want = append([]names.Name{cnName}, want...)
		}
		if !reflect.DeepEqual(r.SANs, want) {
			t.Fatalf("SANs %v, want %v", r.SANs, want)
		}
		if len(r.SANs) == 0 || len(r.SANs) > request.MaxNames {
			t.Fatalf("%d SANs, want 1 to %d", len(r.SANs), request.MaxNames)
		}
		uniq := map[string]bool{}
		hasCN := false
		for _, n := range r.SANs {
			if uniq[strings.ToLower(n.Value)] {
				t.Fatalf("SAN %q repeats", n.Value)
			}
			uniq[strings.ToLower(n.Value)] = true
			hasCN = hasCN || n.Value == r.CommonName
			if again, err := names.Parse(n.Value, names.MaxDNSName); err != nil || again != n {
				t.Fatalf("SAN %+v is not normalised: %+v, %v", n, again, err)
			}
		}
		if !hasCN {
			t.Fatalf("SANs %v lack the CommonName %q", r.SANs, r.CommonName)
		}

		// Subject.
		s := r.Subject
		if !fuzzCountry.MatchString(s.Country) {
			t.Fatalf("Country %q is not two upper-case letters", s.Country)
		}
		if c := strings.TrimSpace(country); c == "" && s.Country != d.Country || c != "" && s.Country != strings.ToUpper(c) {
			t.Fatalf("Country %q from %q", s.Country, country)
		}
		fuzzText(t, "Organization", org, s.Organization, d.Organization, 64)
		fuzzText(t, "OrganizationUnit", ou, s.OrganizationUnit, d.OrganizationUnit, 64)
		fuzzText(t, "State", state, s.State, d.State, 128)
		fuzzText(t, "City", city, s.City, d.City, 128)
		if e := strings.TrimSpace(email); s.Email != e {
			t.Fatalf("Email %q from %q", s.Email, email)
		}
		if s.Email != "" {
			if len(s.Email) > 128 || !strings.Contains(s.Email, "@") {
				t.Fatalf("Email %q is not one plain address of at most 128 characters", s.Email)
			}
			for i := 0; i < len(s.Email); i++ {
				if s.Email[i] < 0x21 || s.Email[i] > 0x7e {
					t.Fatalf("Email %q is not printable ASCII", s.Email)
				}
			}
		}

		// KeyAlgorithm: exactly one of the names, RSA_2048 when blank.
		if a := strings.TrimSpace(alg); a == "" && r.KeyAlgorithm != keys.RSA2048 || a != "" && string(r.KeyAlgorithm) != a {
			t.Fatalf("KeyAlgorithm %q from %q", r.KeyAlgorithm, alg)
		}
		if _, ok := keys.Parse(string(r.KeyAlgorithm)); !ok {
			t.Fatalf("KeyAlgorithm %q is not an algorithm", r.KeyAlgorithm)
		}

		// An accepted request makes a CSR that carries it.
		req, err := csr.Create(rand.Reader, r.Subject, r.SANs, fuzzSigner(t), keys.ECP256)
		if err != nil {
			t.Fatalf("csr.Create for an accepted request: %v", err)
		}
		if req.Subject.CommonName != r.CommonName || len(req.DNSNames)+len(req.IPAddresses) != len(r.SANs) {
			t.Fatalf("CSR subject CN %q with %d DNS and %d IP names; want %q and %d names",
				req.Subject.CommonName, len(req.DNSNames), len(req.IPAddresses), r.CommonName, len(r.SANs))
		}
		if len(req.Subject.Country) != 1 || req.Subject.Country[0] != s.Country {
			t.Fatalf("CSR Country %v, want %q", req.Subject.Country, s.Country)
		}
	})
}
