package ossstore

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// The OSS test server is gofakes3, an in-memory S3 server, which the OSS
// SDK can talk to because OSS's REST API for objects has S3's shape (PUT,
// GET, ListObjectsV2 with list-type=2, XML errors with a Code). gofakes3
// checks no signatures at all (neither S3's nor OSS's OSS4-HMAC-SHA256) and
// ignores every x-oss-* header, x-oss-forbid-overwrite included. ossShim
// adds exactly that one semantic in front of it, as OSS documents it:
//
//	PutObject / x-oss-forbid-overwrite: "If you set the
//	x-oss-forbid-overwrite header to true, an existing object that has the
//	same name cannot be overwritten." (OSS API reference, PutObject; also
//	the SDK's doc comment on PutObjectRequest.ForbidOverwrite)
//	Error 0026-00000201 (help.aliyun.com/en/oss/user-guide/0026-00000201):
//	when the header is true and the object exists, OSS returns HTTP 409
//	with the error code FileAlreadyExists.
//	Error 0017-00000279: values other than true and false are refused
//	(400 InvalidArgument).
//
// It does so atomically by turning the header into gofakes3's conditional
// write (If-None-Match: *, checked under the backend's lock) and its 412
// into OSS's 409 FileAlreadyExists.
type ossShim struct{ next http.Handler }

func (s ossShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := r.Header.Get("x-oss-forbid-overwrite")
	if r.Method != http.MethodPut || v == "" || strings.EqualFold(v, "false") {
		s.next.ServeHTTP(w, r)
		return
	}
	if !strings.EqualFold(v, "true") {
		ossError(w, http.StatusBadRequest, "InvalidArgument", "0017-00000279", "x-oss-forbid-overwrite must be true or false.")
		return
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("If-None-Match", "*")
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r2)
	if rec.Code == http.StatusPreconditionFailed {
		ossError(w, http.StatusConflict, codeExists, "0026-00000201", "The object you specified already exists and can not be overwritten.")
		return
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// ossError writes an error the way OSS does: XML with Code, Message,
// RequestId, HostId and EC, and the request id header.
func ossError(w http.ResponseWriter, status int, code, ec, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-oss-request-id", "FAKE0000000000000000")
	w.Header().Set("x-oss-ec", ec)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><RequestId>FAKE0000000000000000</RequestId><HostId>127.0.0.1</HostId><EC>%s</EC></Error>`, code, msg, ec)
}

const testBucket = "csrfn-test"

// fakeOSS starts gofakes3 behind the OSS shim (and wrap, outermost) on
// 127.0.0.1, with testBucket created; it stops when the test ends.
func fakeOSS(t *testing.T, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	backend = s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = ossShim{gofakes3.New(backend).Server()}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h) // 127.0.0.1 only
	t.Cleanup(srv.Close)
	return srv.URL, backend
}

// fakeCreds are dummy credentials: the test server checks none.
var fakeCreds = credentials.NewStaticCredentialsProvider("LTAICSRFNTEST", "not-a-secret")

var prefixSeq atomic.Int64

func freshURL(bucket string) *url.URL {
	return &url.URL{Scheme: "oss", Host: bucket, Path: fmt.Sprintf("/t%d/keys", prefixSeq.Add(1))}
}

// open opens a store on endpoint (an http://127.0.0.1 URL, which the SDK
// addresses path-style); opts may override the retry policy.
func open(t *testing.T, endpoint string, u *url.URL, opts Options) *Store {
	t.Helper()
	opts.Endpoint = endpoint
	opts.Region = "cn-hangzhou"
	if opts.CredentialsProvider == nil {
		opts.CredentialsProvider = fakeCreds
	}
	s, err := New(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type recorded struct {
	Method string
	Path   string
	Header http.Header
}

type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone()})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (rec *recorder) all() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

type fault int

const (
	fault503       fault = iota // 503 before touching the store
	fault500                    // 500 before touching the store
	faultDrop                   // close the connection without an answer, store untouched
	faultDropAfter              // apply the request, then close the connection without an answer
	faultHang                   // answer nothing until the client gives up
)

// faulty misbehaves on the first n requests that match (all if n < 0).
type faulty struct {
	next  http.Handler
	kind  fault
	n     int
	match func(*http.Request) bool

	mu   sync.Mutex
	seen int
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
		ossError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "0002-00000000", "Please try again later.")
	case fault500:
		ossError(w, http.StatusInternalServerError, "InternalError", "0002-00000000", "We encountered an internal error. Please try again.")
	case faultDrop:
		drop(w)
	case faultDropAfter:
		f.next.ServeHTTP(httptest.NewRecorder(), r)
		drop(w)
	case faultHang:
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

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

func drop(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	_ = buf.Flush()
	conn.Close()
}

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
