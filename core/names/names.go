// Package names normalises the names a CSR may carry: host names (IDNs are
// converted to punycode A-labels), wildcards and IP literals.
package names

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// Kind says how a name goes into a CSR.
type Kind int

const (
	DNS      Kind = iota // a host name: dNSName SAN
	Wildcard             // *.host: dNSName SAN
	IP                   // an IPv4 or IPv6 literal: iPAddress SAN
)

// Limits in octets after conversion: the X.509 upper bound of a CommonName,
// and the DNS limit of a name.
const (
	MaxCommonName = 64
	MaxDNSName    = 253
	maxLabel      = 63
)

// Name is a normalised name.
type Name struct {
	Value string     // lower-case A-label form, or the canonical IP text
	Kind  Kind       //
	Addr  netip.Addr // set when Kind is IP
}

// Error explains why a name was refused. Its text is written for the caller.
type Error struct {
	Input  string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s is %s.", quote(e.Input), e.Reason) }

// ErrEmpty is returned for a blank name.
var ErrEmpty = errors.New("empty name")

// quote shows caller input back in a message, bounded so that a 64 KiB
// parameter cannot make a 64 KiB error.
func quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// lookup converts U-labels to A-labels. It maps (case-folds, width-folds,
// turns ideographic full stops into dots) and enforces STD3 rules, so a
// label that comes out is LDH; lengths are checked by us afterwards.
var lookup = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
	idna.Transitional(false),
)

// Parse normalises one name: surrounding spaces and one trailing dot are
// dropped, IP literals are canonicalised, host names are converted to
// lower-case A-labels and checked label by label, and a wildcard is allowed
// only as the whole leftmost label and never directly above a public suffix.
// maxLen is the octet limit after conversion.
func Parse(s string, maxLen int) (Name, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Name{}, ErrEmpty
	}
	if !utf8.ValidString(in) {
		return Name{}, &Error{Input: in, Reason: "not valid UTF-8"}
	}
	if addr, err := netip.ParseAddr(in); err == nil {
		return parseIP(in, addr, maxLen)
	} else if strings.Contains(in, ":") {
		return Name{}, &Error{Input: in, Reason: "not a valid IP address"}
	}

	host := in
	if strings.HasSuffix(host, ".") && !strings.HasSuffix(host, "..") {
		host = strings.TrimSuffix(host, ".")
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		wildcard = true
		host = rest
	}
	if strings.Contains(host, "*") {
		return Name{}, &Error{Input: in, Reason: "not a valid name: a wildcard is allowed only as the whole leftmost label (*.example.com)"}
	}
	ascii, err := lookup.ToASCII(host)
	if err != nil {
		return Name{}, &Error{Input: in, Reason: "not a valid host name (" + idnaReason(err) + ")"}
	}
	ascii = strings.ToLower(ascii)
	if err := checkLabels(ascii); err != "" {
		return Name{}, &Error{Input: in, Reason: "not a valid host name: " + err}
	}
	n := Name{Value: ascii, Kind: DNS}
	if wildcard {
		if ps, _ := publicsuffix.PublicSuffix(ascii); ps == ascii {
			return Name{}, &Error{Input: in, Reason: fmt.Sprintf("a wildcard directly above the public suffix %q", ps)}
		}
		n = Name{Value: "*." + ascii, Kind: Wildcard}
	}
	if len(n.Value) > maxLen {
		return Name{}, &Error{Input: in, Reason: fmt.Sprintf("%d octets long after conversion; the limit is %d", len(n.Value), maxLen)}
	}
	return n, nil
}

func parseIP(in string, addr netip.Addr, maxLen int) (Name, error) {
	if addr.Zone() != "" {
		return Name{}, &Error{Input: in, Reason: "an IP address with a zone, which a certificate cannot carry"}
	}
	// An IPv4-mapped IPv6 address is encoded as the IPv4 address in a CSR,
	// so it is the same name as the IPv4 literal.
	addr = addr.Unmap()
	n := Name{Value: addr.String(), Kind: IP, Addr: addr}
	if len(n.Value) > maxLen {
		return Name{}, &Error{Input: in, Reason: fmt.Sprintf("%d octets long; the limit is %d", len(n.Value), maxLen)}
	}
	return n, nil
}

// checkLabels enforces LDH labels of 1–63 octets without a leading or
// trailing hyphen, a total within the DNS limit, and a top-level label that
// is not all digits (which would make "256.1.1.1" a host name).
func checkLabels(name string) string {
	if len(name) > MaxDNSName {
		return fmt.Sprintf("%d octets long; the limit is %d", len(name), MaxDNSName)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "it has an empty label"
		case len(l) > maxLabel:
			return fmt.Sprintf("the label %s is %d octets long; the limit is %d", quote(l), len(l), maxLabel)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Sprintf("the label %s starts or ends with a hyphen", quote(l))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("the label %s holds %q; only letters, digits and hyphens are allowed", quote(l), c)
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "its last label is all digits, so it is neither a host name nor a valid IPv4 address"
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// idnaReason trims the idna package's error to its useful tail, bounded:
// the idna error quotes the whole offending label, however long.
func idnaReason(err error) string {
	const max = 100
	msg := strings.TrimPrefix(err.Error(), "idna: ")
	if utf8.RuneCountInString(msg) > max {
		msg = string([]rune(msg)[:max]) + "…"
	}
	return msg
}
