package names_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"

	"github.com/csrfn/csrfn/core/names"
)

// fuzzLDH returns why name is not a lower-case LDH host name within the DNS
// limits (labels of 1–63 octets, no hyphen at either end, last label not all
// digits), or "".
func fuzzLDH(name string) string {
	if len(name) > names.MaxDNSName {
		return "longer than 253 octets"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "label length"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "hyphen at a label's end"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "not lower-case LDH"
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "all-digit last label"
	}
	return ""
}

// fuzzCheckName asserts the form of a name Parse returned.
func fuzzCheckName(t *testing.T, in string, n names.Name, maxLen int) {
	t.Helper()
	if len(n.Value) == 0 || len(n.Value) > maxLen {
		t.Fatalf("Parse(%q, %d) = %q: %d octets", in, maxLen, n.Value, len(n.Value))
	}
	if strings.ToLower(n.Value) != n.Value {
		t.Fatalf("Parse(%q) = %q: not lower case", in, n.Value)
	}
	switch n.Kind {
	case names.IP:
		a, err := netip.ParseAddr(n.Value)
		if err != nil || a != n.Addr || a.String() != n.Value || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("Parse(%q) = IP %q (Addr %v): not a canonical, zone-less, unmapped address", in, n.Value, n.Addr)
		}
	case names.DNS:
		if why := fuzzLDH(n.Value); why != "" {
			t.Fatalf("Parse(%q) = host %q: %s", in, n.Value, why)
		}
		if n.Addr.IsValid() {
			t.Fatalf("Parse(%q) = host %q with an Addr", in, n.Value)
		}
	case names.Wildcard:
		rest, ok := strings.CutPrefix(n.Value, "*.")
		if !ok {
			t.Fatalf("Parse(%q) = wildcard %q without a leading *.", in, n.Value)
		}
		if why := fuzzLDH(rest); why != "" {
			t.Fatalf("Parse(%q) = wildcard %q: %s", in, n.Value, why)
		}
		if ps, _ := publicsuffix.PublicSuffix(rest); ps == rest {
			t.Fatalf("Parse(%q) = %q: a wildcard directly above the public suffix %q", in, n.Value, ps)
		}
		if n.Addr.IsValid() {
			t.Fatalf("Parse(%q) = wildcard %q with an Addr", in, n.Value)
		}
	default:
		t.Fatalf("Parse(%q): unknown kind %d", in, n.Kind)
	}
}

// FuzzParse checks that every name Parse accepts comes out lower-case
// LDH (host or wildcard, never above a public suffix) or a canonical IP,
// within the limit; that Parse is idempotent and ignores case and one
// trailing dot; that plain ASCII host names are only lower-cased; and that
// refusals are bounded *names.Error values (ErrEmpty exactly for blanks).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"example.com", "WWW.Example.COM.", " example.com ", "*.example.com", "*.EXAMPLE.co.uk",
		"bücher.example", "ＢÜCHER．example", "xn--bcher-kva.example", "XN--BCHER-KVA.example", "例え.テスト",
		"203.0.113.7", "2001:DB8::1", "::ffff:192.0.2.1", "fe80::1%eth0", "[::1]", "1.2.3", "256.1.1.1", "1.2.3.4.5",
		"*.com", "*.co.uk", "*.s3.amazonaws.com", "*.*.example.com", "a*.example.com", "*", "*.", ".", "..", "example.com..",
		".example.com", "-a.example.com", "a-.example.com", "a_b.example.com", "a b.example.com", "a..b",
		strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 126) + "com",
		"xn--", "xn--a", "xn--zz-zz.com", "a\u200db.example", "\u0660\u0661.example", "\u05d0.example", "\xff.example",
		"\x00", "\t\n", "", "localhost", "123", "0x7f.1", "com.", "ß.de", "İ.example", "K.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, maxLen := range []int{names.MaxCommonName, names.MaxDNSName} {
			n, err := names.Parse(s, maxLen)
			trimmed := strings.TrimSpace(s)
			if trimmed == "" {
				if !errors.Is(err, names.ErrEmpty) {
					t.Fatalf("Parse(%q) = %v, %v; want ErrEmpty", s, n, err)
				}
				continue
			}
			if err != nil {
				var ne *names.Error
				if errors.Is(err, names.ErrEmpty) || !errors.As(err, &ne) {
					t.Fatalf("Parse(%q): error %T %v, want a *names.Error", s, err, err)
				}
				if msg := err.Error(); len(msg) > 1024 || !utf8.ValidString(msg) {
					t.Fatalf("Parse(%q): error of %d bytes (valid UTF-8: %v)", s, len(msg), utf8.ValidString(msg))
				}
				continue
			}
			fuzzCheckName(t, s, n, maxLen)

			if again, err := names.Parse(n.Value, maxLen); err != nil || again != n {
				t.Fatalf("Parse(Parse(%q) = %q) = %+v, %v; want it unchanged", s, n.Value, again, err)
			}
			if n.Kind == names.IP {
				continue
			}
			for _, v := range []string{strings.ToUpper(n.Value), n.Value + "."} {
				if again, err := names.Parse(v, maxLen); err != nil || again != n {
					t.Fatalf("Parse(%q) = %+v, %v; want %+v as for %q", v, again, err, n, s)
				}
			}
			// An ASCII host name is only lower-cased, its trailing dot dropped.
			if fuzzIsASCII(trimmed) {
				want := strings.ToLower(strings.TrimSuffix(trimmed, "."))
				if n.Value != want {
					t.Fatalf("Parse(%q) = %q, want %q", s, n.Value, want)
				}
			}
		}
	})
}

func fuzzIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
