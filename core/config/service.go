package config

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/url"

	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// Store is a store as the adapters hold it: the service creates records,
// and the adapter closes it on shutdown.
type Store interface {
	service.KeyStore
	io.Closer
}

// Platform is what an adapter adds to the neutral wiring: the cloud store
// schemes it serves and its KMS. Nil fields are simply not offered.
type Platform struct {
	// Stores opens a store URL by scheme (e.g. "s3", "oss"). file:// is
	// always available.
	Stores map[string]func(ctx context.Context, u *url.URL) (Store, error)
	// KMS builds the envelope sealer for CSRFN_KMS_KEY_ID.
	KMS func(ctx context.Context, keyID string) (seal.Sealer, error)
	// CreateDefaultKey creates ./.csrfn/master.key when no key is
	// configured (the local server only).
	CreateDefaultKey bool
}

// Built is a wired service and what it holds.
type Built struct {
	Service     *service.Service
	Store       Store
	SealerNote  string // how keys are sealed, for the start-up message
	CreatedFile bool   // a new master key file was created
}

// Build wires the service from c for platform p.
func Build(ctx context.Context, c *Config, p Platform, log *slog.Logger) (*Built, error) {
	var store Store
	switch opener, ok := p.Stores[c.Store.Scheme]; {
	case c.Store.Scheme == "file":
		fs, err := FileStore(c)
		if err != nil {
			return nil, err
		}
		store = fs
	case ok:
		s, err := opener(ctx, c.Store)
		if _, named := AsError(err); err != nil && !named {
			return nil, &Error{EnvStore, err.Error()}
		} else if err != nil {
			return nil, err
		}
		store = s
	default:
		return nil, &Error{EnvStore, "this adapter does not serve " + c.Store.Scheme + ":// stores"}
	}

	b := &Built{Store: store}
	var sealer seal.Sealer
	switch {
	case c.KMSKeyID != "" && p.KMS != nil:
		s, err := p.KMS(ctx, c.KMSKeyID)
		if err != nil {
			store.Close()
			if _, named := AsError(err); named {
				return nil, err
			}
			return nil, &Error{EnvKMSKeyID, err.Error()}
		}
		sealer = s
		b.SealerNote = "KMS key " + c.KMSKeyID
	case c.KMSKeyID != "":
		store.Close()
		return nil, &Error{EnvKMSKeyID, "this adapter has no KMS; use " + EnvMasterKey + " or " + EnvMasterKeyFile}
	default:
		s, keyFile, created, err := LocalSealer(c, rand.Reader, p.CreateDefaultKey)
		if err != nil {
			store.Close()
			return nil, err
		}
		sealer = s
		b.CreatedFile = created
		b.SealerNote = "master key from " + EnvMasterKey
		if keyFile != "" {
			b.SealerNote = "master key " + keyFile
		}
	}
	svc, err := service.New(service.Config{Store: store, Sealer: sealer, Defaults: c.Defaults, Logger: log})
	if err != nil {
		store.Close()
		return nil, err
	}
	b.Service = svc
	return b, nil
}
