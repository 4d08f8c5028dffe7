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
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
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
	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/core/config"
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

// Defaults of the retry policy (objstore's, which says why).
const (
	DefaultMaxAttempts    = objstore.DefaultMaxAttempts    // 1 try + 3 retries
	DefaultMaxBackoff     = objstore.DefaultMaxBackoff     // cap of the jittered exponential backoff
	DefaultAttemptTimeout = objstore.DefaultAttemptTimeout // one HTTP exchange, body included
	DefaultCallTimeout    = objstore.DefaultCallTimeout    // a whole Create/Load/List, retries and backoff included
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
	get := objstore.Getenv(lookup)
	o := Options{Region: get(EnvRegion), Endpoint: get(EnvEndpoint), KMSKeyID: get(EnvKMSKeyID)}
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

// Store is a key store in one S3 bucket under one prefix. Its Create is a
// conditional PUT (If-None-Match: *) with SSE-KMS; Create, Load and List
// follow objstore's rules. It is safe for concurrent use.
type Store struct {
	*objstore.Store
}

var _ config.Store = (*Store)(nil)

// ParseURL splits s3://BUCKET/PREFIX into the bucket and the key prefix
// ("" or ending in "/").
func ParseURL(u *url.URL) (bucket, prefix string, err error) {
	return objstore.ParseURL(u, scheme, errPrefix)
}

// New opens the store at u (s3://BUCKET/PREFIX). It does not contact S3:
// credentials are fetched and the bucket is reached on first use, so a cold
// start pays nothing and the role needs no permission beyond reading and
// creating objects under the prefix (and listing it, for List).
func New(ctx context.Context, u *url.URL, opts Options) (*Store, error) {
	bucketName, prefix, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	if opts.Endpoint != "" {
		if err := checkEndpoint(opts.Endpoint); err != nil {
			return nil, errors.New(errPrefix + err.Error())
		}
	}
	policy := objstore.Policy{MaxAttempts: opts.MaxAttempts, MaxBackoff: opts.MaxBackoff,
		AttemptTimeout: opts.AttemptTimeout, CallTimeout: opts.CallTimeout}.WithDefaults()

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
		hc = awshttp.NewBuildableClient().WithTimeout(policy.AttemptTimeout)
	}
	hc = objstore.CountingClient{Next: hc}

	pathStyle := opts.Endpoint != ""
	if opts.PathStyle != nil {
		pathStyle = *opts.PathStyle
	}
	retryer := newRetryer(policy.MaxAttempts, policy.MaxBackoff)
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = pathStyle
		o.HTTPClient = hc
		o.Retryer = retryer
		o.RetryMaxAttempts = policy.MaxAttempts // wins over AWS_MAX_ATTEMPTS
		// The store never logs: errors go to the caller, who logs them
		// under the request's RequestId.
		o.Logger = logging.Nop{}
		o.ClientLogMode = 0
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &Store{objstore.New(objstore.Config{
		Backend: &bucket{
			client:    client,
			name:      bucketName,
			kmsKeyID:  opts.KMSKeyID,
			bucketKey: opts.BucketKeyEnabled,
		},
		ErrPrefix:   errPrefix,
		Bucket:      bucketName,
		Prefix:      prefix,
		CallTimeout: policy.CallTimeout,
		HTTPClient:  hc,
	})}, nil
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
		o.BaseDelay = objstore.BaseDelay
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{
			Codes: map[string]struct{}{codeConflict: {}},
		})
	})
}

// bucket is the store's objstore.Backend: one S3 bucket through the SDK.
type bucket struct {
	client    *s3.Client
	name      string
	kmsKeyID  string
	bucketKey bool
}

// PutObject is a conditional PUT: If-None-Match: * makes S3 itself decide,
// atomically, that the key is created only once.
func (b *bucket) PutObject(ctx context.Context, key string, data []byte) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(b.name),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType),
		// Content-MD5 makes S3 reject a body damaged in transit; the SDK
		// adds its default CRC32 checksum as well.
		ContentMD5: aws.String(objstore.ContentMD5(data)),
		// Create-only, decided atomically by S3.
		IfNoneMatch:          aws.String("*"),
		ServerSideEncryption: sseKMS,
	}
	if b.kmsKeyID != "" {
		in.SSEKMSKeyId = aws.String(b.kmsKeyID)
	}
	if b.bucketKey {
		in.BucketKeyEnabled = aws.Bool(true)
	}
	_, err := b.client.PutObject(ctx, in)
	return err
}

// PutAnswer classifies a failed conditional PUT: 412 PreconditionFailed
// (If-None-Match: * found the key) or 409 ConditionalRequestConflict (a
// concurrent write to the key, still there after the retries).
func (b *bucket) PutAnswer(err error) objstore.Answer {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case codeExists:
			return objstore.Exists
		case codeConflict:
			return objstore.Conflict
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed {
		return objstore.Exists
	}
	return objstore.Failed
}

func (b *bucket) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.name),
		Key:    aws.String(key),
		// Verify the object's stored checksum, when it has one.
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}

// NotFound reports whether a GetObject error says the key does not exist.
// S3 says so with the code NoSuchKey; any other code under a 404
// (NoSuchBucket, or versitygw's XAdminUserNotFound for an unknown access
// key) is a configuration problem, not a missing record. A bare 404
// without a code (a HEAD-style answer) is taken as missing.
func (b *bucket) NotFound(err error) bool {
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

func (b *bucket) ListObjects(ctx context.Context, prefix string, add func(key string)) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(b.name),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			add(aws.ToString(o.Key))
		}
	}
	return nil
}

// Transient recognises what says S3 could not be reached or could not
// serve the request for now: a transient status, the SDK's throttling and
// retryable error codes, its exhausted retry quota, a connection error.
func (b *bucket) Transient(err error) (unavailable, decided bool) {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && objstore.TransientStatus(re.HTTPStatusCode()) {
		return true, true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; ok {
			return true, true
		}
		if _, ok := retry.DefaultRetryableErrorCodes[ae.ErrorCode()]; ok {
			return true, true
		}
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return true, true
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary {
		return true, true
	}
	return false, false
}
