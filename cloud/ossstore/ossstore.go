// Package ossstore keeps csrfn's key records in Alibaba Cloud OSS, one
// object per record under BUCKET/PREFIX/NAME, through the OSS Go SDK v2,
// with the same contract as the embedded file store (core/keystore and
// core/keystore/storetest): a record is created once and never overwritten,
// and read back byte for byte.
//
// Create-only is enforced by OSS itself: PutObject with
// x-oss-forbid-overwrite: true fails with 409 FileAlreadyExists when the
// name exists. OSS ignores that header in a bucket with versioning enabled
// or suspended, so the bucket must stay unversioned. Objects are encrypted
// at rest with OSS server-side encryption under KMS. Transient failures
// are retried a bounded number of times within a bounded time; what still
// fails is reported wrapping service.ErrUnavailable, which the service
// answers with Internal.Error and no CSR.
package ossstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/retry"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/transport"

	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/service"
)

// Environment variables read by OptionsFromEnv.
const (
	EnvEndpoint = "CSRFN_OSS_ENDPOINT"   // OSS endpoint; empty: the region's internal endpoint
	EnvRegion   = "CSRFN_OSS_REGION"     // the bucket's region; empty: FC_REGION
	EnvKMSKeyID = "CSRFN_OSS_KMS_KEY_ID" // KMS key for SSE; empty: the OSS-managed KMS key
	EnvFCRegion = "FC_REGION"            // set by Function Compute: the function's region
)

// The variables Function Compute sets to the temporary credentials of the
// function's role (FC documentation, "Configure environment variables":
// "ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, and
// ALIBABA_CLOUD_SECURITY_TOKEN: The temporary credentials obtained from the
// function's execution role"). FC obtains them with AssumeRole; they are
// valid for 36 hours, longer than any invocation may run.
const (
	EnvAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	EnvAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	EnvSecurityToken   = "ALIBABA_CLOUD_SECURITY_TOKEN"
)

const (
	scheme        = "oss"
	contentType   = "application/json"
	errPrefix     = "ossstore: "
	sseKMS        = "KMS"
	codeExists    = "FileAlreadyExists" // 409 under x-oss-forbid-overwrite: true
	codeNoSuchKey = "NoSuchKey"
)

// Defaults of the retry policy; see s3store for the reasoning, which is the
// same: a few quick retries for a blip, a call timeout for an outage.
const (
	DefaultMaxAttempts    = 4
	DefaultMaxBackoff     = 1 * time.Second
	DefaultAttemptTimeout = 5 * time.Second // connect, and each read or write on the connection
	DefaultCallTimeout    = 15 * time.Second
)

// Options configure a Store.
type Options struct {
	// Region of the bucket, e.g. cn-hangzhou (required; OptionsFromEnv
	// defaults it to FC_REGION). It signs requests (V4) and names the
	// default endpoint.
	Region string
	// Endpoint (CSRFN_OSS_ENDPOINT), e.g. oss-cn-hangzhou.aliyuncs.com or
	// http://127.0.0.1:9000. Empty: the region's internal endpoint
	// https://oss-REGION-internal.aliyuncs.com, which Function Compute
	// reaches over Alibaba Cloud's internal network without Internet
	// egress or its traffic charges.
	Endpoint string
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY: for S3-compatible test servers on a host name
	// (the SDK already does so for an IP-address endpoint).
	PathStyle bool
	// KMSKeyID is the KMS key for server-side encryption. Empty: SSE-KMS
	// with the key OSS manages in KMS for the bucket.
	KMSKeyID string
	// CredentialsProvider signs requests. Nil: the environment variables
	// Function Compute sets for the function's role (EnvAccessKeyID,
	// EnvAccessKeySecret, EnvSecurityToken), read on each request.
	CredentialsProvider credentials.CredentialsProvider

	// Retry policy; zero values take the defaults above.
	MaxAttempts    int
	MaxBackoff     time.Duration
	AttemptTimeout time.Duration
	CallTimeout    time.Duration

	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient oss.HTTPClient
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
	if o.Region == "" {
		o.Region = get(EnvFCRegion)
	}
	if o.Region == "" {
		return o, &config.Error{Var: EnvRegion, Reason: "not set and no " + EnvFCRegion + "; give the bucket's region, e.g. cn-hangzhou"}
	}
	if o.Endpoint != "" {
		if err := checkEndpoint(o.Endpoint); err != nil {
			return o, &config.Error{Var: EnvEndpoint, Reason: err.Error()}
		}
	}
	return o, nil
}

func checkEndpoint(e string) error {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return errors.New("the endpoint must be a host name such as oss-cn-hangzhou-internal.aliyuncs.com or an http(s) URL of a host")
	}
	if u.User != nil {
		return errors.New("the endpoint must not carry credentials")
	}
	return nil
}

// EnvCredentials reads the role credentials Function Compute puts in the
// environment, on every call, so a process never holds a stale copy.
type EnvCredentials struct {
	// Lookup is os.LookupEnv when nil.
	Lookup func(string) (string, bool)
}

// GetCredentials implements credentials.CredentialsProvider. Its error
// names the variables, never their values.
func (e EnvCredentials) GetCredentials(context.Context) (credentials.Credentials, error) {
	lookup := e.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	id, _ := lookup(EnvAccessKeyID)
	secret, _ := lookup(EnvAccessKeySecret)
	token, _ := lookup(EnvSecurityToken)
	if id == "" || secret == "" {
		return credentials.Credentials{}, errors.New(errPrefix + "no credentials: " + EnvAccessKeyID + " and " + EnvAccessKeySecret +
			" are not set (Function Compute sets them, with " + EnvSecurityToken + ", when the function has a role)")
	}
	return credentials.Credentials{AccessKeyID: id, AccessKeySecret: secret, SecurityToken: token}, nil
}

// Store is a key store in one OSS bucket under one prefix. It is safe for
// concurrent use.
type Store struct {
	client      *oss.Client
	http        oss.HTTPClient
	bucket      string
	prefix      string // "" or ending in "/"
	kmsKeyID    string
	callTimeout time.Duration
}

var _ config.Store = (*Store)(nil)

// ParseURL splits oss://BUCKET/PREFIX into the bucket and the key prefix
// ("" or ending in "/").
func ParseURL(u *url.URL) (bucket, prefix string, err error) {
	switch {
	case u == nil || u.Scheme != scheme:
		return "", "", errors.New(errPrefix + "the store URL must be oss://BUCKET/PREFIX")
	case u.User != nil:
		// Never echo the URL: it holds what looks like credentials.
		return "", "", errors.New(errPrefix + "the store URL must not carry credentials; the function role provides them")
	case u.Host == "" || u.Opaque != "":
		return "", "", errors.New(errPrefix + "the store URL names no bucket; use oss://BUCKET/PREFIX")
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

// New opens the store at u (oss://BUCKET/PREFIX). It does not contact OSS,
// so a cold start pays nothing; missing environment credentials, though,
// are reported here, at start-up.
func New(ctx context.Context, u *url.URL, opts Options) (*Store, error) {
	bucket, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	if opts.Region == "" {
		return nil, errors.New(errPrefix + "no region; set " + EnvRegion + " (Function Compute sets " + EnvFCRegion + ")")
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = "https://oss-" + opts.Region + "-internal.aliyuncs.com"
	}
	if err := checkEndpoint(endpoint); err != nil {
		return nil, errors.New(errPrefix + err.Error())
	}
	creds := opts.CredentialsProvider
	if creds == nil {
		creds = EnvCredentials{}
		if _, err := creds.GetCredentials(ctx); err != nil {
			return nil, err
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

	hc := opts.HTTPClient
	if hc == nil {
		hc = transport.NewHttpClient(&transport.Config{
			ConnectTimeout:   &opts.AttemptTimeout,
			ReadWriteTimeout: &opts.AttemptTimeout,
		})
	}
	hc = countingClient{hc}

	cfg := oss.NewConfig().
		WithRegion(opts.Region).
		WithEndpoint(endpoint).
		WithCredentialsProvider(creds).
		WithRetryer(newRetryer(opts.MaxAttempts, opts.MaxBackoff)).
		WithRetryMaxAttempts(opts.MaxAttempts).
		WithSignatureVersion(oss.SignatureVersionV4)
	cfg.HttpClient = hc
	if opts.PathStyle {
		cfg.WithUsePathStyle(true)
	}
	return &Store{
		client:      oss.NewClient(cfg),
		http:        hc,
		bucket:      bucket,
		prefix:      prefix,
		kmsKeyID:    opts.KMSKeyID,
		callTimeout: opts.CallTimeout,
	}, nil
}

// newRetryer is the SDK's standard retryer (full-jitter exponential
// backoff) set explicitly, so that the policy does not drift with SDK
// defaults. It retries what the SDK deems transient: connection errors,
// 5xx, 408, 429, and the codes RequestTimeTooSkewed (after correcting the
// clock) and BadRequest; the SDK also retries 401, harmlessly.
func newRetryer(maxAttempts int, maxBackoff time.Duration) retry.Retryer {
	return retry.NewStandard(func(o *retry.RetryOptions) {
		o.MaxAttempts = maxAttempts
		o.MaxBackoff = maxBackoff
		o.BaseDelay = 50 * time.Millisecond
		o.Backoff = retry.NewFullJitterBackoff(o.BaseDelay, maxBackoff)
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

func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.callTimeout)
}

// Create stores data under name with PutObject and
// x-oss-forbid-overwrite: true. It fails with an error wrapping fs.ErrExist
// if the name exists, and with one wrapping service.ErrUnavailable if OSS
// could not be reached or kept failing.
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
	req := &oss.PutObjectRequest{
		Bucket:        oss.Ptr(s.bucket),
		Key:           oss.Ptr(s.key(name)),
		Body:          bytes.NewReader(data),
		ContentLength: oss.Ptr(int64(len(data))),
		ContentType:   oss.Ptr(contentType),
		// Content-MD5 makes OSS reject a body damaged in transit; the SDK
		// also checks the CRC-64 OSS returns.
		ContentMD5: oss.Ptr(base64.StdEncoding.EncodeToString(sum[:])),
		// Create-only, decided by OSS.
		ForbidOverwrite:      oss.Ptr("true"),
		ServerSideEncryption: oss.Ptr(sseKMS),
	}
	if s.kmsKeyID != "" {
		req.ServerSideEncryptionKeyId = oss.Ptr(s.kmsKeyID)
	}
	_, err := s.client.PutObject(ctx, req)
	if err == nil {
		return nil
	}
	if serviceCode(err) == codeExists {
		if sends.Load() <= 1 {
			return existErr(name)
		}
		// The PUT was sent more than once. If an earlier attempt reached
		// OSS and stored the object but its answer was lost (a dropped
		// connection, a timeout, a 5xx from a proxy after the write), the
		// retry meets our own object and gets FileAlreadyExists although
		// the record is stored exactly as asked. Read it back: identical
		// bytes mean this Create succeeded (records carry a fresh RequestId
		// and timestamp, so another writer cannot produce the same bytes);
		// different bytes mean someone else created the name first.
		got, lerr := s.load(parent, ctx, name)
		switch {
		case lerr == nil && bytes.Equal(got, data):
			return nil
		case lerr == nil, errors.Is(lerr, fs.ErrNotExist):
			return existErr(name)
		}
		return fmt.Errorf(errPrefix+"create %s: could not check the stored record after %v: %w", name, err, lerr)
	}
	return s.fail(parent, "create", name, err)
}

func existErr(name string) error {
	return fmt.Errorf(errPrefix+"record %s: %w", name, fs.ErrExist)
}

// serviceCode is the OSS error code of err, if OSS answered with one.
func serviceCode(err error) string {
	var se *oss.ServiceError
	if errors.As(err, &se) {
		return se.Code
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
		out, err := s.client.GetObject(ctx, &oss.GetObjectRequest{
			Bucket: oss.Ptr(s.bucket),
			Key:    oss.Ptr(s.key(name)),
		})
		if err != nil {
			// Only the code NoSuchKey means a missing record; a 404 with
			// NoSuchBucket is a configuration error.
			if serviceCode(err) == codeNoSuchKey {
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

// List returns the names of the records under the prefix, sorted. Objects
// deeper under the prefix, or whose names are not record names, are left
// out.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf(errPrefix+"list: %w", err)
	}
	parent := ctx
	ctx, cancel := s.call(ctx)
	defer cancel()
	p := s.client.NewListObjectsV2Paginator(&oss.ListObjectsV2Request{
		Bucket:    oss.Ptr(s.bucket),
		Prefix:    oss.Ptr(s.prefix),
		Delimiter: oss.Ptr("/"),
	})
	out := []string{}
	for p.HasNext() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, s.fail(parent, "list", "", err)
		}
		for _, o := range page.Contents {
			name, ok := strings.CutPrefix(oss.ToString(o.Key), s.prefix)
			if ok && keystore.CheckName(name) == nil {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// fail wraps an SDK error after the SDK's retries: a cancelled caller gets
// its context's error; a backend that could not be reached, answered 5xx or
// throttled, or ran out the call's time gets service.ErrUnavailable; other
// errors (access denied, no such bucket) are wrapped as they are. SDK
// errors carry the operation, status, code, request ID and target URL,
// never credentials.
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

// unavailable reports whether err says OSS could not be reached or could
// not serve the request for now.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) { // the call's own timeout
		return true
	}
	var se *oss.ServiceError
	if errors.As(err, &se) {
		switch c := se.StatusCode; {
		case c >= 500, c == http.StatusTooManyRequests, c == http.StatusRequestTimeout:
			return true
		}
		return false
	}
	// A transport failure: no connection, a connection dropped or timed
	// out. (The SDK wraps the *url.Error in an *oss.OperationError, which
	// retry.ConnectionErrorRetryable does not look through.)
	var ue *url.Error
	if errors.As(err, &ue) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return (&retry.ConnectionErrorRetryable{}).IsErrorRetryable(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// sendCounterKey marks the context of one store call whose HTTP requests
// are counted, retries included, so that Create knows whether a
// FileAlreadyExists may answer its own earlier attempt.
type sendCounterKey struct{}

func withSendCounter(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(ctx, sendCounterKey{}, n), n
}

// countingClient counts requests sent under a context from withSendCounter.
type countingClient struct{ next oss.HTTPClient }

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
