package names_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/names"
)

// label returns a label of n copies of c.
func label(c string, n int) string { return strings.Repeat(c, n) }

// nameOfLen builds an LDH host name of exactly n octets (n >= 5) out of
// labels of at most 63 octets, ending in a letter label.
func nameOfLen(n int) string {
	var parts []string
	left := n
	for left > 0 {
		l := 63
		if left-l < 0 {
			l = left
		}
		if left-l == 1 { // never leave a single dot with nothing after it
			l--
		}
		parts = append(parts, label("a", l))
		left -= l
		if left > 0 {
			left-- // the dot
		}
	}
	s := strings.Join(parts, ".")
	if len(s) != n {
		panic("nameOfLen: wrong length")
	}
	return s
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		max  int
		want string
		kind names.Kind
	}{
		{"plain", "example.com", names.MaxDNSName, "example.com", names.DNS},
		{"upper case lowered", "WWW.Example.COM", names.MaxDNSName, "www.example.com", names.DNS},
		{"one trailing dot dropped", "example.com.", names.MaxDNSName, "example.com", names.DNS},
		{"surrounding spaces trimmed", "  example.com\t", names.MaxDNSName, "example.com", names.DNS},
		{"IDN to punycode", "bücher.example", names.MaxDNSName, "xn--bcher-kva.example", names.DNS},
		{"IDN upper case", "BÜCHER.example", names.MaxDNSName, "xn--bcher-kva.example", names.DNS},
		{"IDN Japanese", "例え.jp", names.MaxDNSName, "xn--r8jz45g.jp", names.DNS},
		{"fullwidth folded", "ＥＸＡＭＰＬＥ.com", names.MaxDNSName, "example.com", names.DNS},
		{"ideographic full stop", "example。com", names.MaxDNSName, "example.com", names.DNS},
		{"hyphen inside label", "my-host.example.com", names.MaxDNSName, "my-host.example.com", names.DNS},
		{"digits in label", "a1.example.com", names.MaxDNSName, "a1.example.com", names.DNS},
		{"wildcard", "*.example.com", names.MaxDNSName, "*.example.com", names.Wildcard},
		{"wildcard upper", "*.EXAMPLE.com", names.MaxDNSName, "*.example.com", names.Wildcard},
		{"wildcard trailing dot", "*.example.com.", names.MaxDNSName, "*.example.com", names.Wildcard},
		{"wildcard under co.uk", "*.example.co.uk", names.MaxDNSName, "*.example.co.uk", names.Wildcard},
		{"wildcard IDN", "*.bücher.example", names.MaxDNSName, "*.xn--bcher-kva.example", names.Wildcard},
		{"IPv4", "192.0.2.1", names.MaxDNSName, "192.0.2.1", names.IP},
		{"IPv6 canonical", "2001:0DB8:0000:0000::0001", names.MaxDNSName, "2001:db8::1", names.IP},
		{"IPv6 loopback", "::1", names.MaxDNSName, "::1", names.IP},
		{"IPv4-mapped IPv6", "::ffff:192.0.2.1", names.MaxDNSName, "192.0.2.1", names.IP},
		{"IPv6 full", "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFE", names.MaxCommonName, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", names.IP},
		{"label of 63", label("a", 63) + ".com", names.MaxCommonName + 10, label("a", 63) + ".com", names.DNS},
		{"CN of 64 octets", nameOfLen(64), names.MaxCommonName, nameOfLen(64), names.DNS},
		{"SAN of 253 octets", nameOfLen(253), names.MaxDNSName, nameOfLen(253), names.DNS},
		{"SAN of 65 octets", nameOfLen(65), names.MaxDNSName, nameOfLen(65), names.DNS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := names.Parse(tc.in, tc.max)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.in, err)
			}
			if n.Value != tc.want || n.Kind != tc.kind {
				t.Errorf("Parse(%q) = %q kind %d, want %q kind %d", tc.in, n.Value, n.Kind, tc.want, tc.kind)
			}
			if tc.kind == names.IP {
				want := netip.MustParseAddr(tc.want)
				if n.Addr != want {
					t.Errorf("Parse(%q).Addr = %v, want %v", tc.in, n.Addr, want)
				}
				if n.Addr.Is4In6() {
					t.Errorf("Parse(%q).Addr is still IPv4-mapped", tc.in)
				}
			} else if n.Addr.IsValid() {
				t.Errorf("Parse(%q).Addr = %v, want none for a host name", tc.in, n.Addr)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		max    int
		reason string // a fragment of the error text
	}{
		{"wildcard above com", "*.com", names.MaxDNSName, "public suffix"},
		{"wildcard above co.uk", "*.co.uk", names.MaxDNSName, "public suffix"},
		{"wildcard above private suffix", "*.github.io", names.MaxDNSName, "public suffix"},
		{"wildcard above com trailing dot", "*.com.", names.MaxDNSName, "public suffix"},
		{"partial wildcard", "a*.x.com", names.MaxDNSName, "wildcard"},
		{"double wildcard", "*.*.x.com", names.MaxDNSName, "wildcard"},
		{"inner wildcard", "a.*.x.com", names.MaxDNSName, "wildcard"},
		{"bare star", "*", names.MaxDNSName, "wildcard"},
		{"star dot", "*.", names.MaxDNSName, "wildcard"},
		{"CN of 65 octets", nameOfLen(65), names.MaxCommonName, "limit is 64"},
		{"SAN of 254 octets", nameOfLen(254), names.MaxDNSName, "limit is 253"},
		{"wildcard CN over 64", "*." + label("a", 59) + ".com", names.MaxCommonName, "limit is 64"},
		// 60 octets as given, 66 after conversion to punycode
		{"IDN over 64 after conversion", label("a", 50) + "ü.example", names.MaxCommonName, "66 octets long after conversion"},
		{"label of 64", label("a", 64) + ".com", names.MaxDNSName, "limit is 63"},
		{"leading hyphen", "-a.example.com", names.MaxDNSName, "-a"},
		{"trailing hyphen", "a-.example.com", names.MaxDNSName, "a-"},
		{"underscore", "a_b.example.com", names.MaxDNSName, "valid host name"},
		{"space inside", "ex ample.com", names.MaxDNSName, "valid host name"},
		{"empty label", "a..b.com", names.MaxDNSName, "empty label"},
		{"leading dot", ".example.com", names.MaxDNSName, "empty label"},
		{"two trailing dots", "example.com..", names.MaxDNSName, "empty label"},
		{"all-digit TLD", "256.1.1.1", names.MaxDNSName, "all digits"},
		{"IPv4 with trailing dot", "1.2.3.4.", names.MaxDNSName, "all digits"},
		{"IPv4 leading zero", "010.1.1.1", names.MaxDNSName, "all digits"},
		{"bracketed IPv6", "[::1]", names.MaxDNSName, "not a valid IP address"},
		{"bad IPv6", "2001:db8::g", names.MaxDNSName, "not a valid IP address"},
		{"IPv6 zone", "fe80::1%eth0", names.MaxDNSName, "zone"},
		{"host with port", "example.com:443", names.MaxDNSName, "not a valid IP address"},
		{"invalid UTF-8", "ex\xffample.com", names.MaxDNSName, "UTF-8"},
		{"bad punycode", "xn--zz.example", names.MaxDNSName, "valid host name"},
		{"slash", "example.com/x", names.MaxDNSName, "valid host name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := names.Parse(tc.in, tc.max)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.in, n.Value)
			}
			var ne *names.Error
			if !errors.As(err, &ne) {
				t.Fatalf("Parse(%q) error %v is not a *names.Error", tc.in, err)
			}
			if errors.Is(err, names.ErrEmpty) {
				t.Errorf("Parse(%q) error is ErrEmpty", tc.in)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Parse(%q) error %q does not mention %q", tc.in, err, tc.reason)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", " ", "\t \n"} {
		if _, err := names.Parse(in, names.MaxDNSName); !errors.Is(err, names.ErrEmpty) {
			t.Errorf("Parse(%q) error = %v, want ErrEmpty", in, err)
		}
	}
}

// TestErrorQuoteBounded checks that an error never echoes an unbounded input.
func TestErrorQuoteBounded(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("x", 5000) + "_.com"
	_, err := names.Parse(in, names.MaxDNSName)
	if err == nil {
		t.Fatal("want an error")
	}
	if len(err.Error()) > 400 {
		t.Errorf("error text is %d bytes long; the input must be truncated", len(err.Error()))
	}
}
