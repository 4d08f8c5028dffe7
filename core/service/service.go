// Package service runs CreateDcdnCertificateSigningRequest: generate a key,
// build and check the CSR, seal the key, store the record durably, and only
// then answer. It knows nothing of HTTP or of any platform.
package service

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
)

// KeyStore is what the service needs of a store: create a record once.
type KeyStore interface {
	Create(ctx context.Context, name string, data []byte) error
}

// Config wires a Service. Store and Sealer are required; the rest have
// production defaults and exist so tests can force failures.
type Config struct {
	Store    KeyStore
	Sealer   seal.Sealer
	Defaults request.Defaults // zero value: request.SeedDefaults
	Logger   *slog.Logger     // nil: discard

	Rand  io.Reader        // key generation, signatures, nonces; nil: crypto/rand
	Now   func() time.Time // nil: time.Now
	NewID func() string    // RequestIds; nil: NewRequestID
}

// Service is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("service: no key store")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("service: no sealer")
	}
	if cfg.Defaults == (request.Defaults{}) {
		cfg.Defaults = request.SeedDefaults
	}
	if err := cfg.Defaults.Validate(); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = NewRequestID
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: log}, nil
}

// Defaults are the subject defaults requests are parsed with.
func (s *Service) Defaults() request.Defaults { return s.cfg.Defaults }

// NewID returns a fresh RequestId.
func (s *Service) NewID() string { return s.cfg.NewID() }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// Logger is where request lines go.
func (s *Service) Logger() *slog.Logger { return s.log }

// Response is the operation's answer.
type Response struct {
	RequestId  string
	PubMd5     string
	Csr        string
	CommonName string
}

// Create runs the operation for a validated request under RequestId id.
// Errors are *apierr.Error; a response is returned only after its sealed
// key is durably stored.
func (s *Service) Create(ctx context.Context, id string, r request.Request) (*Response, error) {
	key, err := keys.Generate(s.cfg.Rand, r.KeyAlgorithm)
	if err != nil {
		return nil, apierr.KeyGen(r.KeyAlgorithm.IsEC(), err)
	}
	return s.createWithKey(ctx, id, r, key)
}

// createWithKey is everything after key generation; benchmarks call it
// with a pre-made key.
func (s *Service) createWithKey(ctx context.Context, id string, r request.Request, key crypto.Signer) (*Response, error) {
	req, err := csr.Create(s.cfg.Rand, r.Subject, r.SANs, key, r.KeyAlgorithm)
	if err != nil {
		return nil, apierr.Internal(apierr.CodeCreateCSRError, err)
	}
	pemCSR, err := csr.PEM(req.Raw)
	if err != nil {
		return nil, apierr.Internal(apierr.CodeEncodeCSRError, err)
	}
	pubMd5 := keys.PubMd5(req.RawSubjectPublicKeyInfo)

	sealed, err := s.sealKey(ctx, key, pubMd5)
	if err != nil {
		return nil, err
	}
	rec := &record.Record{
		Version:      record.Version,
		PubMd5:       pubMd5,
		RequestId:    id,
		CreatedAt:    s.cfg.Now().UTC(),
		CommonName:   r.CommonName,
		SANs:         sanStrings(r),
		Subject:      r.Subject,
		KeyAlgorithm: r.KeyAlgorithm,
		Csr:          string(pemCSR),
		SealedKey:    sealed,
	}
	data, err := record.Marshal(rec)
	if err != nil {
		return nil, apierr.Internal(apierr.CodeInternal, err)
	}
	if err := s.cfg.Store.Create(ctx, record.Name(pubMd5), data); err != nil {
		return nil, apierr.Internal(apierr.CodeInternal, err)
	}
	return &Response{RequestId: id, PubMd5: pubMd5, Csr: string(pemCSR), CommonName: r.CommonName}, nil
}

// sealKey marshals the key as PKCS#8 and seals it bound to its PubMd5. A
// sealer that reports its backend unavailable (a KMS outage) gives
// Internal.Error, which a caller may retry; anything else is
// Internal.EncodeKeyError.
func (s *Service) sealKey(ctx context.Context, key crypto.Signer, pubMd5 string) (seal.SealedKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return seal.SealedKey{}, apierr.Internal(apierr.CodeEncodeKeyError, err)
	}
	defer seal.Zero(der)
	sealed, err := s.cfg.Sealer.Seal(ctx, der, []byte(pubMd5))
	if errors.Is(err, ErrUnavailable) {
		return seal.SealedKey{}, apierr.Internal(apierr.CodeInternal, err)
	}
	if err != nil {
		return seal.SealedKey{}, apierr.Internal(apierr.CodeEncodeKeyError, err)
	}
	return sealed, nil
}

// ErrUnavailable is wrapped by backends (KMS, stores) whose service could
// not be reached; it maps to Internal.Error.
var ErrUnavailable = errors.New("backend service unavailable")

func sanStrings(r request.Request) []string {
	out := make([]string, len(r.SANs))
	for i, n := range r.SANs {
		out[i] = n.Value
	}
	return out
}

// NewRequestID returns a random UUID v4 in upper case, as Alibaba's are.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789ABCDEF"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&0xf])
	}
	return string(out)
}
