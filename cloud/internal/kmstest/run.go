package kmstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/csrfn/csrfn/cloud/internal/kmserr"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

// Run runs the tests every adapter passes on b, one subtest each.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Backend)
	}{
		{"RoundTrip", roundTrip},
		{"TamperingAndWrongContext", tamperingAndWrongContext},
		{"KeyRefusals", keyRefusals},
		{"Outage", outage},
		{"Timeouts", timeouts},
		{"ServiceStoresEnvelopeSealedKey", serviceStoresEnvelopeSealedKey},
		{"ServiceKMSOutage", serviceKMSOutage},
		{"ServiceSealingRefused", serviceSealingRefused},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, b) })
	}
}

func roundTrip(t *testing.T, b Backend) {
	f := b.NewFake(t)
	id := f.CreateKey("csrfn")
	keyIDs := b.KeyIDs(id)
	for _, keyID := range keyIDs {
		t.Run(keyID, func(t *testing.T) {
			env := b.Sealer(t, f, keyID, kmsfake.Credentials{}, Fast)
			secret := RandomBytes(1200)
			sk, err := env.Seal(context.Background(), secret, []byte(PubMd5))
			if err != nil {
				t.Fatal(err)
			}
			if sk.Scheme != b.Scheme || sk.KeyID != id || len(sk.WrappedKey) == 0 || len(sk.Nonce) != 12 {
				t.Fatalf("sealed key %+v", sk)
			}
			if bytes.Contains(sk.Ciphertext, secret[:32]) {
				t.Fatal("ciphertext holds the plaintext")
			}
			got, err := env.Open(context.Background(), sk, []byte(PubMd5))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatal("round trip changed the plaintext")
			}
		})
	}
	if g, d := f.Calls("GenerateDataKey"), f.Calls("Decrypt"); g != len(keyIDs) || d != len(keyIDs) {
		t.Errorf("calls: GenerateDataKey %d, Decrypt %d; want %d and %d", g, d, len(keyIDs), len(keyIDs))
	}
}

func tamperingAndWrongContext(t *testing.T, b Backend) {
	f := b.NewFake(t)
	env := b.Sealer(t, f, f.CreateKey(""), kmsfake.Credentials{}, Fast)
	secret := RandomBytes(100)
	ctx := context.Background()
	sk, err := env.Seal(ctx, secret, []byte(PubMd5))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		if errors.Is(err, service.ErrUnavailable) {
			t.Errorf("%s: %v wraps ErrUnavailable", name, err)
		}
		if err != nil {
			NoLeak(t, f, err.Error(), secret)
		}
	}
	// Every part of the wrapped key is covered: the blob header (key or
	// key version id), the nonce, the ciphertext and the tag.
	n := len(sk.WrappedKey)
	for _, i := range []int{0, 5, 20, 36, 40, n - 20, n - 17, n - 1} {
		bad := sk
		bad.WrappedKey = bytes.Clone(sk.WrappedKey)
		bad.WrappedKey[i] ^= 0x01
		_, err := env.Open(ctx, bad, []byte(PubMd5))
		check(fmt.Sprintf("wrapped key byte %d", i), err, kmserr.ErrInvalidCiphertext)
	}
	for _, flip := range []struct {
		i   int
		bit byte
	}{{3, 0x80}, {7, 0x40}} {
		bad := sk
		bad.Ciphertext = bytes.Clone(sk.Ciphertext)
		bad.Ciphertext[flip.i] ^= flip.bit
		_, err = env.Open(ctx, bad, []byte(PubMd5))
		check(fmt.Sprintf("ciphertext byte %d", flip.i), err, seal.ErrAuth)
	}
	bad := sk
	bad.Nonce = bytes.Clone(sk.Nonce)
	bad.Nonce[0] ^= 1
	_, err = env.Open(ctx, bad, []byte(PubMd5))
	check("nonce", err, seal.ErrAuth)

	_, err = env.Open(ctx, sk, []byte("00000000000000000000000000000000"))
	check("another PubMd5", err, kmserr.ErrInvalidCiphertext)

	// A record claiming another KMS key is refused.
	bad = sk
	bad.KeyID = f.CreateKey("")
	_, err = env.Open(ctx, bad, []byte(PubMd5))
	check("another key id", err, kmserr.ErrIncorrectKey)

	if got, err := env.Open(ctx, sk, []byte(PubMd5)); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the untouched record no longer opens: %v", err)
	}
}

func keyRefusals(t *testing.T, b Backend) {
	f := b.NewFake(t)
	id := f.CreateKey("")
	ctx := context.Background()
	for _, c := range b.Refusals(f, id) {
		t.Run(c.Name, func(t *testing.T) {
			if c.Setup != nil {
				c.Setup()
				defer c.Undo()
			}
			before := f.Calls("GenerateDataKey")
			env := b.Sealer(t, f, c.KeyID, c.Creds, Fast)
			_, err := env.Seal(ctx, []byte("pkcs8"), []byte(PubMd5))
			if !errors.Is(err, c.Want) || errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("err %v, want %v", err, c.Want)
			}
			var ke *kmserr.Error
			if !errors.As(err, &ke) || ke.Code != c.Code || ke.Status != c.Status || ke.Op != "GenerateDataKey" || ke.RequestID == "" {
				t.Fatalf("error %#v, want %d %s", ke, c.Status, c.Code)
			}
			if n := f.Calls("GenerateDataKey") - before; n != 1 {
				t.Errorf("%d requests; a refusal must not be retried", n)
			}
		})
	}
	// Decrypt refusals too.
	env := b.Sealer(t, f, id, kmsfake.Credentials{}, Fast)
	sk, err := env.Seal(ctx, []byte("pkcs8"), []byte(PubMd5))
	if err != nil {
		t.Fatal(err)
	}
	f.SetKeyState(id, kmsfake.Disabled)
	if _, err := env.Open(ctx, sk, []byte(PubMd5)); !errors.Is(err, kmserr.ErrKeyState) {
		t.Fatalf("Decrypt with a disabled key: %v", err)
	}
	f.SetKeyState(id, kmsfake.Enabled)
}

func outage(t *testing.T, b Backend) {
	f := b.NewFake(t)
	p := Fast
	p.AttemptTimeout = 200 * time.Millisecond
	env := b.Sealer(t, f, f.CreateKey(""), kmsfake.Credentials{}, p)
	ctx := context.Background()
	sk, err := env.Seal(ctx, []byte("pkcs8"), []byte(PubMd5))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		outage   kmsfake.Outage
		attempts int // requests the fake sees per operation
	}{
		{kmsfake.Unavailable, 3},
		{kmsfake.Throttled, 3},
		{kmsfake.Stalled, 3},
		{kmsfake.Refused, 0},
	} {
		t.Run(c.outage.String(), func(t *testing.T) {
			f.SetOutage(c.outage)
			defer f.SetOutage(kmsfake.Up)
			before := f.Calls("")
			start := time.Now()
			_, err := env.Seal(ctx, []byte("pkcs8"), []byte(PubMd5))
			if !errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("Seal: %v does not wrap ErrUnavailable", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Seal took %v", d)
			}
			if n := f.Calls("") - before; n != c.attempts {
				t.Errorf("%d requests, want %d (bounded retries)", n, c.attempts)
			}
			_, err = env.Open(ctx, sk, []byte(PubMd5))
			if !errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("Open: %v does not wrap ErrUnavailable", err)
			}
			NoLeak(t, f, err.Error())
		})
	}
	if _, err := env.Open(ctx, sk, []byte(PubMd5)); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func timeouts(t *testing.T, b Backend) {
	f := b.NewFake(t)
	p := Fast
	p.Timeout = 300 * time.Millisecond // shorter than one attempt
	env := b.Sealer(t, f, f.CreateKey(""), kmsfake.Credentials{}, p)
	f.SetOutage(kmsfake.Stalled)
	defer f.SetOutage(kmsfake.Up)
	start := time.Now()
	_, err := env.Seal(context.Background(), []byte("pkcs8"), []byte(PubMd5))
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("operation timeout: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about 300ms", d)
	}

	// The caller giving up is not an outage.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = env.Seal(ctx, []byte("pkcs8"), []byte(PubMd5))
	if !errors.Is(err, context.Canceled) || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("cancelled: %v", err)
	}
}
