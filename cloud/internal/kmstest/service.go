package kmstest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

// recordingSealer keeps a copy of every plaintext (PKCS#8 private key) it
// is asked to seal, so tests can look for it where it must not be.
type recordingSealer struct {
	seal.Sealer
	mu   sync.Mutex
	seen [][]byte
}

func (r *recordingSealer) Seal(ctx context.Context, pt, aad []byte) (seal.SealedKey, error) {
	r.mu.Lock()
	r.seen = append(r.seen, bytes.Clone(pt))
	r.mu.Unlock()
	return r.Sealer.Seal(ctx, pt, aad)
}

func (r *recordingSealer) plaintexts() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.seen...)
}

type serviceRig struct {
	svc    *service.Service
	store  *keystore.File
	sealer *recordingSealer
	log    *bytes.Buffer
}

func newServiceRig(t *testing.T, s seal.Sealer) *serviceRig {
	t.Helper()
	store, err := keystore.OpenFile(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rig := &serviceRig{store: store, sealer: &recordingSealer{Sealer: s}, log: new(bytes.Buffer)}
	logger := slog.New(slog.NewJSONHandler(rig.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rig.svc, err = service.New(service.Config{Store: store, Sealer: rig.sealer, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return rig
}

// run creates a CSR the way an adapter does, log line included.
func (r *serviceRig) run(t *testing.T) service.Result {
	t.Helper()
	ctx := context.Background()
	res := r.svc.Run(ctx, r.svc.NewID(), params.Set{"CommonName": "kms.example.com", "KeyAlgorithm": "EC_prime256v1"})
	res.Start = time.Now()
	r.svc.Log(ctx, res)
	return res
}

// records lists the store; it also fails on any other file in the store
// directory (a partial or temporary record).
func (r *serviceRig) records(t *testing.T) []string {
	t.Helper()
	names, err := r.store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(r.store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(names) {
		t.Fatalf("store directory holds %d entries, %d records", len(entries), len(names))
	}
	return names
}

// checkNoSecrets looks for every data key the fake issued and every
// private key the service sealed in the log and in text.
func (r *serviceRig) checkNoSecrets(t *testing.T, f Fake, texts ...string) {
	t.Helper()
	secrets := append(f.IssuedDataKeys(), r.sealer.plaintexts()...)
	for _, text := range append(texts, r.log.String()) {
		if i, ok := kmsfake.LeakedSecret(text, secrets...); ok {
			t.Fatalf("secret #%d leaked into %q", i, text)
		}
	}
}

// serviceStoresEnvelopeSealedKey runs the real service with the adapter's
// sealer: the record holds the envelope-sealed key, which a Keyring opens
// back to the private key of the CSR, and no secret reaches the log.
func serviceStoresEnvelopeSealedKey(t *testing.T, b Backend) {
	f := b.NewFake(t)
	id := f.CreateKey("csrfn")
	env := b.Sealer(t, f, "alias/csrfn", kmsfake.Credentials{}, Fast)
	rig := newServiceRig(t, env)

	res := rig.run(t)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	names := rig.records(t)
	if len(names) != 1 || names[0] != record.Name(res.Response.PubMd5) {
		t.Fatalf("store holds %v", names)
	}
	data, err := rig.store.Load(context.Background(), names[0])
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	sk := rec.SealedKey
	if sk.Scheme != b.Scheme || sk.KeyID != id || len(sk.WrappedKey) == 0 || len(sk.Nonce) == 0 || len(sk.Ciphertext) == 0 {
		t.Fatalf("sealed key %+v", sk)
	}
	var raw struct{ SealedKey map[string]any }
	if err := json.Unmarshal(data, &raw); err != nil || raw.SealedKey["WrappedKey"] == nil {
		t.Fatalf("stored JSON lacks SealedKey.WrappedKey: %s", data)
	}

	local, err := seal.NewLocal(RandomBytes(seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: local, b.Scheme: env}
	key, err := record.OpenKey(context.Background(), rec, ring)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(res.Response.Csr))
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
		t.Fatal("the recovered key does not match the CSR")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if pts := rig.sealer.plaintexts(); len(pts) != 1 || !bytes.Equal(pts[0], der) {
		t.Fatal("the recovered key is not the sealed one")
	}
	if !strings.Contains(rig.log.String(), res.Response.PubMd5) {
		t.Errorf("log line lacks the PubMd5: %s", rig.log)
	}
	rig.checkNoSecrets(t, f, string(data))
}

// serviceKMSOutage: a KMS outage makes the service answer Internal.Error,
// store nothing and leak nothing; it works again once KMS is back.
func serviceKMSOutage(t *testing.T, b Backend) {
	for _, outage := range []kmsfake.Outage{kmsfake.Unavailable, kmsfake.Refused, kmsfake.Throttled} {
		t.Run(outage.String(), func(t *testing.T) {
			f := b.NewFake(t)
			env := b.Sealer(t, f, f.CreateKey(""), kmsfake.Credentials{}, Fast)
			rig := newServiceRig(t, env)
			f.SetOutage(outage)
			res := rig.run(t)
			if res.Response != nil || res.Err == nil {
				t.Fatalf("answered %+v during a KMS outage", res.Response)
			}
			if res.Err.Status != 500 || res.Err.Code != apierr.CodeInternal || res.Err.Message != apierr.MsgInternal {
				t.Fatalf("error %d %s %q, want 500 %s", res.Err.Status, res.Err.Code, res.Err.Message, apierr.CodeInternal)
			}
			if !errors.Is(res.Err, service.ErrUnavailable) {
				t.Errorf("cause %v does not wrap ErrUnavailable", res.Err.Cause)
			}
			if names := rig.records(t); len(names) != 0 {
				t.Fatalf("store holds %v after a failed request", names)
			}
			if !strings.Contains(rig.log.String(), `"Code":"Internal.Error"`) {
				t.Errorf("log: %s", rig.log)
			}
			rig.checkNoSecrets(t, f, res.Err.Error())

			f.SetOutage(kmsfake.Up)
			if res := rig.run(t); res.Err != nil {
				t.Fatalf("after the outage: %v", res.Err)
			}
		})
	}
}

// serviceSealingRefused: KMS refusing to seal (access denied, a disabled
// key) makes the service answer EncodeKeyError, not an outage.
func serviceSealingRefused(t *testing.T, b Backend) {
	f := b.NewFake(t)
	id := f.CreateKey("")
	env := b.Sealer(t, f, id, kmsfake.Credentials{}, Fast)
	rig := newServiceRig(t, env)
	for _, c := range []struct {
		name        string
		setup, undo func()
	}{
		{"access denied", func() { f.DenyAccess(id, true) }, func() { f.DenyAccess(id, false) }},
		{"disabled key", func() { f.SetKeyState(id, kmsfake.Disabled) }, func() { f.SetKeyState(id, kmsfake.Enabled) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			defer c.undo()
			res := rig.run(t)
			if res.Response != nil || res.Err == nil || res.Err.Status != 500 || res.Err.Code != apierr.CodeEncodeKeyError || res.Err.Message != apierr.MsgEncodeKey {
				t.Fatalf("result %+v, err %v; want 500 %s", res.Response, res.Err, apierr.CodeEncodeKeyError)
			}
			if errors.Is(res.Err, service.ErrUnavailable) {
				t.Errorf("%v wraps ErrUnavailable", res.Err)
			}
			if names := rig.records(t); len(names) != 0 {
				t.Fatalf("store holds %v", names)
			}
			rig.checkNoSecrets(t, f, res.Err.Error())
		})
	}
}
