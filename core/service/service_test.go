//go:debug cryptocustomrand=1

// The directive above makes crypto/rsa and crypto/ecdsa use the reader the
// service passes them (Go 1.26 ignores it otherwise), so that a failing
// Config.Rand really fails key generation.

package service_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/testkit"
)

// fixedNow is the clock of every test service.
var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CST", 8*3600))

// recordingSealer seals with a real seal.Local (or fails with err) and keeps
// a copy of every plaintext it was handed: the service zeroes its own.
type recordingSealer struct {
	inner seal.Sealer
	err   error

	mu     sync.Mutex
	handed [][]byte
}

func (r *recordingSealer) Seal(ctx context.Context, plaintext, aad []byte) (seal.SealedKey, error) {
	r.mu.Lock()
	r.handed = append(r.handed, bytes.Clone(plaintext))
	r.mu.Unlock()
	if r.err != nil {
		return seal.SealedKey{}, r.err
	}
	return r.inner.Seal(ctx, plaintext, aad)
}

func (r *recordingSealer) plaintexts() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.handed)
}

// failingStore refuses every record and keeps what it was handed.
type failingStore struct {
	err error

	mu     sync.Mutex
	handed map[string][]byte
}

func (f *failingStore) Create(_ context.Context, name string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handed == nil {
		f.handed = map[string][]byte{}
	}
	f.handed[name] = bytes.Clone(data)
	return f.err
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) {
	return 0, errors.New("entropy source failed: INJECTED-RAND-CAUSE")
}

// env is a service over a real file store and a real local sealer.
type env struct {
	dir     string
	store   *keystore.File
	master  []byte
	local   *seal.Local
	sealer  *recordingSealer
	logs    *testkit.SyncBuffer
	svc     *service.Service
	binding *httpapi.Binding
}

const fixedID = "0AEDAF20-4DDF-4165-8750-47FF9C1929C9"

// newEnv builds an env; edit may change the service's Config.
func newEnv(t *testing.T, edit func(*service.Config, *env)) *env {
	t.Helper()
	e := &env{dir: filepath.Join(t.TempDir(), "store"), logs: &testkit.SyncBuffer{}}
	var err error
	e.store, err = keystore.OpenFile(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.master = make([]byte, seal.MasterKeySize)
	rand.Read(e.master)
	e.local, err = seal.NewLocal(e.master, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.sealer = &recordingSealer{inner: e.local}
	cfg := service.Config{
		Store:  e.store,
		Sealer: e.sealer,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return fixedNow },
		NewID:  func() string { return fixedID },
	}
	if edit != nil {
		edit(&cfg, e)
	}
	e.svc, err = service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.binding = &httpapi.Binding{Service: e.svc, HostID: "csrfn.test"}
	return e
}

// post sends a JSON body through the HTTP binding.
func (e *env) post(t *testing.T, body any) httpapi.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return e.binding.Serve(context.Background(), httpapi.Request{
		Method: "POST", Host: "localhost", Header: map[string][]string{"Content-Type": {"application/json"}}, Body: b,
	})
}

// storeFiles returns the names and contents of every file in the store.
func (e *env) storeFiles(t *testing.T) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(e.dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[ent.Name()] = b
	}
	return out
}

// forms returns the whole-value forms in which b could leak: raw, base64
// (four alphabets), hex.
func forms(b []byte) []string {
	out := []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString(b))
	}
	return out
}

// needles returns the forms of a value that is secret throughout (a
// private exponent, a prime, a scalar, a master key): its whole forms and
// every 18-byte window of it in raw, base64 and hex form, at every
// alignment, so that a partial or embedded leak is found too.
func needles(b []byte) []string {
	out := forms(b)
	const w = 18 // bytes: 24 base64 characters, 36 hex digits
	for i := 0; i+w <= len(b); i++ {
		win := b[i : i+w]
		out = append(out, string(win), hex.EncodeToString(win), strings.ToUpper(hex.EncodeToString(win)),
			base64.StdEncoding.EncodeToString(win), base64.URLEncoding.EncodeToString(win))
	}
	return out
}

// secretsOf returns what to search for of a PKCS#8 key: the DER and its
// PEM as whole values (they also hold public parts, which the CSR
// rightly carries), and the private parts with their windows.
func secretsOf(t *testing.T, der []byte, into map[string][]string) {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("the sealer was not handed PKCS#8: %v", err)
	}
	into["PKCS#8 DER"] = forms(der)
	into["PKCS#8 PEM"] = []string{string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		into["RSA private exponent"] = needles(k.D.Bytes())
		into["RSA prime p"] = needles(k.Primes[0].Bytes())
		into["RSA prime q"] = needles(k.Primes[1].Bytes())
	case *ecdsa.PrivateKey:
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		into["EC private scalar"] = needles(d)
	default:
		t.Fatalf("unexpected key type %T", k)
	}
}

// assertNoLeak fails if any secret appears in any of the texts.
func assertNoLeak(t *testing.T, secrets map[string][]string, texts map[string]string) {
	t.Helper()
	for sname, ns := range secrets {
		for where, text := range texts {
			for _, n := range ns {
				if strings.Contains(text, n) {
					// Never print the secret itself.
					t.Errorf("%s: found the %s (a %d-character form of it)", where, sname, len(n))
					break
				}
			}
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	l, _ := seal.NewLocal(make([]byte, 32), rand.Reader)
	st := &failingStore{}
	if _, err := service.New(service.Config{Sealer: l}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := service.New(service.Config{Store: st}); err == nil {
		t.Error("New without a sealer succeeded")
	}
	bad := request.SeedDefaults
	bad.Country = "CHN"
	_, err := service.New(service.Config{Store: st, Sealer: l, Defaults: bad})
	var de *request.DefaultError
	if !errors.As(err, &de) || de.Param != "Country" {
		t.Errorf("New with a bad default country: %v", err)
	}
	s, err := service.New(service.Config{Store: st, Sealer: l})
	if err != nil {
		t.Fatal(err)
	}
	if s.Defaults() != request.SeedDefaults {
		t.Errorf("zero Defaults became %+v, want the seed's", s.Defaults())
	}
	if s.Logger() == nil || s.Now().IsZero() {
		t.Error("defaults not filled")
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

func TestNewRequestID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := service.NewRequestID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("RequestId %q is not an upper-case UUID v4", id)
		}
		if seen[id] {
			t.Fatalf("RequestId %q repeated", id)
		}
		seen[id] = true
	}
	// Without the seam the service uses it.
	l, _ := seal.NewLocal(make([]byte, 32), rand.Reader)
	s, _ := service.New(service.Config{Store: &failingStore{}, Sealer: l})
	if a, b := s.NewID(), s.NewID(); !uuidV4.MatchString(a) || a == b {
		t.Errorf("service ids %q %q", a, b)
	}
}

// TestRunStoresRecord checks the success path through Run: the record is
// stored under its PubMd5, opens to the CSR's key, and nothing in the store
// holds the private key in the clear.
func TestRunStoresRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	p := params.Set{"CommonName": "Example.COM.", "SANs": "www.example.com, 192.0.2.7", "KeyAlgorithm": "EC_prime256v1", "Email": "ops@example.com"}
	res := e.svc.Run(ctx, "REQ-1", p)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	resp := res.Response
	if resp.RequestId != "REQ-1" || resp.CommonName != "example.com" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(resp.PubMd5) {
		t.Errorf("response %+v", resp)
	}
	if res.Status() != 200 || res.Action != request.ActionDcdn || res.Request == nil {
		t.Errorf("result status %d action %q", res.Status(), res.Action)
	}
	if !strings.HasPrefix(resp.Csr, "-----BEGIN CERTIFICATE REQUEST-----\n") || !strings.HasSuffix(resp.Csr, "-----END CERTIFICATE REQUEST-----\n") {
		t.Errorf("Csr is not a newline-terminated PEM CERTIFICATE REQUEST")
	}

	files := e.storeFiles(t)
	if len(files) != 1 {
		t.Fatalf("store holds %d files, want 1", len(files))
	}
	b, err := e.store.Load(ctx, record.Name(resp.PubMd5))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != record.Version || rec.PubMd5 != resp.PubMd5 || rec.RequestId != "REQ-1" || rec.Csr != resp.Csr ||
		rec.CommonName != "example.com" || rec.KeyAlgorithm != keys.ECP256 || !rec.CreatedAt.Equal(fixedNow) || rec.CreatedAt.Location() != time.UTC {
		t.Errorf("record %+v", rec)
	}
	if want := []string{"example.com", "www.example.com", "192.0.2.7"}; !slices.Equal(rec.SANs, want) {
		t.Errorf("record SANs %q, want %q", rec.SANs, want)
	}
	if rec.Subject != res.Request.Subject || rec.Subject.Email != "ops@example.com" {
		t.Errorf("record subject %+v", rec.Subject)
	}
	if rec.SealedKey.Scheme != seal.SchemeLocal || rec.SealedKey.KeyID != e.local.ID() {
		t.Errorf("sealed key %q %q", rec.SealedKey.Scheme, rec.SealedKey.KeyID)
	}
	key, err := record.OpenKey(ctx, rec, e.local)
	if err != nil {
		t.Fatalf("OpenKey: %v", err)
	}
	block, _ := pem.Decode([]byte(resp.Csr))
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
		t.Error("the stored key does not match the CSR")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	handed := e.sealer.plaintexts()
	if len(handed) != 1 || !bytes.Equal(handed[0], der) {
		t.Error("the sealer was not handed the PKCS#8 DER of the stored key")
	}
	secrets := map[string][]string{"master key": needles(e.master)}
	secretsOf(t, der, secrets)
	if len(secrets) < 4 {
		t.Fatalf("only %d secrets to search for", len(secrets))
	}
	texts := map[string]string{}
	for name, b := range files {
		texts["store file "+name] = string(b)
	}
	e.svc.Log(ctx, res)
	texts["log"] = e.logs.String()
	texts["response"] = string(httpapi.EncodeJSON(res.Object("h")))
	assertNoLeak(t, secrets, texts)

	// The log line of a success.
	lines := e.logs.JSONLines(t)
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1", len(lines))
	}
	l := lines[0]
	for k, want := range map[string]any{"level": "INFO", "msg": "request", "RequestId": "REQ-1", "Action": request.ActionDcdn,
		"CommonName": "example.com", "PubMd5": resp.PubMd5, "KeyAlgorithm": "EC_prime256v1", "Status": float64(200)} {
		if l[k] != want {
			t.Errorf("log %s = %v, want %v", k, l[k], want)
		}
	}
	for _, k := range []string{"DurationMs", "PlatformRequestId"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line lacks %s", k)
		}
	}
	if _, ok := l["Cause"]; ok {
		t.Error("a success log line carries a Cause")
	}
}

func TestPlatformRequestID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := service.WithPlatformRequestID(context.Background(), "fc-req-42")
	if service.PlatformRequestID(ctx) != "fc-req-42" || service.PlatformRequestID(context.Background()) != "" {
		t.Fatal("platform request id not carried")
	}
	res := e.svc.Run(ctx, "REQ-2", params.Set{})
	res.Start = fixedNow.Add(-1500 * time.Microsecond)
	e.svc.Log(ctx, res)
	l := e.logs.JSONLines(t)[0]
	if l["PlatformRequestId"] != "fc-req-42" || l["RequestId"] != "REQ-2" {
		t.Errorf("log ids %v %v", l["PlatformRequestId"], l["RequestId"])
	}
	if l["DurationMs"] != 1.5 {
		t.Errorf("DurationMs %v, want 1.5", l["DurationMs"])
	}
	if l["level"] != "INFO" || l["Code"] != "MissingParameter" || l["Status"] != float64(400) {
		t.Errorf("4xx log line %v", l)
	}
	if _, ok := l["Cause"]; ok {
		t.Error("a 4xx log line carries a Cause")
	}
}

func TestRunAlias(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res := e.svc.Run(context.Background(), "R", params.Set{"Action": request.ActionCdn, "CommonName": "example.com", "KeyAlgorithm": "EC_prime256v1"})
	if res.Err != nil || res.Action != request.ActionCdn {
		t.Fatalf("alias: %v %q", res.Err, res.Action)
	}
	res = e.svc.Run(context.Background(), "R", params.Set{"Action": "Nope", "CommonName": "example.com"})
	if !errors.Is(res.Err, apierr.ErrActionNotFound) || res.Status() != 404 {
		t.Errorf("unknown action: %v", res.Err)
	}
	if len(e.storeFiles(t)) != 1 {
		t.Error("the refused request stored something")
	}
}

// requireCustomRand fails unless key generation reads the reader it is
// given, which the //go:debug line at the top of this file arranges.
func requireCustomRand(t *testing.T) {
	t.Helper()
	var n countingReader
	if _, err := keys.Generate(&n, keys.ECP256); err != nil {
		t.Fatal(err)
	}
	if n.n == 0 {
		t.Fatal("key generation read no random bytes: is //go:debug cryptocustomrand=1 in effect?")
	}
}

type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	c.n += int64(n)
	return n, err
}

// oneKeyRand serves the first read of more than one byte (the scalar of an
// EC key generation) and fails every later one (the signature's entropy).
// One-byte reads always succeed: crypto/internal/randutil.MaybeReadByte
// makes zero or one of them at random before each operation.
type oneKeyRand struct {
	mu   sync.Mutex
	bigs int
}

func (o *oneKeyRand) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(p) > 1 {
		if o.bigs > 0 {
			return 0, errors.New("entropy exhausted: INJECTED-RAND-CAUSE")
		}
		o.bigs++
	}
	return rand.Read(p)
}

// TestForcedFailures drives every failure seam of service.Config through
// the HTTP binding and checks the error body, the log line, the store and
// that no key material escapes.
func TestForcedFailures(t *testing.T) {
	t.Parallel()
	const marker = "INJECTED-"
	sealErr := errors.New("seal backend refused: INJECTED-SEAL-CAUSE")
	kmsDown := fmt.Errorf("kms: dial tcp 10.0.0.1:443: %w (INJECTED-KMS-CAUSE)", service.ErrUnavailable)
	storeErr := errors.New("disk full: INJECTED-STORE-CAUSE")
	storeDown := fmt.Errorf("s3: %w (INJECTED-S3-CAUSE)", service.ErrUnavailable)
	requireCustomRand(t)

	type tc struct {
		name     string
		alg      string
		edit     func(*service.Config, *env)
		code     string
		msg      string
		sealed   bool // the sealer was reached
		storeHit bool // the store was reached
	}
	var tests []tc
	for _, a := range keys.Algorithms {
		msg := "Failed to generate rsa key."
		if a.IsEC() {
			msg = "Failed to generate ec key."
		}
		tests = append(tests, tc{"keygen " + string(a), string(a),
			func(c *service.Config, _ *env) { c.Rand = failReader{} }, "Internal.KeyError", msg, false, false})
	}
	tests = append(tests,
		tc{"CSR signature", "EC_prime256v1",
			func(c *service.Config, _ *env) { c.Rand = &oneKeyRand{} }, "Internal.CreateCSRError", "Failed to create CSR.", false, false},
		tc{"sealer fails", "EC_prime256v1",
			func(_ *service.Config, e *env) { e.sealer.err = sealErr }, "Internal.EncodeKeyError", "Failed to encode private key.", true, false},
		tc{"sealer fails RSA", "RSA_2048",
			func(_ *service.Config, e *env) { e.sealer.err = sealErr }, "Internal.EncodeKeyError", "Failed to encode private key.", true, false},
		tc{"sealer unavailable", "EC_secp384r1",
			func(_ *service.Config, e *env) { e.sealer.err = kmsDown }, "Internal.Error",
			"The request processing has failed due to backend service exception.", true, false},
		tc{"store fails", "EC_prime256v1",
			func(c *service.Config, _ *env) { c.Store = &failingStore{err: storeErr} }, "Internal.Error",
			"The request processing has failed due to backend service exception.", true, true},
		tc{"store fails RSA", "RSA_2048",
			func(c *service.Config, _ *env) { c.Store = &failingStore{err: storeErr} }, "Internal.Error",
			"The request processing has failed due to backend service exception.", true, true},
		tc{"store unavailable", "EC_prime256v1",
			func(c *service.Config, _ *env) { c.Store = &failingStore{err: storeDown} }, "Internal.Error",
			"The request processing has failed due to backend service exception.", true, true},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var fs *failingStore
			e := newEnv(t, func(c *service.Config, e *env) {
				tc.edit(c, e)
				fs, _ = c.Store.(*failingStore)
			})
			resp := e.post(t, map[string]any{"CommonName": "example.com", "SANs": []string{"www.example.com"}, "KeyAlgorithm": tc.alg})

			if resp.Status != 500 {
				t.Fatalf("status %d, want 500: %s", resp.Status, resp.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatalf("body is not a JSON object of strings: %v", err)
			}
			want := map[string]string{"RequestId": fixedID, "HostId": "csrfn.test", "Code": tc.code, "Message": tc.msg}
			if !mapsEqual(body, want) {
				t.Errorf("body %v, want %v", body, want)
			}
			if h := resp.Header.Get("X-Acs-Request-Id"); h != fixedID {
				t.Errorf("X-Acs-Request-Id %q", h)
			}
			if bytes.Contains(resp.Body, []byte(marker)) || bytes.Contains(resp.Body, []byte("BEGIN")) ||
				bytes.Contains(resp.Body, []byte("Csr")) || bytes.Contains(resp.Body, []byte("PubMd5")) {
				t.Errorf("the 5xx body carries internal text or a CSR: %s", resp.Body)
			}

			handed := e.sealer.plaintexts()
			if tc.sealed != (len(handed) == 1) {
				t.Errorf("sealer handed %d keys, want reached=%v", len(handed), tc.sealed)
			}
			if tc.storeHit != (fs != nil && len(fs.handed) == 1) {
				t.Errorf("store reached: %v, want %v", fs != nil && len(fs.handed) > 0, tc.storeHit)
			}
			if got := e.storeFiles(t); len(got) != 0 {
				t.Errorf("the store directory holds %d files after a failure", len(got))
			}

			lines := e.logs.JSONLines(t)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l["level"] != "ERROR" || l["RequestId"] != fixedID || l["Code"] != tc.code || l["Status"] != float64(500) {
				t.Errorf("log line %v", l)
			}
			cause, _ := l["Cause"].(string)
			if !strings.Contains(cause, marker) {
				t.Errorf("log Cause %q does not carry the internal error", cause)
			}
			if l["CommonName"] != "example.com" || l["KeyAlgorithm"] != tc.alg {
				t.Errorf("log CommonName %v KeyAlgorithm %v", l["CommonName"], l["KeyAlgorithm"])
			}

			secrets := map[string][]string{"master key": needles(e.master)}
			for _, der := range handed {
				secretsOf(t, der, secrets)
			}
			texts := map[string]string{"log": e.logs.String(), "body": string(resp.Body), "headers": fmt.Sprint(resp.Header)}
			if fs != nil {
				for n, b := range fs.handed {
					texts["record handed to the store "+n] = string(b)
				}
			}
			assertNoLeak(t, secrets, texts)
		})
	}
}

// TestLeakCheckCanFail makes sure the leak search finds a planted leak.
func TestLeakCheckCanFail(t *testing.T) {
	t.Parallel()
	secret := make([]byte, 64)
	rand.Read(secret)
	for name, text := range map[string]string{
		"hex":            "cause: " + hex.EncodeToString(secret),
		"base64":         base64.StdEncoding.EncodeToString(secret),
		"embedded b64":   base64.StdEncoding.EncodeToString(append([]byte{1}, secret[10:40]...)),
		"window upper":   strings.ToUpper(hex.EncodeToString(secret[20:50])),
		"raw in a field": `{"x":"` + string(secret[5:30]) + `"}`,
	} {
		found := false
		for _, n := range needles(secret) {
			if strings.Contains(text, n) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: planted leak not found", name)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestConcurrentRequests runs requests in parallel: every one gets its own
// record, key and RequestId.
func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *service.Config, _ *env) { c.NewID = nil })
	const n = 12
	ids := make([]string, n)
	md5s := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res := e.svc.Run(context.Background(), service.NewRequestID(), params.Set{"CommonName": fmt.Sprintf("h%d.example.com", i), "KeyAlgorithm": "EC_prime256v1"})
			if res.Err != nil {
				t.Errorf("request %d: %v", i, res.Err)
				return
			}
			ids[i], md5s[i] = res.RequestId, res.Response.PubMd5
		})
	}
	wg.Wait()
	if len(e.storeFiles(t)) != n {
		t.Errorf("store holds %d records, want %d", len(e.storeFiles(t)), n)
	}
	slices.Sort(ids)
	slices.Sort(md5s)
	if len(slices.Compact(ids)) != n || len(slices.Compact(md5s)) != n {
		t.Error("RequestIds or PubMd5s repeat")
	}
}

// TestObject checks the API object of each outcome.
func TestObject(t *testing.T) {
	t.Parallel()
	r := service.Result{RequestId: "R", Err: apierr.Missing("CommonName")}
	eb, ok := r.Object("host").(*service.ErrorBody)
	if !ok || *eb != (service.ErrorBody{RequestId: "R", HostId: "host", Code: "MissingParameter", Message: apierr.Missing("CommonName").Message}) {
		t.Errorf("error object %+v", r.Object("host"))
	}
	ok2 := service.Result{RequestId: "R", Response: &service.Response{RequestId: "R", PubMd5: "p", Csr: "c", CommonName: "n"}}
	if resp, ok := ok2.Object("host").(*service.Response); !ok || resp.PubMd5 != "p" {
		t.Errorf("success object %+v", ok2.Object("host"))
	}
	f := newEnv(t, nil).svc.Failed("R2", apierr.TooLarge())
	if f.Status() != 413 || f.Action != request.ActionDcdn || f.RequestId != "R2" || f.Response != nil {
		t.Errorf("Failed = %+v", f)
	}
	if f := newEnv(t, nil).svc.Failed("R3", errors.New("boom")); f.Err.Code != "Internal.Error" || f.Status() != 500 {
		t.Errorf("Failed(plain error) = %+v", f.Err)
	}
}
