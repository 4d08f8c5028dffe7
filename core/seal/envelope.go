package seal

import (
	"context"
	"fmt"
	"io"
)

// DataKeys is a cloud KMS as envelope sealing uses it. context is bound to
// the data key (AWS: encryption context; Alibaba: EncryptionContext) so the
// KMS refuses to unwrap it for another record.
type DataKeys interface {
	// GenerateDataKey returns a fresh 256-bit data key in plaintext and
	// wrapped under the KMS key, and the id of that KMS key.
	GenerateDataKey(ctx context.Context, context map[string]string) (plaintext, wrapped []byte, keyID string, err error)
	// Decrypt unwraps a data key.
	Decrypt(ctx context.Context, wrapped []byte, keyID string, context map[string]string) ([]byte, error)
}

// Envelope seals each key under a fresh KMS data key. The PubMd5 (aad) is
// both the AEAD's additional data and the data key's encryption context.
type Envelope struct {
	Scheme string // e.g. "aws-kms-envelope"; recorded so Open can pick the KMS
	KMS    DataKeys
	Random io.Reader
}

func encryptionContext(aad []byte) map[string]string {
	return map[string]string{"csrfn:PubMd5": string(aad)}
}

func (e *Envelope) Seal(ctx context.Context, plaintext, aad []byte) (SealedKey, error) {
	dk, wrapped, keyID, err := e.KMS.GenerateDataKey(ctx, encryptionContext(aad))
	if err != nil {
		return SealedKey{}, fmt.Errorf("seal: generate data key: %w", err)
	}
	defer Zero(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return SealedKey{}, err
	}
	nonce, ct, err := gcmSeal(aead, e.Random, plaintext, aad)
	if err != nil {
		return SealedKey{}, err
	}
	return SealedKey{Scheme: e.Scheme, KeyID: keyID, WrappedKey: wrapped, Nonce: nonce, Ciphertext: ct}, nil
}

func (e *Envelope) Open(ctx context.Context, sk SealedKey, aad []byte) ([]byte, error) {
	if sk.Scheme != e.Scheme {
		return nil, fmt.Errorf("%w %q for %s", ErrUnknownScheme, sk.Scheme, e.Scheme)
	}
	dk, err := e.KMS.Decrypt(ctx, sk.WrappedKey, sk.KeyID, encryptionContext(aad))
	if err != nil {
		return nil, fmt.Errorf("seal: decrypt data key: %w", err)
	}
	defer Zero(dk)
	aead, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	return gcmOpen(aead, sk.Nonce, sk.Ciphertext, aad)
}
