package record_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/csr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/names"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
)

// fixture builds a complete, valid record for a fresh P-256 key.
func fixture(t *testing.T) (*record.Record, *seal.Local) {
	t.Helper()
	ctx := context.Background()
	mk := make([]byte, seal.MasterKeySize)
	rand.Read(mk)
	l, err := seal.NewLocal(mk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keys.Generate(rand.Reader, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := names.Parse("example.com", names.MaxCommonName)
	req, err := csr.Create(rand.Reader, csr.Subject{CommonName: "example.com"}, []names.Name{n}, key, keys.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	pemCSR, _ := csr.PEM(req.Raw)
	pubMd5 := keys.PubMd5(req.RawSubjectPublicKeyInfo)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := l.Seal(ctx, der, []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	return &record.Record{
		Version: record.Version, PubMd5: pubMd5, RequestId: "0AEDAF20-4DDF-4165-8750-47FF9C1929C9",
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), CommonName: "example.com", SANs: []string{"example.com"},
		Subject: csr.Subject{CommonName: "example.com"}, KeyAlgorithm: keys.ECP256, Csr: string(pemCSR), SealedKey: sk,
	}, l
}

func TestRoundTripAndOpenKey(t *testing.T) {
	t.Parallel()
	rec, l := fixture(t)
	b, err := record.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	// The schema's field names, as the contract lists them.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Version", "PubMd5", "RequestId", "CreatedAt", "CommonName", "SANs", "Subject", "KeyAlgorithm", "Csr", "SealedKey"} {
		if _, ok := m[f]; !ok {
			t.Errorf("record JSON lacks %s", f)
		}
	}
	var sk map[string]json.RawMessage
	json.Unmarshal(m["SealedKey"], &sk)
	for _, f := range []string{"Scheme", "KeyID", "Nonce", "Ciphertext"} {
		if _, ok := sk[f]; !ok {
			t.Errorf("SealedKey JSON lacks %s", f)
		}
	}
	got, err := record.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.PubMd5 != rec.PubMd5 || got.Csr != rec.Csr || !got.CreatedAt.Equal(rec.CreatedAt) || got.KeyAlgorithm != rec.KeyAlgorithm {
		t.Error("round trip changed the record")
	}
	k, err := record.OpenKey(context.Background(), got, l)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	if keys.PubMd5(spki) != rec.PubMd5 {
		t.Error("the opened key does not match PubMd5")
	}
	if record.Name(rec.PubMd5) != rec.PubMd5+".json" {
		t.Errorf("Name = %q", record.Name(rec.PubMd5))
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	t.Parallel()
	rec, _ := fixture(t)
	tests := []struct {
		name string
		edit func(*record.Record)
		raw  string
	}{
		{"not JSON", nil, "{"},
		{"version 0", func(r *record.Record) { r.Version = 0 }, ""},
		{"future version", func(r *record.Record) { r.Version = record.Version + 1 }, ""},
		{"bad PubMd5", func(r *record.Record) { r.PubMd5 = strings.ToUpper(r.PubMd5) }, ""},
		{"no CSR", func(r *record.Record) { r.Csr = "" }, ""},
		{"no sealed key", func(r *record.Record) { r.SealedKey.Ciphertext = nil }, ""},
	}
	for _, tc := range tests {
		b := []byte(tc.raw)
		if tc.edit != nil {
			r := *rec
			tc.edit(&r)
			b, _ = json.Marshal(&r)
		}
		if _, err := record.Unmarshal(b); !errors.Is(err, record.ErrCorrupt) {
			t.Errorf("%s: error %v, want ErrCorrupt", tc.name, err)
		}
	}
	bad := *rec
	bad.PubMd5 = "x"
	if _, err := record.Marshal(&bad); err == nil {
		t.Error("Marshal accepted a bad PubMd5")
	}
}

func TestOpenKeyRefusesSwaps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, la := fixture(t)
	b, _ := fixture(t)

	// The sealed key of b under a's PubMd5: the AAD does not match.
	swapped := *a
	swapped.SealedKey = b.SealedKey
	if _, err := record.OpenKey(ctx, &swapped, la); err == nil {
		t.Error("OpenKey accepted another record's sealed key")
	}
	// The right key under a foreign master key.
	if _, err := record.OpenKey(ctx, b, la); !errors.Is(err, seal.ErrWrongKey) {
		t.Errorf("OpenKey under another master key: %v, want ErrWrongKey", err)
	}
	// A record whose CSR belongs to another key.
	mixed := *a
	mixed.Csr = b.Csr
	if _, err := record.OpenKey(ctx, &mixed, la); !errors.Is(err, record.ErrCorrupt) {
		t.Errorf("OpenKey with a foreign CSR: %v, want ErrCorrupt", err)
	}
}

func TestValidPubMd5(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"629bf4fd8104eda171135bcb0f77a10b":  true,
		"629BF4FD8104EDA171135BCB0F77A10B":  false,
		"629bf4fd8104eda171135bcb0f77a10":   false,
		"629bf4fd8104eda171135bcb0f77a10bb": false,
		"../../../../etc/passwd":            false,
	} {
		if record.ValidPubMd5(s) != want {
			t.Errorf("ValidPubMd5(%q) != %v", s, want)
		}
	}
}
