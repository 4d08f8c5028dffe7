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
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/retry"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/transport"

	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/core/config"
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

// Defaults of the retry policy (objstore's, which says why): a few quick
// retries for a blip, a call timeout for an outage.
const (
	DefaultMaxAttempts    = objstore.DefaultMaxAttempts
	DefaultMaxBackoff     = objstore.DefaultMaxBackoff
	DefaultAttemptTimeout = objstore.DefaultAttemptTimeout // connect, and each read or write on the connection
	DefaultCallTimeout    = objstore.DefaultCallTimeout
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
	get := objstore.Getenv(lookup)
	o := Options{Region: get(EnvRegion), Endpoint: get(EnvEndpoint), KMSKeyID: get(EnvKMSKeyID)}
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

// Store is a key store in one OSS bucket under one prefix. Its Create is
// PutObject with x-oss-forbid-overwrite: true and SSE-KMS; Create, Load
// and List follow objstore's rules. It is safe for concurrent use.
type Store struct {
	*objstore.Store
}

var _ config.Store = (*Store)(nil)

// ParseURL splits oss://BUCKET/PREFIX into the bucket and the key prefix
// ("" or ending in "/").
func ParseURL(u *url.URL) (bucket, prefix string, err error) {
	return objstore.ParseURL(u, scheme, errPrefix)
}

// New opens the store at u (oss://BUCKET/PREFIX). It does not contact OSS,
// so a cold start pays nothing; missing environment credentials, though,
// are reported here, at start-up.
func New(ctx context.Context, u *url.URL, opts Options) (*Store, error) {
	bucketName, prefix, err := ParseURL(u)
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
	policy := objstore.Policy{MaxAttempts: opts.MaxAttempts, MaxBackoff: opts.MaxBackoff,
		AttemptTimeout: opts.AttemptTimeout, CallTimeout: opts.CallTimeout}.WithDefaults()

	hc := opts.HTTPClient
	if hc == nil {
		hc = transport.NewHttpClient(&transport.Config{
			ConnectTimeout:   &policy.AttemptTimeout,
			ReadWriteTimeout: &policy.AttemptTimeout,
		})
	}
	hc = objstore.CountingClient{Next: hc}

	cfg := oss.NewConfig().
		WithRegion(opts.Region).
		WithEndpoint(endpoint).
		WithCredentialsProvider(creds).
		WithRetryer(newRetryer(policy.MaxAttempts, policy.MaxBackoff)).
		WithRetryMaxAttempts(policy.MaxAttempts).
		WithSignatureVersion(oss.SignatureVersionV4)
	cfg.HttpClient = hc
	if opts.PathStyle {
		cfg.WithUsePathStyle(true)
	}
	return &Store{objstore.New(objstore.Config{
		Backend:     &bucket{client: oss.NewClient(cfg), name: bucketName, kmsKeyID: opts.KMSKeyID},
		ErrPrefix:   errPrefix,
		Bucket:      bucketName,
		Prefix:      prefix,
		CallTimeout: policy.CallTimeout,
		HTTPClient:  hc,
	})}, nil
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
		o.BaseDelay = objstore.BaseDelay
		o.Backoff = retry.NewFullJitterBackoff(o.BaseDelay, maxBackoff)
	})
}

// bucket is the store's objstore.Backend: one OSS bucket through the SDK.
type bucket struct {
	client   *oss.Client
	name     string
	kmsKeyID string
}

// PutObject puts with x-oss-forbid-overwrite: true, which makes OSS itself
// refuse to overwrite an existing object.
func (b *bucket) PutObject(ctx context.Context, key string, data []byte) error {
	req := &oss.PutObjectRequest{
		Bucket:        oss.Ptr(b.name),
		Key:           oss.Ptr(key),
		Body:          bytes.NewReader(data),
		ContentLength: oss.Ptr(int64(len(data))),
		ContentType:   oss.Ptr(contentType),
		// Content-MD5 makes OSS reject a body damaged in transit; the SDK
		// also checks the CRC-64 OSS returns.
		ContentMD5: oss.Ptr(objstore.ContentMD5(data)),
		// Create-only, decided by OSS.
		ForbidOverwrite:      oss.Ptr("true"),
		ServerSideEncryption: oss.Ptr(sseKMS),
	}
	if b.kmsKeyID != "" {
		req.ServerSideEncryptionKeyId = oss.Ptr(b.kmsKeyID)
	}
	_, err := b.client.PutObject(ctx, req)
	return err
}

// PutAnswer: OSS answers a taken name with 409 FileAlreadyExists. It has
// no conflict answer to retry.
func (b *bucket) PutAnswer(err error) objstore.Answer {
	if serviceCode(err) == codeExists {
		return objstore.Exists
	}
	return objstore.Failed
}

// serviceCode is the OSS error code of err, if OSS answered with one.
func serviceCode(err error) string {
	var se *oss.ServiceError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func (b *bucket) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.client.GetObject(ctx, &oss.GetObjectRequest{
		Bucket: oss.Ptr(b.name),
		Key:    oss.Ptr(key),
	})
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// NotFound: only the code NoSuchKey means a missing record; a 404 with
// NoSuchBucket is a configuration error.
func (b *bucket) NotFound(err error) bool { return serviceCode(err) == codeNoSuchKey }

func (b *bucket) ListObjects(ctx context.Context, prefix string, add func(key string)) error {
	p := b.client.NewListObjectsV2Paginator(&oss.ListObjectsV2Request{
		Bucket:    oss.Ptr(b.name),
		Prefix:    oss.Ptr(prefix),
		Delimiter: oss.Ptr("/"),
	})
	for p.HasNext() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			add(oss.ToString(o.Key))
		}
	}
	return nil
}

// Transient recognises what says OSS could not be reached or could not
// serve the request for now: an answer decides by its status alone; a
// transport failure (no connection, a connection dropped or timed out) is
// unavailable. (The SDK wraps the *url.Error in an *oss.OperationError,
// which retry.ConnectionErrorRetryable does not look through.)
func (b *bucket) Transient(err error) (unavailable, decided bool) {
	var se *oss.ServiceError
	if errors.As(err, &se) {
		return objstore.TransientStatus(se.StatusCode), true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return true, true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true, true
	}
	if (&retry.ConnectionErrorRetryable{}).IsErrorRetryable(err) {
		return true, true
	}
	return false, false
}
