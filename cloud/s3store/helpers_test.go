package s3store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "csrfn-test"

// fakeS3 starts gofakes3 (in memory, no authentication) on 127.0.0.1 behind
// wrap, with testBucket created. It stops when the test ends.
func fakeS3(t *testing.T, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	backend = s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = gofakes3.New(backend).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h) // 127.0.0.1 only
	t.Cleanup(srv.Close)
	return srv.URL, backend
}

// fakeCreds are dummy credentials for servers that do not check them.
var fakeCreds = credentials.NewStaticCredentialsProvider("AKIDCSRFNTEST", "not-a-secret", "")

var prefixSeq atomic.Int64

// freshURL returns s3://bucket/<a prefix no other call returns>.
func freshURL(bucket string) *url.URL {
	return &url.URL{Scheme: "s3", Host: bucket, Path: fmt.Sprintf("/t%d/keys", prefixSeq.Add(1))}
}

// open opens a store on endpoint with test credentials; opts may override
// the retry policy.
func open(t *testing.T, endpoint string, creds aws.CredentialsProvider, u *url.URL, opts Options) *Store {
	t.Helper()
	opts.Endpoint = endpoint
	opts.AWSConfig = &aws.Config{Region: "us-east-1", Credentials: creds}
	s, err := New(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorded is one request as a server saw it.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// recorder keeps every request's method, path and headers.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone()})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// fault says how a faulty server misbehaves.
type fault int

const (
	fault503       fault = iota // 503 ServiceUnavailable before touching the store
	fault500                    // 500 InternalError before touching the store
	faultDrop                   // close the connection without an answer, store untouched
	faultDropAfter              // apply the request, then close the connection without an answer
	faultHang                   // answer nothing until the client gives up
	fault409                    // 409 ConditionalRequestConflict, store untouched
)

// faulty misbehaves on the first n requests that match (all of them if n
// is negative), then passes requests through.
type faulty struct {
	next  http.Handler
	kind  fault
	n     int
	match func(*http.Request) bool // nil: every request

	mu   sync.Mutex
	seen int // matching requests
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	kind := f.kind
	hit := f.match == nil || f.match(r)
	fail := false
	if hit {
		f.seen++
		fail = f.n < 0 || f.seen <= f.n
	}
	f.mu.Unlock()
	if !fail {
		f.next.ServeHTTP(w, r)
		return
	}
	switch kind {
	case fault503:
		s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Please reduce your request rate.")
	case fault500:
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case fault409:
		s3Error(w, http.StatusConflict, "ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource. Please try again.")
	case faultDrop:
		drop(w)
	case faultDropAfter:
		rr := httptest.NewRecorder()
		f.next.ServeHTTP(rr, r)
		drop(w)
	case faultHang:
		// Read the body first: the server notices the client hanging up
		// (and cancels r's context) only once it is done with the body.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// reset makes the next n matching requests fail with kind.
func (f *faulty) reset(kind fault, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kind, f.n, f.seen = kind, n, 0
}

func (f *faulty) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

func isPut(r *http.Request) bool { return r.Method == http.MethodPut }

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>FAKE</RequestId></Error>`, code, msg)
}

// drop closes the client's connection without writing a response.
func drop(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	_ = buf.Flush()
	conn.Close()
}

// has reports whether the backend holds key in testBucket.
func has(t *testing.T, b *s3mem.Backend, key string) bool {
	t.Helper()
	_, err := b.HeadObject(testBucket, key)
	if err == nil {
		return true
	}
	if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		return false
	}
	t.Fatalf("HeadObject(%s): %v", key, err)
	return false
}

// objects lists every key in testBucket.
func objects(t *testing.T, b *s3mem.Backend) []string {
	t.Helper()
	list, err := b.ListBucket(testBucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out
}
