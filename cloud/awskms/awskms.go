// Package awskms seals private keys under AWS KMS data keys (envelope
// encryption, DESIGN.md §3): each key gets a fresh 256-bit data key from
// GenerateDataKey, bound to the key's PubMd5 by the KMS encryption context,
// and only the KMS-wrapped data key is stored with the record. It
// implements seal.DataKeys on aws-sdk-go-v2/service/kms; Sealer wires it
// into a seal.Envelope.
//
// The IAM policy the function needs on its key is kms:GenerateDataKey and
// kms:Decrypt, nothing more (New makes no call).
//
// Errors are *Error values. A KMS that cannot be reached, answers with a
// server error (5xx) or keeps throttling after the SDK's bounded retries,
// or does not answer within the operation's time limit, gives an error
// wrapping service.ErrUnavailable, which the service answers with
// Internal.Error (retryable). Everything else (a ciphertext that does not
// authenticate, the wrong key, access denied, a disabled key, an unknown
// key, a bad request) wraps one of the sentinels below and not
// service.ErrUnavailable.
//
// Plaintext data keys are never put into errors or logs (the package does
// not log, and the SDK's request logging stays off); the caller zeroes them
// after use (seal.Envelope does), and this package zeroes any it does not
// hand over. Copies inside the SDK's response buffers are out of reach.
package awskms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/csrfn/csrfn/cloud/awsenv"
	"github.com/csrfn/csrfn/cloud/internal/kmsbase"
	"github.com/csrfn/csrfn/cloud/internal/kmserr"
	"github.com/csrfn/csrfn/core/seal"
)

// Scheme is the seal.SealedKey scheme of keys sealed under AWS KMS data
// keys.
const Scheme = "aws-kms-envelope"

// DataKeySize is the size of the data keys requested (KeySpec AES_256).
const DataKeySize = kmsbase.DataKeySize

// Defaults of Options.
const (
	DefaultMaxAttempts    = kmsbase.DefaultMaxAttempts
	DefaultBaseDelay      = kmsbase.DefaultBaseDelay
	DefaultMaxBackoff     = kmsbase.DefaultMaxBackoff
	DefaultAttemptTimeout = kmsbase.DefaultAttemptTimeout
	DefaultTimeout        = kmsbase.DefaultTimeout
)

const errPrefix = "awskms: "

var adapter = &kmserr.Adapter{Name: "awskms"}

// Options adjust New. The zero value is the production setting on Lambda:
// configuration, region and credentials from the environment
// (config.LoadDefaultConfig; AWS_REGION and the function role's
// credentials), the public regional endpoint.
type Options struct {
	// Region overrides the configured region. With neither, the region of
	// a key ARN is used.
	Region string
	// Endpoint overrides the KMS endpoint URL: a VPC interface endpoint,
	// a FIPS endpoint, or a test server.
	Endpoint string
	// Config, when non-nil, is used instead of config.LoadDefaultConfig.
	Config *aws.Config
	// Credentials override the configuration's credentials.
	Credentials aws.CredentialsProvider

	// MaxAttempts is the SDK's attempts per operation, the first
	// included (default 3). Connection errors, 5xx answers and throttling
	// are retried.
	MaxAttempts int
	// BaseDelay and MaxBackoff shape the exponential full-jitter backoff
	// between attempts: a random delay up to min(MaxBackoff,
	// BaseDelay·2^(attempt-1)) (defaults 100 ms, 1 s).
	BaseDelay, MaxBackoff time.Duration
	// AttemptTimeout bounds each HTTP attempt (default 5 s).
	AttemptTimeout time.Duration
	// Timeout bounds each operation, retries included (default 10 s); the
	// caller's context deadline applies too.
	Timeout time.Duration
}

// KMS is an AWS KMS key as envelope sealing uses it. It is safe for
// concurrent use.
type KMS struct {
	client  *kms.Client
	keyID   string
	timeout time.Duration
}

var _ seal.DataKeys = (*KMS)(nil)

// New returns the KMS key keyID: a key id, key ARN, alias name
// ("alias/…") or alias ARN. It makes no request.
func New(ctx context.Context, keyID string, opts Options) (*KMS, error) {
	keyID, err := kmsbase.KeyID(keyID, errPrefix, 2048, "a KMS key id, key ARN or alias")
	if err != nil {
		return nil, err
	}
	var cfg aws.Config
	if opts.Config != nil {
		cfg = opts.Config.Copy()
	} else {
		cfg = awsenv.Config(os.LookupEnv)
		if opts.Endpoint == "" {
			opts.Endpoint = awsenv.Endpoint(os.LookupEnv, "KMS")
		}
	}
	region := opts.Region
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		if a, err := arn.Parse(keyID); err == nil {
			region = a.Region
		}
	}
	if region == "" {
		return nil, errors.New("awskms: no AWS region: set AWS_REGION or give the key as an ARN")
	}

	policy := kmsbase.Policy{MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxBackoff: opts.MaxBackoff,
		AttemptTimeout: opts.AttemptTimeout, Timeout: opts.Timeout}.WithDefaults()
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = policy.MaxAttempts
		o.MaxBackoff = policy.MaxBackoff
		o.Backoff = fullJitter{policy}
		// No cross-request retry quota: each operation is bounded by
		// MaxAttempts and Timeout, and an outage must not make later
		// operations fail without even trying.
		o.RateLimiter = ratelimit.None
	})
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(policy.AttemptTimeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = policy.DialTimeout() }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = policy.DialTimeout()
			t.ResponseHeaderTimeout = policy.AttemptTimeout
		})

	client := kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.Region = region
		o.Retryer = retryer
		o.RetryMaxAttempts = policy.MaxAttempts
		o.HTTPClient = httpClient
		o.ClientLogMode = 0 // never log requests or responses
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		if opts.Credentials != nil {
			o.Credentials = opts.Credentials
		}
	})
	return &KMS{client: client, keyID: keyID, timeout: policy.Timeout}, nil
}

// KeyID is the key id New was given.
func (k *KMS) KeyID() string { return k.keyID }

// Sealer returns the envelope sealer (and opener) for k. random supplies
// the AES-GCM nonces; nil means crypto/rand.
func Sealer(k *KMS, random io.Reader) *seal.Envelope { return kmsbase.Sealer(Scheme, k, random) }

// GenerateDataKey asks KMS for a fresh AES-256 data key under k, bound to
// encContext. keyID is the ARN of the KMS key KMS used.
func (k *KMS) GenerateDataKey(ctx context.Context, encContext map[string]string) (plaintext, wrapped []byte, keyID string, err error) {
	const op = "GenerateDataKey"
	cctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.GenerateDataKey(cctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(k.keyID),
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encContext,
	})
	if err != nil {
		return nil, nil, "", classify(op, ctx, err)
	}
	if len(out.Plaintext) != DataKeySize || len(out.CiphertextBlob) == 0 || aws.ToString(out.KeyId) == "" {
		seal.Zero(out.Plaintext)
		return nil, nil, "", &Error{Adapter: adapter, Op: op, Kind: ErrBadResponse, Err: fmt.Errorf("data key of %d bytes, wrapped key of %d bytes, key id %q",
			len(out.Plaintext), len(out.CiphertextBlob), aws.ToString(out.KeyId))}
	}
	return out.Plaintext, out.CiphertextBlob, aws.ToString(out.KeyId), nil
}

// Decrypt unwraps a data key. keyID, when set, is the KMS key the data key
// must be wrapped under (the KeyID recorded at sealing); KMS refuses a
// ciphertext of another key with IncorrectKeyException.
func (k *KMS) Decrypt(ctx context.Context, wrapped []byte, keyID string, encContext map[string]string) ([]byte, error) {
	const op = "Decrypt"
	cctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	in := &kms.DecryptInput{CiphertextBlob: wrapped, EncryptionContext: encContext}
	if keyID != "" {
		in.KeyId = aws.String(keyID)
	}
	out, err := k.client.Decrypt(cctx, in)
	if err != nil {
		return nil, classify(op, ctx, err)
	}
	if len(out.Plaintext) != DataKeySize {
		seal.Zero(out.Plaintext)
		return nil, &Error{Adapter: adapter, Op: op, Kind: ErrBadResponse, Err: fmt.Errorf("data key of %d bytes", len(out.Plaintext))}
	}
	return out.Plaintext, nil
}

// Kinds of failure (Error.Kind), for errors.Is: kmserr's, which alikms
// shares. An outage is service.ErrUnavailable.
var (
	ErrInvalidCiphertext = kmserr.ErrInvalidCiphertext
	ErrIncorrectKey      = kmserr.ErrIncorrectKey
	ErrAccessDenied      = kmserr.ErrAccessDenied
	ErrKeyState          = kmserr.ErrKeyState
	ErrKeyNotFound       = kmserr.ErrKeyNotFound
	ErrCredentials       = kmserr.ErrCredentials
	ErrRejected          = kmserr.ErrRejected
	ErrBadResponse       = kmserr.ErrBadResponse
)

// Error is a failed KMS operation (kmserr's). It never holds key material.
// Its message is the SDK's error after the kind; the SDK's errors carry
// the operation, status, error code and request id.
type Error = kmserr.Error

var (
	authCodes = map[string]bool{
		"AccessDeniedException":               true,
		"UnrecognizedClientException":         true,
		"InvalidSignatureException":           true,
		"IncompleteSignatureException":        true,
		"MissingAuthenticationTokenException": true,
		"ExpiredTokenException":               true,
		"InvalidClientTokenId":                true,
	}
	throttles = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// classify turns an SDK error into an *Error; parent is the caller's
// context (the operation's own deadline is an outage, the caller's
// cancellation is not).
func classify(op string, parent context.Context, err error) *Error {
	e := &Error{Adapter: adapter, Op: op, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
	}
	e.Kind = kmserr.KindOf(parent,
		e.Status >= 500 || throttles.IsErrorThrottle(err) == aws.TrueTernary,
		kindOfCode(e.Code, err), e.Status >= 400, unreachable(err))
	return e
}

// kindOfCode is the kind of failure an AWS KMS error code says, or a
// signing error (no credentials to sign with); nil for anything else.
func kindOfCode(code string, err error) error {
	var signing *v4.SigningError
	switch {
	case code == "InvalidCiphertextException":
		return ErrInvalidCiphertext
	case code == "IncorrectKeyException":
		return ErrIncorrectKey
	case authCodes[code]:
		return ErrAccessDenied
	case code == "KMSInvalidStateException" || code == "DisabledException":
		return ErrKeyState
	case code == "NotFoundException":
		return ErrKeyNotFound
	case errors.As(err, &signing):
		return ErrCredentials
	}
	return nil
}

// unreachable reports errors of getting no (complete) answer: connection
// failures, timeouts, truncated responses, and the SDK's failure to send.
func unreachable(err error) bool {
	var send *smithyhttp.RequestSendError
	return errors.As(err, &send) || kmserr.Unreachable(err)
}

// fullJitter is the SDK's backoff: kmsbase's, exponential with full
// jitter and the same for throttling and other retryable errors (the SDK's
// default waits at least a second after throttling, which an operation
// timeout of a few seconds cannot afford twice).
type fullJitter struct{ policy kmsbase.Policy }

func (j fullJitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	return j.policy.Backoff(attempt), nil
}
