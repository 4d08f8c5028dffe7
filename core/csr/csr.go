// Package csr builds PKCS#10 certificate signing requests with the subject
// order and SAN encoding of the contract, and checks each one before it is
// handed out.
package csr

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
)

// Subject is the distinguished name of a CSR. Empty fields are left out.
type Subject struct {
	Country          string
	State            string
	City             string
	Organization     string
	OrganizationUnit string
	CommonName       string
	Email            string `json:",omitempty"`
}

var (
	oidEmailAddress  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidSubjectAltExt = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// rawSubject encodes the subject in the order C, ST, L, O, OU, CN,
// emailAddress, as `openssl req` does, with the email as an IA5String (RFC
// 5280's type for it; encoding/asn1 would pick UTF8String).
func rawSubject(s Subject) ([]byte, error) {
	name := pkix.Name{CommonName: s.CommonName}
	if s.Country != "" {
		name.Country = []string{s.Country}
	}
	if s.State != "" {
		name.Province = []string{s.State}
	}
	if s.City != "" {
		name.Locality = []string{s.City}
	}
	if s.Organization != "" {
		name.Organization = []string{s.Organization}
	}
	if s.OrganizationUnit != "" {
		name.OrganizationalUnit = []string{s.OrganizationUnit}
	}
	seq := name.ToRDNSequence() // C, ST, L, O, OU, CN
	if s.Email != "" {
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{
			Type:  oidEmailAddress,
			Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(s.Email)},
		}})
	}
	return asn1.Marshal(seq)
}

// sanExtension encodes the names in the order given. crypto/x509 would
// group DNS names before IP addresses, which would move an IP CommonName
// from the first place.
func sanExtension(sans []names.Name) (pkix.Extension, error) {
	var gns []asn1.RawValue
	for _, n := range sans {
		switch n.Kind {
		case names.IP:
			gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: n.Addr.AsSlice()})
		default:
			gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte(n.Value)})
		}
	}
	der, err := asn1.Marshal(gns)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSubjectAltExt, Value: der}, nil
}

// Create builds and signs the CSR, parses it back and checks its signature
// and that it carries key's public key. It returns the parsed CSR, whose Raw
// is the DER and whose RawSubjectPublicKeyInfo gives the PubMd5. random is
// passed to the signer.
func Create(random io.Reader, s Subject, sans []names.Name, key crypto.Signer, alg keys.Algorithm) (*x509.CertificateRequest, error) {
	subj, err := rawSubject(s)
	if err != nil {
		return nil, fmt.Errorf("csr: subject: %w", err)
	}
	tmpl := &x509.CertificateRequest{RawSubject: subj, SignatureAlgorithm: alg.SignatureAlgorithm()}
	if len(sans) > 0 {
		ext, err := sanExtension(sans)
		if err != nil {
			return nil, fmt.Errorf("csr: subjectAltName: %w", err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{ext}
	}
	der, err := x509.CreateCertificateRequest(random, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("csr: sign: %w", err)
	}
	return Check(der, key.Public())
}

// Check parses der, verifies its self-signature and that it holds pub.
func Check(der []byte, pub crypto.PublicKey) (*x509.CertificateRequest, error) {
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("csr: parse back: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr: self-check: %w", err)
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(req.PublicKey) {
		return nil, errors.New("csr: self-check: the CSR does not carry the generated public key")
	}
	return req, nil
}

// PEM encodes der as a newline-terminated CERTIFICATE REQUEST block.
func PEM(der []byte) ([]byte, error) {
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if out == nil {
		return nil, errors.New("csr: PEM encoding failed")
	}
	return out, nil
}
