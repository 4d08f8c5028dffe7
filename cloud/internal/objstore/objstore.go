// Package objstore is what the object-store backends of the key store
// share: cloud/s3store (Amazon S3 and S3-compatible servers) and
// cloud/ossstore (Alibaba Cloud OSS) keep one object per record under
// BUCKET/PREFIX/NAME with the contract of the embedded file store
// (core/keystore and core/keystore/storetest): a record is created once
// and never overwritten, and read back byte for byte.
//
// Store implements that contract on a Backend, the platform's SDK calls:
// the record name and size checks, the call timeout that bounds each
// operation (retries and backoff included), the rule that settles a
// retried create after an already-exists answer, the second reading of a
// body cut short, and the classification of what still fails: a missing
// record wraps fs.ErrNotExist, a taken name fs.ErrExist, a store that
// could not be reached, answered 5xx or throttled, or ran out the call's
// time service.ErrUnavailable (which the service answers with
// Internal.Error and no CSR); a cancelled caller gets its context's error.
//
// What differs between the platforms stays with the backends: how
// create-only is asked for and how the store answers it, which answer
// means a missing key rather than a missing bucket, and how the SDK reports
// a transport failure.
package objstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/service"
)

// Defaults of the retry policy. A record is a few KiB and the object stores
// answer in tens of milliseconds, so a few quick retries cover a blip,
// while the call timeout keeps an outage from holding a function
// invocation (and its caller) for long: the caller gets Internal.Error and
// may retry later.
const (
	DefaultMaxAttempts    = 4                     // 1 try + 3 retries
	DefaultMaxBackoff     = 1 * time.Second       // cap of the jittered exponential backoff
	DefaultAttemptTimeout = 5 * time.Second       // one HTTP attempt; each backend says what exactly it bounds
	DefaultCallTimeout    = 15 * time.Second      // a whole Create/Load/List, retries and backoff included
	BaseDelay             = 50 * time.Millisecond // the backoff's first step
)

// Policy is a store's retry policy; zero fields take the defaults.
type Policy struct {
	MaxAttempts    int
	MaxBackoff     time.Duration
	AttemptTimeout time.Duration
	CallTimeout    time.Duration
}

// WithDefaults returns p with every field that is not positive set to its
// default.
func (p Policy) WithDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.CallTimeout <= 0 {
		p.CallTimeout = DefaultCallTimeout
	}
	return p
}

// ParseURL splits SCHEME://BUCKET/PREFIX into the bucket and the key prefix
// ("" or ending in "/"). Its errors start with errPrefix and never quote
// the URL.
func ParseURL(u *url.URL, scheme, errPrefix string) (bucket, prefix string, err error) {
	switch {
	case u == nil || u.Scheme != scheme:
		return "", "", errors.New(errPrefix + "the store URL must be " + scheme + "://BUCKET/PREFIX")
	case u.User != nil:
		// Never echo the URL: it holds what looks like credentials.
		return "", "", errors.New(errPrefix + "the store URL must not carry credentials; the function role provides them")
	case u.Host == "" || u.Opaque != "":
		return "", "", errors.New(errPrefix + "the store URL names no bucket; use " + scheme + "://BUCKET/PREFIX")
	case u.RawQuery != "" || u.Fragment != "":
		return "", "", errors.New(errPrefix + "the store URL must not have a query or fragment")
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		for _, seg := range strings.Split(prefix, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return "", "", fmt.Errorf(errPrefix+"bad prefix %q: empty, . and .. segments are not allowed", prefix)
			}
		}
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// Getenv returns a reader of environment variables through lookup
// (os.LookupEnv in production): values are trimmed of white space, and an
// unset variable reads as "".
func Getenv(lookup func(string) (string, bool)) func(name string) string {
	return func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
}

// ContentMD5 is the Content-MD5 header of a body: with it the store
// rejects a body damaged in transit.
func ContentMD5(data []byte) string {
	sum := md5.Sum(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Answer is what a failed create-only PUT says.
type Answer int

const (
	// Failed is any other failure, classified as every error is.
	Failed Answer = iota
	// Exists says the name exists (S3: 412 PreconditionFailed under
	// If-None-Match: *; OSS: 409 FileAlreadyExists under
	// x-oss-forbid-overwrite: true).
	Exists
	// Conflict says a concurrent write to the name was in progress, and
	// kept being so through the SDK's retries (S3: 409
	// ConditionalRequestConflict).
	Conflict
)

// Backend is one bucket of one platform, through its SDK, retries
// included. Keys are full object keys (prefix and name).
type Backend interface {
	// PutObject stores data under key, create-only.
	PutObject(ctx context.Context, key string, data []byte) error
	// GetObject opens the object key.
	GetObject(ctx context.Context, key string) (io.ReadCloser, error)
	// ListObjects calls add with the key of every object directly under
	// prefix ("/" as the delimiter), through every page.
	ListObjects(ctx context.Context, prefix string, add func(key string)) error
	// PutAnswer reads an error of PutObject.
	PutAnswer(err error) Answer
	// NotFound reports whether an error of GetObject says that the key
	// does not exist (and not, say, that the bucket does not).
	NotFound(err error) bool
	// Transient classifies an error the SDK's retries gave up on: decided
	// when the backend recognises it, and then unavailable when it says
	// the store could not be reached or could not serve the request for
	// now (see TransientStatus). Undecided errors are unavailable when
	// they are a body cut short (io.EOF, io.ErrUnexpectedEOF), and the
	// call's own deadline always is.
	Transient(err error) (unavailable, decided bool)
}

// TransientStatus reports whether an HTTP status says the store could not
// serve the request for now: 5xx, 429 Too Many Requests, 408 Request
// Timeout.
func TransientStatus(code int) bool {
	return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
}

// Config is what New needs.
type Config struct {
	Backend     Backend
	ErrPrefix   string        // starts every error, e.g. "s3store: "
	Bucket      string        // for Bucket
	Prefix      string        // the key prefix: "" or ending in "/"
	CallTimeout time.Duration // bounds each operation, retries and backoff included
	HTTPClient  HTTPClient    // the SDK's HTTP client, whose idle connections Close closes
}

// Store is a key store in one bucket under one prefix. It is safe for
// concurrent use.
type Store struct {
	backend     Backend
	errPrefix   string
	bucket      string
	prefix      string
	callTimeout time.Duration
	http        HTTPClient
}

// New returns the store c describes. It makes no request.
func New(c Config) *Store {
	return &Store{
		backend:     c.Backend,
		errPrefix:   c.ErrPrefix,
		bucket:      c.Bucket,
		prefix:      c.Prefix,
		callTimeout: c.CallTimeout,
		http:        c.HTTPClient,
	}
}

// Bucket and Prefix say where the records are.
func (s *Store) Bucket() string { return s.bucket }
func (s *Store) Prefix() string { return s.prefix }

// Close releases idle connections.
func (s *Store) Close() error {
	if c, ok := s.http.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}

func (s *Store) key(name string) string { return s.prefix + name }

func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.errPrefix+format, args...)
}

// call bounds one store operation, retries included.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.callTimeout)
}

// Create stores data under name, create-only, as the store itself decides
// (see each backend). It fails with an error wrapping fs.ErrExist if the
// name exists, and with one wrapping service.ErrUnavailable if the store
// could not be reached or kept failing.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := keystore.CheckName(name); err != nil {
		return err
	}
	if len(data) > keystore.MaxRecordSize {
		return s.errorf("record %s is larger than %d bytes", name, keystore.MaxRecordSize)
	}
	if err := ctx.Err(); err != nil {
		return s.errorf("create %s: %w", name, err)
	}
	parent := ctx
	ctx, cancel := s.call(ctx)
	defer cancel()
	ctx, sends := WithSendCounter(ctx)

	err := s.backend.PutObject(ctx, s.key(name), data)
	if err == nil {
		return nil
	}
	switch answer := s.backend.PutAnswer(err); answer {
	case Exists:
		if sends.Load() <= 1 {
			return s.existErr(name)
		}
		// The PUT was sent more than once. If an earlier attempt reached
		// the store and stored the object but its answer was lost (a
		// dropped connection, a timeout, a 5xx from a proxy after the
		// write), the SDK's retry meets our own object and is told it
		// exists although the record is stored exactly as asked. Read it
		// back: identical bytes mean this Create succeeded (records carry
		// a fresh RequestId and timestamp, so another writer cannot
		// produce the same bytes); different bytes mean someone else
		// created the name first.
		return s.settle(parent, ctx, name, data, err, answer)
	case Conflict:
		// Still conflicting after the retries: decide by what is stored.
		return s.settle(parent, ctx, name, data, err, answer)
	}
	return s.fail(parent, "create", name, err)
}

// settle decides an ambiguous create-only PUT by reading the record.
func (s *Store) settle(parent, ctx context.Context, name string, data []byte, putErr error, answer Answer) error {
	got, err := s.load(parent, ctx, name)
	switch {
	case err == nil && bytes.Equal(got, data):
		return nil
	case err == nil:
		return s.existErr(name)
	case errors.Is(err, fs.ErrNotExist) && answer == Conflict:
		// Nothing was stored and the store kept reporting a concurrent
		// write: transient, the caller may retry.
		return s.errorf("create %s: %w: %w", name, service.ErrUnavailable, putErr)
	case errors.Is(err, fs.ErrNotExist):
		return s.existErr(name) // the store said it existed; records are not deleted
	}
	return s.errorf("create %s: could not check the stored record after %v: %w", name, putErr, err)
}

func (s *Store) existErr(name string) error {
	return s.errorf("record %s: %w", name, fs.ErrExist)
}

// Load reads a record; a missing one gives an error wrapping fs.ErrNotExist.
func (s *Store) Load(ctx context.Context, name string) ([]byte, error) {
	if err := keystore.CheckName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("load %s: %w", name, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.load(ctx, cctx, name)
}

func (s *Store) load(parent, ctx context.Context, name string) ([]byte, error) {
	for try := 1; ; try++ {
		body, err := s.backend.GetObject(ctx, s.key(name))
		if err != nil {
			if s.backend.NotFound(err) {
				return nil, s.errorf("record %s: %w", name, fs.ErrNotExist)
			}
			return nil, s.fail(parent, "load", name, err)
		}
		b, err := io.ReadAll(io.LimitReader(body, keystore.MaxRecordSize+1))
		body.Close()
		if err == nil {
			if len(b) > keystore.MaxRecordSize {
				return nil, s.errorf("record %s is larger than %d bytes", name, keystore.MaxRecordSize)
			}
			return b, nil
		}
		// The SDK retries the request, not the reading of the body: give a
		// body cut short one more try within the call's time.
		if try >= 2 || ctx.Err() != nil {
			return nil, s.fail(parent, "load", name, err)
		}
	}
}

// List returns the names of the records under the prefix, sorted. Objects
// deeper under the prefix, or whose names are not record names, are not
// records and are left out.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.errorf("list: %w", err)
	}
	parent := ctx
	ctx, cancel := s.call(ctx)
	defer cancel()
	out := []string{}
	err := s.backend.ListObjects(ctx, s.prefix, func(key string) {
		name, ok := strings.CutPrefix(key, s.prefix)
		if ok && keystore.CheckName(name) == nil {
			out = append(out, name)
		}
	})
	if err != nil {
		return nil, s.fail(parent, "list", "", err)
	}
	return out, nil
}

// fail wraps an SDK error after the SDK's retries. A cancelled caller gets
// its context's error; a store that could not be reached, answered 5xx or
// throttled, or ran out the call's time gets service.ErrUnavailable; other
// errors (access denied, no such bucket) are configuration problems and are
// wrapped as they are. SDK errors carry the operation, status, error code
// and request IDs, never credentials.
func (s *Store) fail(parent context.Context, op, name string, err error) error {
	what := op
	if name != "" {
		what += " " + name
	}
	if perr := parent.Err(); perr != nil {
		if errors.Is(err, perr) {
			return s.errorf("%s: %w", what, err)
		}
		return s.errorf("%s: %w: %w", what, perr, err)
	}
	if s.unavailable(err) {
		return s.errorf("%s: %w: %w", what, service.ErrUnavailable, err)
	}
	return s.errorf("%s: %w", what, err)
}

// unavailable reports whether err says the store could not be reached or
// could not serve the request for now.
func (s *Store) unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) { // the call's own timeout
		return true
	}
	if unavailable, decided := s.backend.Transient(err); decided {
		return unavailable
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// sendCounterKey marks the context of one store call whose HTTP requests
// are counted, retries included, so that Create knows whether an
// already-exists answer may answer its own earlier attempt.
type sendCounterKey struct{}

// WithSendCounter returns a context under which CountingClient counts the
// requests sent, and the count.
func WithSendCounter(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(ctx, sendCounterKey{}, n), n
}

// HTTPClient is the HTTP client both SDKs take (aws.HTTPClient,
// oss.HTTPClient).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// CountingClient counts the requests sent under a context from
// WithSendCounter; a store's SDK client sends through it.
type CountingClient struct{ Next HTTPClient }

func (c CountingClient) Do(r *http.Request) (*http.Response, error) {
	if n, ok := r.Context().Value(sendCounterKey{}).(*atomic.Int32); ok {
		n.Add(1)
	}
	return c.Next.Do(r)
}

// CloseIdleConnections closes Next's idle connections, if it can.
func (c CountingClient) CloseIdleConnections() {
	if ci, ok := c.Next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
