// Package seal encrypts private keys before they leave memory: AES-256-GCM
// with the key's PubMd5 as additional data, under a local master key or
// under a data key from a cloud KMS (envelope encryption).
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// SealedKey is a sealed private key as the record stores it. []byte fields
// are base64 in JSON.
type SealedKey struct {
	Scheme     string
	KeyID      string
	WrappedKey []byte `json:",omitempty"` // the KMS-wrapped data key, envelope schemes only
	Nonce      []byte
	Ciphertext []byte
}

// Sealer seals a plaintext bound to aad.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) (SealedKey, error)
}

// Opener recovers what a Sealer sealed.
type Opener interface {
	Open(ctx context.Context, sk SealedKey, aad []byte) ([]byte, error)
}

// Errors of opening. Their text never carries key material.
var (
	ErrAuth          = errors.New("seal: authentication failed: the sealed key was altered or belongs to another record")
	ErrWrongKey      = errors.New("seal: the record was sealed under another key")
	ErrUnknownScheme = errors.New("seal: unknown scheme")
)

// SchemeLocal is AES-256-GCM under the local master key.
const SchemeLocal = "local-aes-256-gcm"

// MasterKeySize is the size of a local master key.
const MasterKeySize = 32

// Local seals under a local 256-bit master key.
type Local struct {
	aead   cipher.AEAD
	id     string
	random io.Reader
}

// NewLocal returns a sealer for key; random supplies nonces.
func NewLocal(key []byte, random io.Reader) (*Local, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("seal: the master key must be %d bytes, not %d", MasterKeySize, len(key))
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Local{aead: aead, id: KeyID(key), random: random}, nil
}

// KeyID names a master key without revealing it: the start of an HMAC of a
// fixed label under the key. It lets Open tell "wrong key" from "tampered".
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrfn master key id"))
	return "local:" + hex.EncodeToString(m.Sum(nil)[:8])
}

// ID is the KeyID of the master key.
func (l *Local) ID() string { return l.id }

func (l *Local) Seal(_ context.Context, plaintext, aad []byte) (SealedKey, error) {
	nonce, ct, err := gcmSeal(l.aead, l.random, plaintext, aad)
	if err != nil {
		return SealedKey{}, err
	}
	return SealedKey{Scheme: SchemeLocal, KeyID: l.id, Nonce: nonce, Ciphertext: ct}, nil
}

func (l *Local) Open(_ context.Context, sk SealedKey, aad []byte) ([]byte, error) {
	if sk.Scheme != SchemeLocal {
		return nil, fmt.Errorf("%w %q for the local master key", ErrUnknownScheme, sk.Scheme)
	}
	if sk.KeyID != l.id {
		return nil, fmt.Errorf("%w (%s, this master key is %s)", ErrWrongKey, sk.KeyID, l.id)
	}
	return gcmOpen(l.aead, sk.Nonce, sk.Ciphertext, aad)
}

// Keyring opens a SealedKey with the Opener registered for its scheme, so a
// store may hold records sealed by several schemes.
type Keyring map[string]Opener

func (k Keyring) Open(ctx context.Context, sk SealedKey, aad []byte) ([]byte, error) {
	o, ok := k[sk.Scheme]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownScheme, sk.Scheme)
	}
	return o.Open(ctx, sk, aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

func gcmSeal(aead cipher.AEAD, random io.Reader, plaintext, aad []byte) (nonce, ct []byte, err error) {
	nonce = make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(random, nonce); err != nil {
		return nil, nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return nonce, aead.Seal(nil, nonce, plaintext, aad), nil
}

func gcmOpen(aead cipher.AEAD, nonce, ct, aad []byte) ([]byte, error) {
	if len(nonce) != aead.NonceSize() {
		return nil, ErrAuth
	}
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

// Zero overwrites b: a best effort to shorten the life of key material.
func Zero(b []byte) {
	clear(b)
}
