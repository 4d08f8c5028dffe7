// Package kmsbase is what the KMS data-key adapters (cloud/awskms,
// cloud/alikms) share besides their errors (cloud/internal/kmserr): the
// size of the data keys, the retry policy's defaults and backoff, the
// check of a key id, and the envelope sealer they plug into.
package kmsbase

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/csrfn/csrfn/core/seal"
)

// DataKeySize is the size of the data keys requested (KeySpec AES_256).
const DataKeySize = 32

// Defaults of the retry policy.
const (
	DefaultMaxAttempts    = 3
	DefaultBaseDelay      = 100 * time.Millisecond
	DefaultMaxBackoff     = 1 * time.Second
	DefaultAttemptTimeout = 5 * time.Second
	DefaultTimeout        = 10 * time.Second
	defaultDialTimeout    = 3 * time.Second
)

// Policy is an adapter's retry policy; zero fields take the defaults.
type Policy struct {
	// MaxAttempts per operation, the first included.
	MaxAttempts int
	// BaseDelay and MaxBackoff shape the exponential full-jitter backoff
	// between attempts (Backoff).
	BaseDelay, MaxBackoff time.Duration
	// AttemptTimeout bounds each HTTP attempt.
	AttemptTimeout time.Duration
	// Timeout bounds each operation, retries included.
	Timeout time.Duration
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	p.MaxAttempts = orDefault(p.MaxAttempts, DefaultMaxAttempts)
	p.BaseDelay = orDefault(p.BaseDelay, DefaultBaseDelay)
	p.MaxBackoff = orDefault(p.MaxBackoff, DefaultMaxBackoff)
	p.AttemptTimeout = orDefault(p.AttemptTimeout, DefaultAttemptTimeout)
	p.Timeout = orDefault(p.Timeout, DefaultTimeout)
	return p
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// DialTimeout bounds connecting, TLS handshake included: 3 s, or the
// attempt timeout when that is shorter.
func (p Policy) DialTimeout() time.Duration { return min(defaultDialTimeout, p.AttemptTimeout) }

// Backoff is the delay before attempt+1: exponential with full jitter, a
// random delay up to min(MaxBackoff, BaseDelay·2^(attempt-1)). It is the
// same for throttling as for other retryable errors.
func (p Policy) Backoff(attempt int) time.Duration {
	ceil := p.BaseDelay << min(max(attempt-1, 0), 16)
	if ceil <= 0 || ceil > p.MaxBackoff {
		ceil = p.MaxBackoff
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)+1))
	if err != nil {
		return ceil
	}
	return time.Duration(n.Int64())
}

// KeyID trims a KMS key id and checks that it is one token of at most
// maxLen bytes. Errors start with errPrefix (e.g. "awskms: ") and say that
// the id is not one of forms (e.g. "a KMS key id or alias").
func KeyID(keyID, errPrefix string, maxLen int, forms string) (string, error) {
	keyID = strings.TrimSpace(keyID)
	if keyID == "" {
		return "", errors.New(errPrefix + "empty KMS key id")
	}
	if strings.ContainsAny(keyID, " \t\r\n") || len(keyID) > maxLen {
		return "", fmt.Errorf(errPrefix+"%q is not %s", keyID, forms)
	}
	return keyID, nil
}

// Sealer returns the envelope sealer (and opener) of scheme on k. random
// supplies the AES-GCM nonces; nil means crypto/rand.
func Sealer(scheme string, k seal.DataKeys, random io.Reader) *seal.Envelope {
	if random == nil {
		random = rand.Reader
	}
	return &seal.Envelope{Scheme: scheme, KMS: k, Random: random}
}
