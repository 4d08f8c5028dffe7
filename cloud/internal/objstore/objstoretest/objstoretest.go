// Package objstoretest is the test kit of the object-store backends
// (cloud/s3store, cloud/ossstore): gofakes3, an in-memory S3 server, to run
// them against (behind a platform's shim), request recording and fault
// injection in front of it, and Run, the tests of the objstore rules
// (bounded retries, the idempotent create, the call timeout, outages) that
// each backend runs through its own SDK. It is meant for tests.
package objstoretest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/core/keystore/storetest"
)

// Bucket is the bucket Serve creates.
const Bucket = "csrfn-test"

// Serve starts gofakes3 (in memory, no authentication) on 127.0.0.1 with
// Bucket created, behind shim (what a platform adds to S3's semantics; nil:
// none) and wrap (outermost; nil: none). It stops when the test ends.
func Serve(t testing.TB, shim, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	backend = s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = gofakes3.New(backend).Server()
	if shim != nil {
		h = shim(h)
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h) // 127.0.0.1 only
	t.Cleanup(srv.Close)
	return srv.URL, backend
}

var prefixSeq atomic.Int64

// FreshURL returns scheme://bucket/<a prefix no other call returns>.
func FreshURL(scheme, bucket string) *url.URL {
	return &url.URL{Scheme: scheme, Host: bucket, Path: fmt.Sprintf("/t%d/keys", prefixSeq.Add(1))}
}

// Recorded is one request as a server saw it.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// Recorder keeps every request's method, path, query and headers.
type Recorder struct {
	mu   sync.Mutex
	reqs []Recorded
}

// Wrap records the requests to next.
func (rec *Recorder) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, Recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone()})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// All returns the requests recorded so far.
func (rec *Recorder) All() []Recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Recorded(nil), rec.reqs...)
}

// Fault says how a Faulty server misbehaves.
type Fault int

const (
	Fault503       Fault = iota // 503 ServiceUnavailable before touching the store
	Fault500                    // 500 InternalError before touching the store
	FaultDrop                   // close the connection without an answer, store untouched
	FaultDropAfter              // apply the request, then close the connection without an answer
	FaultHang                   // answer nothing until the client gives up
	Fault409                    // S3's 409 ConditionalRequestConflict, store untouched
)

// Faulty misbehaves on the first N requests that Match (all of them if N
// is negative), then passes requests through to Next.
type Faulty struct {
	Next  http.Handler
	Kind  Fault
	N     int
	Match func(*http.Request) bool // nil: every request
	// Answer writes the platform's error answer for Fault503, Fault500
	// and Fault409.
	Answer func(w http.ResponseWriter, kind Fault)

	mu   sync.Mutex
	seen int // matching requests
}

func (f *Faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	kind := f.Kind
	hit := f.Match == nil || f.Match(r)
	fail := false
	if hit {
		f.seen++
		fail = f.N < 0 || f.seen <= f.N
	}
	f.mu.Unlock()
	if !fail {
		f.Next.ServeHTTP(w, r)
		return
	}
	switch kind {
	case Fault503, Fault500, Fault409:
		f.Answer(w, kind)
	case FaultDrop:
		Drop(w)
	case FaultDropAfter:
		f.Next.ServeHTTP(httptest.NewRecorder(), r)
		Drop(w)
	case FaultHang:
		// Read the body first: the server notices the client hanging up
		// (and cancels r's context) only once it is done with the body.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// Reset makes the next n matching requests fail with kind.
func (f *Faulty) Reset(kind Fault, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Kind, f.N, f.seen = kind, n, 0
}

// Count is the number of matching requests since the last Reset.
func (f *Faulty) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// IsPut matches PUT requests.
func IsPut(r *http.Request) bool { return r.Method == http.MethodPut }

// Drop closes the client's connection without writing a response.
func Drop(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	_ = buf.Flush()
	conn.Close()
}

// ReadAll reads and closes an object's body, failing the test on an error.
func ReadAll(t testing.TB, body io.ReadCloser) string {
	t.Helper()
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Objects lists every key in Bucket.
func Objects(t testing.TB, b *s3mem.Backend) []string {
	t.Helper()
	list, err := b.ListBucket(Bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out
}

// Backend is an object-store backend under test.
type Backend struct {
	// Shim is what the platform's server adds to gofakes3; nil: nothing.
	Shim func(http.Handler) http.Handler
	// Answer writes the platform's error answers for Faulty.
	Answer func(w http.ResponseWriter, kind Fault)
	// Open opens a store on the server at endpoint, at a fresh URL in
	// Bucket, with the retry policy p (zero fields: the defaults).
	Open func(t *testing.T, endpoint string, p objstore.Policy) storetest.Store
	// Exists names the store's answer to a create-only PUT over an
	// existing object, for messages (e.g. "412").
	Exists string
}

// Serve starts the backend's server behind wrap; see Serve.
func (b Backend) Serve(t testing.TB, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	return Serve(t, b.Shim, wrap)
}

// ServeFaulty starts the backend's server behind a Faulty (kind, n, match)
// and, outermost, rec when it is not nil.
func (b Backend) ServeFaulty(t testing.TB, kind Fault, n int, match func(*http.Request) bool, rec *Recorder) (*Faulty, string, *s3mem.Backend) {
	t.Helper()
	f := &Faulty{Kind: kind, N: n, Match: match, Answer: b.Answer}
	endpoint, backend := b.Serve(t, func(h http.Handler) http.Handler {
		f.Next = h
		if rec != nil {
			return rec.Wrap(f)
		}
		return f
	})
	return f, endpoint, backend
}
