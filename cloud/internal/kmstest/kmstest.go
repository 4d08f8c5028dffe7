// Package kmstest is the test kit of the KMS data-key adapters
// (cloud/awskms, cloud/alikms): Run, the tests both adapters pass through
// their real SDK clients against their fake KMS (internal/kmsfake) and
// with the real service on top, and the helpers their own tests share. It
// is meant for tests.
package kmstest

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/cloud/internal/kmsbase"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

// PubMd5 is the additional data the tests seal under.
const PubMd5 = "629bf4fd8104eda171135bcb0f77a10b"

// Fast is a retry policy with short backoff and timeouts, for tests.
var Fast = kmsbase.Policy{
	MaxAttempts:    3,
	BaseDelay:      time.Millisecond,
	MaxBackoff:     5 * time.Millisecond,
	AttemptTimeout: 2 * time.Second,
	Timeout:        5 * time.Second,
}

// Fake is what both fake KMSs offer (*kmsfake.AWS, *kmsfake.Ali).
type Fake interface {
	URL() string
	Credentials() kmsfake.Credentials
	NewCredentials(sts bool) kmsfake.Credentials
	ExpireCredentials(accessKeyID string)
	CreateKey(alias string) string
	SetKeyState(keyID string, st kmsfake.KeyState)
	DenyAccess(keyID string, deny bool)
	SetOutage(o kmsfake.Outage)
	Calls(op string) int
	IssuedDataKeys() [][]byte
}

// Backend is a KMS adapter under test.
type Backend struct {
	// Scheme is the adapter's seal.SealedKey scheme.
	Scheme string
	// NewFake starts the adapter's fake KMS.
	NewFake func(t *testing.T) Fake
	// Sealer is the adapter's sealer for keyID on f, through its real SDK
	// client with the retry policy p, signing with creds (f's own
	// long-term credentials when zero).
	Sealer func(t *testing.T, f Fake, keyID string, creds kmsfake.Credentials, p kmsbase.Policy) *seal.Envelope
	// KeyIDs are the names of the key whose id (as CreateKey("csrfn")
	// returned it) is id: the id itself, "alias/csrfn", and whatever else
	// the platform accepts.
	KeyIDs func(id string) []string
	// Refusals are the ways the fake f refuses GenerateDataKey with the
	// key id.
	Refusals func(f Fake, id string) []Refusal
}

// Refusal is a way KMS refuses an operation, and the error the adapter
// must make of it.
type Refusal struct {
	Name        string
	KeyID       string
	Creds       kmsfake.Credentials // zero: the fake's own
	Setup, Undo func()              // nil: nothing to set up
	Want        error               // the kind
	Status      int                 // the answer's HTTP status
	Code        string              // the answer's KMS error code
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// NoLeak fails if a data key f issued, or one of extra, appears in text.
func NoLeak(t testing.TB, f Fake, text string, extra ...[]byte) {
	t.Helper()
	if i, ok := kmsfake.LeakedSecret(text, append(f.IssuedDataKeys(), extra...)...); ok {
		t.Fatalf("secret #%d leaked into %q", i, text)
	}
}

// Canned is a server that answers every request with what Answer last set:
// answers a fake KMS does not give, such as a load balancer's HTML 503.
type Canned struct {
	URL string

	mu                sync.Mutex
	status            int
	contentType, body string
}

// NewCanned starts a Canned server on 127.0.0.1; it stops when the test
// ends.
func NewCanned(t testing.TB) *Canned {
	c := &Canned{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		status, contentType, body := c.status, c.contentType, c.body
		c.mu.Unlock()
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// Answer sets the answer to every request from now on.
func (c *Canned) Answer(status int, contentType, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.contentType, c.body = status, contentType, body
}
