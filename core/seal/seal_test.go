package seal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/csrfn/csrfn/core/seal"
)

func newMaster(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, seal.MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newLocal(t *testing.T, key []byte) *seal.Local {
	t.Helper()
	l, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const aad = "629bf4fd8104eda171135bcb0f77a10b"

func TestLocalRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := newMaster(t)
	l := newLocal(t, key)
	plain := []byte("a PKCS#8 private key, in DER")
	sk, err := l.Seal(ctx, plain, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	if sk.Scheme != seal.SchemeLocal || sk.KeyID != l.ID() || sk.KeyID != seal.KeyID(key) || len(sk.WrappedKey) != 0 {
		t.Errorf("sealed key header %q %q %d", sk.Scheme, sk.KeyID, len(sk.WrappedKey))
	}
	if len(sk.Nonce) != 12 {
		t.Errorf("nonce of %d bytes", len(sk.Nonce))
	}
	if bytes.Contains(sk.Ciphertext, plain) {
		t.Error("the ciphertext holds the plaintext")
	}
	got, err := l.Open(ctx, sk, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Error("round trip changed the plaintext")
	}
	// A second Local with the same key opens it too.
	if got, err := newLocal(t, bytes.Clone(key)).Open(ctx, sk, []byte(aad)); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("open with a second instance: %v", err)
	}
	// Two seals of one plaintext differ (fresh nonces).
	sk2, err := l.Seal(ctx, plain, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(sk.Nonce, sk2.Nonce) || bytes.Equal(sk.Ciphertext, sk2.Ciphertext) {
		t.Error("two seals share a nonce or a ciphertext")
	}
	// KeyID does not reveal the key.
	for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key)} {
		if strings.Contains(sk.KeyID, enc[:16]) {
			t.Error("KeyID shows the master key")
		}
	}
}

func TestLocalOpenFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := newMaster(t)
	l := newLocal(t, key)
	plain := []byte("secret key material")
	good, err := l.Seal(ctx, plain, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	clone := func() seal.SealedKey {
		sk := good
		sk.Nonce = bytes.Clone(good.Nonce)
		sk.Ciphertext = bytes.Clone(good.Ciphertext)
		return sk
	}
	tests := []struct {
		name   string
		sk     func() seal.SealedKey
		aad    string
		opener seal.Opener
		want   error
	}{
		{"tampered ciphertext", func() seal.SealedKey { sk := clone(); sk.Ciphertext[0] ^= 1; return sk }, aad, l, seal.ErrAuth},
		{"tampered tag", func() seal.SealedKey { sk := clone(); sk.Ciphertext[len(sk.Ciphertext)-1] ^= 1; return sk }, aad, l, seal.ErrAuth},
		{"truncated ciphertext", func() seal.SealedKey { sk := clone(); sk.Ciphertext = sk.Ciphertext[:5]; return sk }, aad, l, seal.ErrAuth},
		{"tampered nonce", func() seal.SealedKey { sk := clone(); sk.Nonce[3] ^= 0x80; return sk }, aad, l, seal.ErrAuth},
		{"short nonce", func() seal.SealedKey { sk := clone(); sk.Nonce = sk.Nonce[:8]; return sk }, aad, l, seal.ErrAuth},
		{"other PubMd5", clone, "00000000000000000000000000000000", l, seal.ErrAuth},
		{"no AAD", clone, "", l, seal.ErrAuth},
		{"wrong master key", clone, aad, newLocal(t, newMaster(t)), seal.ErrWrongKey},
		{"KeyID forged to another key", func() seal.SealedKey { sk := clone(); sk.KeyID = seal.KeyID(newMaster(t)); return sk }, aad, l, seal.ErrWrongKey},
		{"unknown scheme", func() seal.SealedKey { sk := clone(); sk.Scheme = "rot13"; return sk }, aad, l, seal.ErrUnknownScheme},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opener.Open(ctx, tc.sk(), []byte(tc.aad))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open error %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Error("Open returned plaintext with an error")
			}
			if strings.Contains(err.Error(), string(plain)) || strings.Contains(err.Error(), hex.EncodeToString(key)) {
				t.Error("the error carries secret material")
			}
		})
	}
}

func TestNewLocalKeySize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := seal.NewLocal(make([]byte, n), rand.Reader); err == nil {
			t.Errorf("NewLocal accepted a %d-byte key", n)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestSealNonceFailure(t *testing.T) {
	t.Parallel()
	l, err := seal.NewLocal(newMaster(t), failReader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Seal(context.Background(), []byte("x"), []byte(aad)); err == nil {
		t.Error("Seal succeeded without a nonce")
	}
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := newLocal(t, newMaster(t))
	sk, err := l.Seal(ctx, []byte("x"), []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: l}
	if got, err := ring.Open(ctx, sk, []byte(aad)); err != nil || string(got) != "x" {
		t.Errorf("Keyring.Open = %q, %v", got, err)
	}
	sk.Scheme = "aws-kms-envelope"
	if _, err := ring.Open(ctx, sk, []byte(aad)); !errors.Is(err, seal.ErrUnknownScheme) {
		t.Errorf("Keyring.Open of an unknown scheme: %v", err)
	}
}

// fakeKMS wraps data keys under its own master key and checks the context.
type fakeKMS struct {
	mu      sync.Mutex
	master  []byte
	fail    error
	lastCtx map[string]string
}

func (k *fakeKMS) GenerateDataKey(ctx context.Context, ec map[string]string) ([]byte, []byte, string, error) {
	if k.fail != nil {
		return nil, nil, "", k.fail
	}
	k.mu.Lock()
	k.lastCtx = maps.Clone(ec)
	k.mu.Unlock()
	dk := make([]byte, 32)
	rand.Read(dk)
	l, _ := seal.NewLocal(k.master, rand.Reader)
	w, err := l.Seal(ctx, dk, []byte(ec["csrfn:PubMd5"]))
	if err != nil {
		return nil, nil, "", err
	}
	return dk, append(w.Nonce, w.Ciphertext...), "kms-key-1", nil
}

func (k *fakeKMS) Decrypt(ctx context.Context, wrapped []byte, keyID string, ec map[string]string) ([]byte, error) {
	if keyID != "kms-key-1" || len(wrapped) < 12 {
		return nil, errors.New("kms: bad key")
	}
	l, _ := seal.NewLocal(k.master, rand.Reader)
	return l.Open(ctx, seal.SealedKey{Scheme: seal.SchemeLocal, KeyID: l.ID(), Nonce: wrapped[:12], Ciphertext: wrapped[12:]}, []byte(ec["csrfn:PubMd5"]))
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kms := &fakeKMS{master: newMaster(t)}
	e := &seal.Envelope{Scheme: "test-kms-envelope", KMS: kms, Random: rand.Reader}
	plain := []byte("pkcs8 der")
	sk, err := e.Seal(ctx, plain, []byte(aad))
	if err != nil {
		t.Fatal(err)
	}
	if sk.Scheme != "test-kms-envelope" || sk.KeyID != "kms-key-1" || len(sk.WrappedKey) == 0 {
		t.Errorf("sealed key %q %q %d", sk.Scheme, sk.KeyID, len(sk.WrappedKey))
	}
	if kms.lastCtx["csrfn:PubMd5"] != aad {
		t.Errorf("encryption context %v does not bind the PubMd5", kms.lastCtx)
	}
	got, err := e.Open(ctx, sk, []byte(aad))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := e.Open(ctx, sk, []byte("ffffffffffffffffffffffffffffffff")); err == nil {
		t.Error("Open with another PubMd5 succeeded")
	}
	tampered := sk
	tampered.Ciphertext = bytes.Clone(sk.Ciphertext)
	tampered.Ciphertext[0] ^= 1
	if _, err := e.Open(ctx, tampered, []byte(aad)); !errors.Is(err, seal.ErrAuth) {
		t.Errorf("Open of a tampered ciphertext: %v", err)
	}
	other := sk
	other.Scheme = seal.SchemeLocal
	if _, err := e.Open(ctx, other, []byte(aad)); !errors.Is(err, seal.ErrUnknownScheme) {
		t.Errorf("Open of another scheme: %v", err)
	}
	down := errors.New("kms down")
	kms.fail = down
	if _, err := e.Seal(ctx, plain, []byte(aad)); !errors.Is(err, down) {
		t.Errorf("Seal with a failing KMS: %v", err)
	}
}

func TestZero(t *testing.T) {
	t.Parallel()
	b := []byte{1, 2, 3}
	seal.Zero(b)
	if !bytes.Equal(b, []byte{0, 0, 0}) {
		t.Errorf("Zero left %v", b)
	}
	seal.Zero(nil)
}

func TestDecodeKey(t *testing.T) {
	t.Parallel()
	key := newMaster(t)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		s := enc.EncodeToString(key)
		got, err := seal.DecodeKey(" " + s + "\n")
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("DecodeKey(%T) failed: %v", enc, err)
		}
	}
	bad := []string{
		base64.StdEncoding.EncodeToString(key[:16]),
		base64.StdEncoding.EncodeToString(append(bytes.Clone(key), 7)),
		"notbase64!!notbase64!!notbase64!!",
		"",
		hex.EncodeToString(key),
	}
	for _, s := range bad {
		_, err := seal.DecodeKey(s)
		if err == nil {
			t.Errorf("DecodeKey accepted a bad key of %d characters", len(s))
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) {
			t.Error("the DecodeKey error echoes its input")
		}
		if len(s) > 8 && strings.Contains(err.Error(), s[:8]) {
			t.Error("the DecodeKey error echoes part of its input")
		}
	}
}

func writeKeyFile(t *testing.T, dir string, mode os.FileMode, content string) string {
	t.Helper()
	p := filepath.Join(dir, "master.key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadKeyFile(t *testing.T) {
	t.Parallel()
	key := newMaster(t)
	b64 := base64.StdEncoding.EncodeToString(key) + "\n"
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := writeKeyFile(t, t.TempDir(), mode, b64)
		got, err := seal.ReadKeyFile(p)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o601, 0o610} {
		p := writeKeyFile(t, t.TempDir(), mode, b64)
		_, err := seal.ReadKeyFile(p)
		if !errors.Is(err, seal.ErrKeyFileMode) {
			t.Errorf("mode %04o: error %v, want ErrKeyFileMode", mode, err)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(b64)) {
			t.Error("the error shows the key")
		}
	}
	if _, err := seal.ReadKeyFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	short := base64.StdEncoding.EncodeToString(key[:20])
	p := writeKeyFile(t, t.TempDir(), 0o600, short)
	if _, err := seal.ReadKeyFile(p); err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("short key: %v", err)
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", ".csrfn")
	p := filepath.Join(dir, "master.key")
	k1, created, err := seal.LoadOrCreateKeyFile(p, rand.Reader)
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	if len(k1) != seal.MasterKeySize {
		t.Fatalf("key of %d bytes", len(k1))
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", dst.Mode().Perm())
	}
	k2, created, err := seal.LoadOrCreateKeyFile(p, rand.Reader)
	if err != nil || created {
		t.Fatalf("second call: created %v, %v", created, err)
	}
	if !bytes.Equal(k1, k2) {
		t.Error("the second call returned another key")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the key directory holds %d entries, want only master.key", len(ents))
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.LoadOrCreateKeyFile(p, rand.Reader); !errors.Is(err, seal.ErrKeyFileMode) {
		t.Errorf("readable key file: %v, want ErrKeyFileMode", err)
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "k", "master.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = seal.LoadOrCreateKeyFile(p, rand.Reader) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("concurrent first starts returned different keys")
		}
	}
}

func TestLoadOrCreateKeyFileRandomFailure(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := seal.LoadOrCreateKeyFile(p, io.LimitReader(rand.Reader, 3)); err == nil {
		t.Fatal("created a key from 3 random bytes")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file was left behind: %v", err)
	}
}
