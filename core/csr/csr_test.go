package csr_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
)

func mustNames(t *testing.T, in ...string) []names.Name {
	t.Helper()
	out := make([]names.Name, len(in))
	for i, s := range in {
		n, err := names.Parse(s, names.MaxDNSName)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

var (
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidST    = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidL     = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidSAN   = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// rdn is one attribute of a subject as encoded.
type rdn struct {
	oid asn1.ObjectIdentifier
	tag int
	val string
}

func subjectRDNs(t *testing.T, raw []byte) []rdn {
	t.Helper()
	// Decode the values as RawValue to see their ASN.1 string types.
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	var out []rdn
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(raw, &outer); err != nil {
		t.Fatal(err)
	}
	rest := outer.Bytes
	for len(rest) > 0 {
		var set asn1.RawValue
		var err error
		rest, err = asn1.Unmarshal(rest, &set)
		if err != nil {
			t.Fatal(err)
		}
		if set.Tag != asn1.TagSet {
			t.Fatalf("RDN tag %d, want SET", set.Tag)
		}
		var a atv
		if r, err := asn1.Unmarshal(set.Bytes, &a); err != nil || len(r) != 0 {
			t.Fatalf("RDN with %d extra bytes: %v (want one attribute per RDN)", len(r), err)
		}
		out = append(out, rdn{a.Type, a.Value.Tag, string(a.Value.Bytes)})
	}
	return out
}

func TestCreateSubjectOrderAndTypes(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(rand.Reader, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	s := csr.Subject{Country: "CN", State: "Zhejiang", City: "杭州", Organization: "Acme, Inc", OrganizationUnit: "Ops+Dev", CommonName: "example.com", Email: "admin@example.com"}
	req, err := csr.Create(rand.Reader, s, mustNames(t, "example.com"), key, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	got := subjectRDNs(t, req.RawSubject)
	want := []rdn{
		{oidC, asn1.TagPrintableString, "CN"},
		{oidST, asn1.TagUTF8String, "Zhejiang"},
		{oidL, asn1.TagUTF8String, "杭州"},
		{oidO, asn1.TagUTF8String, "Acme, Inc"},
		{oidOU, asn1.TagUTF8String, "Ops+Dev"},
		{oidCN, asn1.TagUTF8String, "example.com"},
		{oidEmail, asn1.TagIA5String, "admin@example.com"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d RDNs, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].oid.Equal(want[i].oid) || got[i].val != want[i].val {
			t.Errorf("RDN %d = %v %q, want %v %q", i, got[i].oid, got[i].val, want[i].oid, want[i].val)
		}
		// Go picks PrintableString where it can; only the email's type is fixed.
		if want[i].tag == asn1.TagIA5String && got[i].tag != asn1.TagIA5String {
			t.Errorf("emailAddress tag %d, want IA5String", got[i].tag)
		}
	}
}

func TestCreateNoEmailNoEmptyFields(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(rand.Reader, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	req, err := csr.Create(rand.Reader, csr.Subject{CommonName: "example.com", Country: "CN"}, nil, key, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	got := subjectRDNs(t, req.RawSubject)
	if len(got) != 2 || !got[0].oid.Equal(oidC) || !got[1].oid.Equal(oidCN) {
		t.Errorf("subject %v, want C and CN only", got)
	}
	for _, e := range req.Extensions {
		if e.Id.Equal(oidSAN) {
			t.Error("a SAN extension without names")
		}
	}
}

// sanEntries decodes a SAN extension into tag/value pairs, in order.
func sanEntries(t *testing.T, req *x509.CertificateRequest) []string {
	t.Helper()
	var ext *pkix.Extension
	for i := range req.Extensions {
		if req.Extensions[i].Id.Equal(oidSAN) {
			ext = &req.Extensions[i]
		}
	}
	if ext == nil {
		t.Fatal("no SAN extension")
	}
	var gns []asn1.RawValue
	if _, err := asn1.Unmarshal(ext.Value, &gns); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range gns {
		switch g.Tag {
		case 2:
			out = append(out, "DNS:"+string(g.Bytes))
		case 7:
			a, ok := netip.AddrFromSlice(g.Bytes)
			if !ok {
				t.Fatalf("IP SAN of %d bytes", len(g.Bytes))
			}
			out = append(out, "IP:"+a.String()+":"+string(rune('0'+len(g.Bytes)/4)))
		default:
			t.Fatalf("unexpected GeneralName tag %d", g.Tag)
		}
	}
	return out
}

func TestCreateSANOrder(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(rand.Reader, keys.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	sans := mustNames(t, "192.0.2.1", "example.com", "2001:db8::1", "*.example.com", "::ffff:198.51.100.1", "xn--bcher-kva.example")
	req, err := csr.Create(rand.Reader, csr.Subject{CommonName: "192.0.2.1"}, sans, key, keys.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IP:192.0.2.1:1", "DNS:example.com", "IP:2001:db8::1:4", "DNS:*.example.com", "IP:198.51.100.1:1", "DNS:xn--bcher-kva.example"}
	if got := sanEntries(t, req); !slices.Equal(got, want) {
		t.Errorf("SANs\n got  %q\n want %q", got, want)
	}
	if req.SignatureAlgorithm != x509.ECDSAWithSHA384 {
		t.Errorf("signature %v", req.SignatureAlgorithm)
	}
	if err := req.CheckSignature(); err != nil {
		t.Error(err)
	}
}

func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	key, err := keys.Generate(rand.Reader, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.Generate(rand.Reader, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	req, err := csr.Create(rand.Reader, csr.Subject{CommonName: "example.com"}, mustNames(t, "example.com"), key, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := csr.Check(req.Raw, key.Public()); err != nil {
		t.Fatalf("Check of a good CSR: %v", err)
	}
	if _, err := csr.Check(req.Raw, other.Public()); err == nil {
		t.Error("Check accepted a CSR for another key")
	}
	bad := bytes.Clone(req.Raw)
	bad[len(bad)-3] ^= 0xff // inside the signature
	if _, err := csr.Check(bad, key.Public()); err == nil {
		t.Error("Check accepted a CSR with a broken signature")
	}
	if _, err := csr.Check([]byte("junk"), key.Public()); err == nil {
		t.Error("Check accepted junk")
	}
}

func TestCreateSignatureAlgorithms(t *testing.T) {
	t.Parallel()
	for _, a := range []keys.Algorithm{keys.RSA2048, keys.ECP256, keys.ECP384} {
		key, err := keys.Generate(rand.Reader, a)
		if err != nil {
			t.Fatal(err)
		}
		req, err := csr.Create(rand.Reader, csr.Subject{CommonName: "example.com"}, mustNames(t, "example.com"), key, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if req.SignatureAlgorithm != a.SignatureAlgorithm() {
			t.Errorf("%s: signature %v, want %v", a, req.SignatureAlgorithm, a.SignatureAlgorithm())
		}
	}
}

func TestPEM(t *testing.T) {
	t.Parallel()
	der := bytes.Repeat([]byte{0x30, 0x01}, 100)
	out, err := csr.PEM(der)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if !strings.HasPrefix(s, "-----BEGIN CERTIFICATE REQUEST-----\n") || !strings.HasSuffix(s, "-----END CERTIFICATE REQUEST-----\n") {
		t.Errorf("PEM = %q", s)
	}
	b, rest := pem.Decode(out)
	if b == nil || !bytes.Equal(b.Bytes, der) || len(rest) != 0 {
		t.Error("PEM does not round-trip")
	}
}
