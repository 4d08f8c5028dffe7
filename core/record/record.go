// Package record defines the stored form of a key: one JSON document per
// key, named by its PubMd5, created once. The schema is versioned so that
// later operations (pairing a signed certificate, export, renewal) can add
// to it while older records stay readable.
package record

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/seal"
)

// Version is the schema version this build writes and the newest it reads.
const Version = 1

// Record is one key with the CSR made for it.
type Record struct {
	Version      int
	PubMd5       string
	RequestId    string
	CreatedAt    time.Time
	CommonName   string
	SANs         []string
	Subject      csr.Subject
	KeyAlgorithm keys.Algorithm
	Csr          string
	SealedKey    seal.SealedKey
}

var pubMd5RE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Name is the store key of the record for pubMd5.
func Name(pubMd5 string) string { return pubMd5 + ".json" }

// ValidPubMd5 reports whether s has the form of a PubMd5.
func ValidPubMd5(s string) bool { return pubMd5RE.MatchString(s) }

// ErrCorrupt is wrapped by Unmarshal for a record that cannot be used.
var ErrCorrupt = errors.New("record: corrupt record")

// Marshal encodes r.
func Marshal(r *Record) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// Unmarshal decodes and checks a stored record.
func Unmarshal(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if r.Version < 1 || r.Version > Version {
		return nil, fmt.Errorf("%w: version %d; this build reads versions 1 to %d", ErrCorrupt, r.Version, Version)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &r, nil
}

func (r *Record) check() error {
	switch {
	case !ValidPubMd5(r.PubMd5):
		return fmt.Errorf("record: bad PubMd5 %q", r.PubMd5)
	case r.Csr == "":
		return errors.New("record: no CSR")
	case r.SealedKey.Scheme == "" || len(r.SealedKey.Ciphertext) == 0:
		return errors.New("record: no sealed key")
	}
	return nil
}

// OpenKey unseals the record's private key and checks that it is the key of
// the record's PubMd5 and CSR, so a record that passes can be trusted.
func OpenKey(ctx context.Context, r *Record, o seal.Opener) (crypto.Signer, error) {
	der, err := o.Open(ctx, r.SealedKey, []byte(r.PubMd5))
	if err != nil {
		return nil, err
	}
	defer seal.Zero(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed key is not PKCS#8: %v", ErrCorrupt, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: sealed key of type %T", ErrCorrupt, k)
	}
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if keys.PubMd5(spki) != r.PubMd5 {
		return nil, fmt.Errorf("%w: the sealed key does not match PubMd5 %s", ErrCorrupt, r.PubMd5)
	}
	block, _ := pem.Decode([]byte(r.Csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: the CSR is not PEM", ErrCorrupt)
	}
	if _, err := csr.Check(block.Bytes, signer.Public()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return signer, nil
}
