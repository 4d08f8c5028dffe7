// Package s3store keeps csrfn's key records in Amazon S3 (or any
// S3-compatible server), one object per record under BUCKET/PREFIX/NAME, with
// the same contract as the embedded file store (core/keystore and
// core/keystore/storetest): a record is created once and never overwritten,
// and read back byte for byte.
//
// Create-only is enforced by S3 itself with a conditional write
// (If-None-Match: *), not by a read-then-write, so two writers racing for one
// name cannot both win. Objects are encrypted at rest with SSE-KMS. Transient
// failures are retried a bounded number of times within a bounded time, and
// what still fails is reported wrapping service.ErrUnavailable, which the
// service answers with Internal.Error and no CSR.
package s3store

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
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/csrfn/csrfn/cloud/awsenv"
	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/service"
)

// Environment variables read by OptionsFromEnv.
const (
	EnvEndpoint  = "CSRFN_S3_ENDPOINT"   // an S3-compatible server's URL; implies path-style addressing
	EnvPathStyle = "CSRFN_S3_PATH_STYLE" // true/false: override the addressing style
	EnvKMSKeyID  = "CSRFN_S3_KMS_KEY_ID" // SSE-KMS key; empty: the AWS-managed aws/s3 key
	EnvBucketKey = "CSRFN_S3_BUCKET_KEY" // true: S3 Bucket Key for SSE-KMS
	EnvRegion    = "CSRFN_S3_REGION"     // the bucket's region; empty: AWS_REGION
)

const (
	scheme       = "s3"               // the store URL's scheme
	contentType  = "application/json" // records are JSON documents
	errPrefix    = "s3store: "        // every error says where it comes from
	sseKMS       = types.ServerSideEncryptionAwsKms
	codeExists   = "PreconditionFailed"         // 412: If-None-Match: * found the key
	codeConflict = "ConditionalRequestConflict" // 409: a concurrent write to the key
)

// Defaults of the retry policy. A record is a few KiB and S3 answers in tens
// of milliseconds, so a few quick retries cover a blip, while the call
// timeout keeps an outage from holding a function invocation (and its
// caller) for long: the caller gets Internal.Error and may retry later.
const (
	DefaultMaxAttempts    = 4                // 1 try + 3 retries
	DefaultMaxBackoff     = 1 * time.Second  // cap of the jittered exponential backoff
	DefaultAttemptTimeout = 5 * time.Second  // one HTTP exchange, body included
	DefaultCallTimeout    = 15 * time.Second // a whole Create/Load/List, retries and backoff included
)

// Options configure a Store. The zero value is production: credentials and
// region from the SDK's default chain (on Lambda, the function role's
// credentials in the environment and AWS_REGION), the real S3 endpoint.
type Options struct {
	// Region of the bucket; empty: the default chain's (AWS_REGION), or
	// us-east-1 with a custom Endpoint.
	Region string
	// Endpoint is an S3-compatible server's base URL (CSRFN_S3_ENDPOINT),
	// e.g. http://127.0.0.1:7070. Empty: AWS S3.
	Endpoint string
	// PathStyle selects path-style addressing (http://host/bucket/key)
	// rather than virtual-hosted (http://bucket.host/key). Nil: path-style
	// exactly when Endpoint is set, since most S3-compatible servers have no
	// per-bucket DNS names.
	PathStyle *bool
	// KMSKeyID is the SSE-KMS key (ID, ARN or alias). Empty: SSE-KMS with
	// the AWS-managed aws/s3 key.
	KMSKeyID string
	// BucketKeyEnabled asks S3 to use an S3 Bucket Key for SSE-KMS, which
	// cuts KMS requests (and cost) for busy buckets.
	BucketKeyEnabled bool

	// Retry policy; zero values take the defaults above.
	MaxAttempts    int
	MaxBackoff     time.Duration
	AttemptTimeout time.Duration
	CallTimeout    time.Duration

	// HTTPClient replaces the SDK's HTTP client (tests). Its own timeout,
	// if any, applies instead of AttemptTimeout.
	HTTPClient aws.HTTPClient
	// AWSConfig replaces the default chain entirely (credentials, region,
	// HTTP client), for tests and callers that already hold a config.
	AWSConfig *aws.Config
}

// OptionsFromEnv reads the store's options from the environment; lookup is
// os.LookupEnv in production. Errors name the variable (*config.Error).
func OptionsFromEnv(lookup func(string) (string, bool)) (Options, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	o := Options{
		Region:   get(EnvRegion),
		Endpoint: get(EnvEndpoint),
		KMSKeyID: get(EnvKMSKeyID),
	}
	if o.Endpoint != "" {
		if err := checkEndpoint(o.Endpoint); err != nil {
			return o, &config.Error{Var: EnvEndpoint, Reason: err.Error()}
		}
	}
	if v := get(EnvPathStyle); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, &config.Error{Var: EnvPathStyle, Reason: fmt.Sprintf("%q is not true or false", v)}
		}
		o.PathStyle = &b
	}
	if v := get(EnvBucketKey); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, &config.Error{Var: EnvBucketKey, Reason: fmt.Sprintf("%q is not true or false", v)}
		}
		o.BucketKeyEnabled = b
	}
	return o, nil
}

func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("the endpoint must be an http:// or https:// URL such as https://s3.example.com")
	}
	if u.User != nil {
		return errors.New("the endpoint must not carry credentials")
	}
	return nil
}

// Store is a key store in one S3 bucket under one prefix. It is safe for
// concurrent use.
type Store struct {
	client      *s3.Client
	http        aws.HTTPClient
	bucket      string
	prefix      string // "" or ending in "/"
	kmsKeyID    string
	bucketKey   bool
	callTimeout time.Duration
}

var _ config.Store = (*Store)(nil)

// ParseURL splits s3://BUCKET/PREFIX into the bucket and the key prefix
// ("" or ending in "/").
func ParseURL(u *url.URL) (bucket, prefix string, err error) {
	switch {
	case u == nil || u.Scheme != scheme:
		return "", "", errors.New(errPrefix + "the store URL must be s3://BUCKET/PREFIX")
	case u.User != nil:
		// Never echo the URL: it holds what looks like credentials.
		return "", "", errors.New(errPrefix + "the store URL must not carry credentials; the function role provides them")
	case u.Host == "" || u.Opaque != "":
		return "", "", errors.New(errPrefix + "the store URL names no bucket; use s3://BUCKET/PREFIX")
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

// New opens the store at u (s3://BUCKET/PREFIX). It does not contact S3:
// credentials are fetched and the bucket is reached on first use, so a cold
// start pays nothing and the role needs no permission beyond reading and
// creating objects under the prefix (and listing it, for List).
func New(ctx context.Context, u *url.URL, opts Options) (*Store, error) {
	bucket, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	if opts.Endpoint != "" {
		if err := checkEndpoint(opts.Endpoint); err != nil {
			return nil, errors.New(errPrefix + err.Error())
		}
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}

	var cfg aws.Config
	if opts.AWSConfig != nil {
		cfg = opts.AWSConfig.Copy()
	} else {
		cfg = awsenv.Config(os.LookupEnv)
	}
	if opts.Region != "" {
		cfg.Region = opts.Region
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, errors.New(errPrefix + "no AWS region; set AWS_REGION (Lambda sets it) or " + EnvRegion)
		}
		cfg.Region = "us-east-1" // what S3-compatible servers expect by default
	}

	// The default chain's HTTP client has no timeout at all; ours bounds
	// each attempt. A caller's own client (or config's) is used as it is.
	hc := opts.HTTPClient
	if hc == nil && opts.AWSConfig != nil {
		hc = opts.AWSConfig.HTTPClient
	}
	if hc == nil {
		hc = awshttp.NewBuildableClient().WithTimeout(opts.AttemptTimeout)
	}
	hc = countingClient{hc}

	pathStyle := opts.Endpoint != ""
	if opts.PathStyle != nil {
		pathStyle = *opts.PathStyle
	}
	retryer := newRetryer(opts.MaxAttempts, opts.MaxBackoff)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = pathStyle
		o.HTTPClient = hc
		o.Retryer = retryer
		o.RetryMaxAttempts = opts.MaxAttempts // wins over AWS_MAX_ATTEMPTS
		// The store never logs: errors go to the caller, who logs them
		// under the request's RequestId.
		o.Logger = logging.Nop{}
		o.ClientLogMode = 0
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{
		client:      client,
		http:        hc,
		bucket:      bucket,
		prefix:      prefix,
		kmsKeyID:    opts.KMSKeyID,
		bucketKey:   opts.BucketKeyEnabled,
		callTimeout: opts.CallTimeout,
	}, nil
}

// newRetryer is the SDK's standard retryer (jittered exponential backoff,
// retry quota) set explicitly, so that the policy does not drift with SDK
// defaults or AWS_MAX_ATTEMPTS. It retries what the SDK deems transient
// (connection errors, 5xx, throttling, request timeouts) and also 409
// ConditionalRequestConflict, which S3 documents for conditional writes
// racing with another operation on the key: "On a 409 failure you should
// retry the upload." The SDK's retry quota (a token bucket per client) is
// kept: while S3 keeps failing, a warm function stops retrying and fails
// fast instead of multiplying its load on a struggling service.
func newRetryer(maxAttempts int, maxBackoff time.Duration) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.BaseDelay = 50 * time.Millisecond
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{
			Codes: map[string]struct{}{codeConflict: {}},
		})
	})
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

// call bounds one store operation, retries included.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.callTimeout)
}

// Create stores data under name with a conditional PUT. It fails with an
// error wrapping fs.ErrExist if the name exists, and with one wrapping
// service.ErrUnavailable if S3 could not be reached or kept failing.
func (s *Store) Create(ctx context.Context, name string, data []byte) error {
	if err := keystore.CheckName(name); err != nil {
		return err
	}
	if len(data) > keystore.MaxRecordSize {
		return fmt.Errorf(errPrefix+"record %s is larger than %d bytes", name, keystore.MaxRecordSize)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf(errPrefix+"create %s: %w", name, err)
	}
	parent := ctx
	ctx, cancel := s.call(ctx)
	defer cancel()
	ctx, sends := withSendCounter(ctx)

	sum := md5.Sum(data)
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.key(name)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType),
		// Content-MD5 makes S3 reject a body damaged in transit; the SDK
		// adds its default CRC32 checksum as well.
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		// Create-only, decided atomically by S3.
		IfNoneMatch:          aws.String("*"),
		ServerSideEncryption: sseKMS,
	}
	if s.kmsKeyID != "" {
		in.SSEKMSKeyId = aws.String(s.kmsKeyID)
	}
	if s.bucketKey {
		in.BucketKeyEnabled = aws.Bool(true)
	}
	_, err := s.client.PutObject(ctx, in)
	if err == nil {
		return nil
	}
	switch conflict(err) {
	case codeExists:
		if sends.Load() <= 1 {
			return existErr(name)
		}
		// The PUT was sent more than once. If an earlier attempt reached
		// S3 and stored the object but its answer was lost (a dropped
		// connection, a timeout, a 5xx from a proxy after the write), the
		// SDK's retry finds our own object and gets 412 although the
		// record is stored exactly as asked. Read it back: identical bytes
		// mean this Create succeeded (records carry a fresh RequestId and
		// timestamp, so another writer cannot produce the same bytes);
		// different bytes mean someone else created the name first.
		return s.settle(parent, ctx, name, data, err)
	case codeConflict:
		// Still conflicting after the retries: decide by what is stored.
		return s.settle(parent, ctx, name, data, err)
	}
	return s.fail(parent, "create", name, err)
}

// settle decides an ambiguous conditional write by reading the record.
func (s *Store) settle(parent, ctx context.Context, name string, data []byte, putErr error) error {
	got, err := s.load(parent, ctx, name)
	switch {
	case err == nil && bytes.Equal(got, data):
		return nil
	case err == nil:
		return existErr(name)
	case errors.Is(err, fs.ErrNotExist) && conflict(putErr) == codeConflict:
		// Nothing was stored and S3 kept reporting a concurrent write:
		// transient, the caller may retry.
		return fmt.Errorf(errPrefix+"create %s: %w: %w", name, service.ErrUnavailable, putErr)
	case errors.Is(err, fs.ErrNotExist):
		return existErr(name) // 412 said it existed; records are not deleted
	}
	return fmt.Errorf(errPrefix+"create %s: could not check the stored record after %v: %w", name, putErr, err)
}

func existErr(name string) error {
	return fmt.Errorf(errPrefix+"record %s: %w", name, fs.ErrExist)
}

// conflict classifies a failed conditional PUT.
func conflict(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case codeExists, codeConflict:
			return ae.ErrorCode()
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed {
		return codeExists
	}
	return ""
}

// Load reads a record; a missing one gives an error wrapping fs.ErrNotExist.
func (s *Store) Load(ctx context.Context, name string) ([]byte, error) {
	if err := keystore.CheckName(name); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf(errPrefix+"load %s: %w", name, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	return s.load(ctx, cctx, name)
}

func (s *Store) load(parent, ctx context.Context, name string) ([]byte, error) {
	for try := 1; ; try++ {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(s.bucket),
			Key:    aws.String(s.key(name)),
			// Verify the object's stored checksum, when it has one.
			ChecksumMode: types.ChecksumModeEnabled,
		})
		if err != nil {
			if notFound(err) {
				return nil, fmt.Errorf(errPrefix+"record %s: %w", name, fs.ErrNotExist)
			}
			return nil, s.fail(parent, "load", name, err)
		}
		b, err := io.ReadAll(io.LimitReader(out.Body, keystore.MaxRecordSize+1))
		out.Body.Close()
		if err == nil {
			if len(b) > keystore.MaxRecordSize {
				return nil, fmt.Errorf(errPrefix+"record %s is larger than %d bytes", name, keystore.MaxRecordSize)
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

// notFound reports whether a GetObject error says the key does not exist.
// S3 says so with the code NoSuchKey; any other code under a 404
// (NoSuchBucket, or versitygw's XAdminUserNotFound for an unknown access
// key) is a configuration problem, not a missing record. A bare 404
// without a code (a HEAD-style answer) is taken as missing.
func notFound(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode() == "NoSuchKey"
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// List returns the names of the records under the prefix, sorted. Objects
// deeper under the prefix, or whose names are not record names, are not
// records and are left out.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf(errPrefix+"list: %w", err)
	}
	parent := ctx
	ctx, cancel := s.call(ctx)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(s.bucket),
		Prefix:    aws.String(s.prefix),
		Delimiter: aws.String("/"),
	})
	out := []string{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail(parent, "list", "", err)
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if ok && keystore.CheckName(name) == nil {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// fail wraps an SDK error after the SDK's retries. A cancelled caller gets
// its context's error; a backend that could not be reached, answered 5xx or
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
			return fmt.Errorf(errPrefix+"%s: %w", what, err)
		}
		return fmt.Errorf(errPrefix+"%s: %w: %w", what, perr, err)
	}
	if unavailable(err) {
		return fmt.Errorf(errPrefix+"%s: %w: %w", what, service.ErrUnavailable, err)
	}
	return fmt.Errorf(errPrefix+"%s: %w", what, err)
}

// unavailable reports whether err says S3 could not be reached or could not
// serve the request for now.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) { // the call's own timeout
		return true
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		switch c := re.HTTPStatusCode(); {
		case c >= 500, c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; ok {
			return true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[ae.ErrorCode()]; ok {
			return true
		}
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return true
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// sendCounter counts the HTTP requests one store call sends, retries
// included, so that Create knows whether a 412 may answer its own earlier
// attempt.
type sendCounterKey struct{}

func withSendCounter(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(ctx, sendCounterKey{}, n), n
}

// countingClient counts requests sent under a context from withSendCounter.
type countingClient struct{ next aws.HTTPClient }

func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	if n, ok := r.Context().Value(sendCounterKey{}).(*atomic.Int32); ok {
		n.Add(1)
	}
	return c.next.Do(r)
}

func (c countingClient) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
