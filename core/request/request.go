// Package request holds the rules of CreateDcdnCertificateSigningRequest:
// which parameters it takes, their defaults and how each is validated and
// normalised (DESIGN.md §1).
package request

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
	"github.com/csrfn/csrfn/core/params"
)

// The operation and its CDN alias. Without Action, an endpoint runs ActionDcdn.
const (
	ActionDcdn = "CreateDcdnCertificateSigningRequest"
	ActionCdn  = "CreateCdnCertificateSigningRequest"
)

// MaxNames bounds the SANs of one CSR, the CommonName included.
const MaxNames = 100

// Format is the response encoding.
type Format string

const (
	JSON Format = "JSON"
	XML  Format = "XML"
)

// Defaults are the subject values used when a parameter is not given.
type Defaults struct {
	Organization     string
	OrganizationUnit string
	Country          string
	State            string
	City             string
}

// SeedDefaults are Alibaba's documented defaults.
var SeedDefaults = Defaults{
	Organization:     "Alibaba Inc",
	OrganizationUnit: "Aliyun CDN",
	Country:          "CN",
	State:            "Zhejiang",
	City:             "Hangzhou",
}

// Request is a validated, normalised request.
type Request struct {
	CommonName   string       // normalised
	SANs         []names.Name // the CommonName first unless listed
	Subject      csr.Subject
	KeyAlgorithm keys.Algorithm
}

// field describes a free-text subject parameter.
type field struct {
	name  string
	limit int // in characters
}

var (
	fOrganization     = field{"Organization", 64}
	fOrganizationUnit = field{"OrganizationUnit", 64}
	fState            = field{"State", 128}
	fCity             = field{"City", 128}
)

// ParseAction returns the operation named by the Action parameter.
func ParseAction(p params.Set) (string, error) {
	switch a := strings.TrimSpace(p.Get("Action")); a {
	case "":
		return ActionDcdn, nil
	case ActionDcdn, ActionCdn:
		return a, nil
	default:
		return "", apierr.ActionNotFound()
	}
}

// ParseFormat returns the response format; the value is case-insensitive.
func ParseFormat(p params.Set) (Format, error) {
	switch f := strings.TrimSpace(p.Get("Format")); {
	case f == "", strings.EqualFold(f, "JSON"):
		return JSON, nil
	case strings.EqualFold(f, "XML"):
		return XML, nil
	default:
		return JSON, apierr.Invalid("Format", "Use JSON or XML.")
	}
}

// Parse validates the operation's parameters. The first broken rule is
// returned as an *apierr.Error.
func Parse(p params.Set, d Defaults) (Request, error) {
	var r Request
	cn, err := names.Parse(p.Get("CommonName"), names.MaxCommonName)
	if errors.Is(err, names.ErrEmpty) {
		return r, apierr.Missing("CommonName")
	}
	if err != nil {
		return r, apierr.Invalid("CommonName", err.Error())
	}
	r.CommonName = cn.Value

	// The CommonName becomes the first SAN unless the caller listed it, in
	// which case the caller's order stands.
	var list []names.Name
	seen := map[string]bool{}
	for _, item := range strings.Split(p.Get("SANs"), ",") {
		n, err := names.Parse(item, names.MaxDNSName)
		if errors.Is(err, names.ErrEmpty) {
			continue
		}
		if err != nil {
			return r, apierr.Invalid("SANs", err.Error())
		}
		if !seen[n.Value] {
			seen[n.Value] = true
			list = append(list, n)
		}
	}
	r.SANs = list
	if !seen[cn.Value] {
		r.SANs = append([]names.Name{cn}, list...)
	}
	if len(r.SANs) > MaxNames {
		return r, apierr.Invalid("SANs", fmt.Sprintf("A CSR holds at most %d names, the CommonName included; %d were given.", MaxNames, len(r.SANs)))
	}

	s := csr.Subject{CommonName: cn.Value}
	if s.Organization, err = text(p, fOrganization, d.Organization); err != nil {
		return r, err
	}
	if s.OrganizationUnit, err = text(p, fOrganizationUnit, d.OrganizationUnit); err != nil {
		return r, err
	}
	if s.Country, err = Country(valueOr(p.Get("Country"), d.Country)); err != nil {
		return r, err
	}
	if s.State, err = text(p, fState, d.State); err != nil {
		return r, err
	}
	if s.City, err = text(p, fCity, d.City); err != nil {
		return r, err
	}
	if s.Email, err = email(strings.TrimSpace(p.Get("Email"))); err != nil {
		return r, err
	}
	r.Subject = s

	r.KeyAlgorithm = keys.Default
	if v := strings.TrimSpace(p.Get("KeyAlgorithm")); v != "" {
		a, ok := keys.Parse(v)
		if !ok {
			return r, apierr.Invalid("KeyAlgorithm", "Use one of "+algorithmList()+".")
		}
		r.KeyAlgorithm = a
	}
	return r, nil
}

func valueOr(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}

func text(p params.Set, f field, def string) (string, error) {
	v := valueOr(p.Get(f.name), def)
	if reason := checkText(v, f.limit); reason != "" {
		return "", apierr.Invalid(f.name, reason)
	}
	return v, nil
}

// checkText applies the free-text rules; it returns a reason or "".
func checkText(v string, limit int) string {
	if !utf8.ValidString(v) {
		return "It must be valid UTF-8."
	}
	for _, c := range v {
		if unicode.IsControl(c) {
			return "It must not contain control characters."
		}
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return fmt.Sprintf("It is %d characters long; the limit is %d.", n, limit)
	}
	return ""
}

// Country validates and upper-cases a country code.
func Country(v string) (string, error) {
	if utf8.RuneCountInString(v) != 2 {
		return "", apierr.Malformed(apierr.MsgCountryLength)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", apierr.Malformed(apierr.MsgCountryLetters)
		}
	}
	return strings.ToUpper(v), nil
}

// email accepts one RFC 5322 addr-spec in ASCII (the subject's
// emailAddress is an IA5String), at most 128 characters.
func email(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", apierr.Invalid("Email", "It must be a plain ASCII address such as name@example.com.")
		}
	}
	if len(v) > 128 {
		return "", apierr.Invalid("Email", fmt.Sprintf("It is %d characters long; the limit is 128.", len(v)))
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return "", apierr.Invalid("Email", "It must be one address such as name@example.com, without a display name or angle brackets.")
	}
	return v, nil
}

// Validate checks operator-supplied defaults with the request rules.
// The error names the parameter; the caller maps it to its variable.
func (d Defaults) Validate() error {
	for _, c := range []struct {
		f field
		v string
	}{{fOrganization, d.Organization}, {fOrganizationUnit, d.OrganizationUnit}, {fState, d.State}, {fCity, d.City}} {
		if reason := checkText(c.v, c.f.limit); reason != "" {
			return &DefaultError{Param: c.f.name, Reason: reason}
		}
	}
	if _, err := Country(d.Country); err != nil {
		return &DefaultError{Param: "Country", Reason: apierr.As(err).Message}
	}
	return nil
}

// DefaultError names the default that broke a rule.
type DefaultError struct{ Param, Reason string }

func (e *DefaultError) Error() string { return fmt.Sprintf("default %s: %s", e.Param, e.Reason) }

func algorithmList() string {
	s := make([]string, len(keys.Algorithms))
	for i, a := range keys.Algorithms {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
