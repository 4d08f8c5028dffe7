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
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
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
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// Scheme is the seal.SealedKey scheme of keys sealed under AWS KMS data
// keys.
const Scheme = "aws-kms-envelope"

// DataKeySize is the size of the data keys requested (KeySpec AES_256).
const DataKeySize = 32

// Defaults of Options.
const (
	DefaultMaxAttempts    = 3
	DefaultBaseDelay      = 100 * time.Millisecond
	DefaultMaxBackoff     = 1 * time.Second
	DefaultAttemptTimeout = 5 * time.Second
	DefaultTimeout        = 10 * time.Second
	defaultDialTimeout    = 3 * time.Second
)

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
	keyID = strings.TrimSpace(keyID)
	if keyID == "" {
		return nil, errors.New("awskms: empty KMS key id")
	}
	if strings.ContainsAny(keyID, " \t\r\n") || len(keyID) > 2048 {
		return nil, fmt.Errorf("awskms: %q is not a KMS key id, key ARN or alias", keyID)
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

	attempts := orDefault(opts.MaxAttempts, DefaultMaxAttempts)
	base := orDefault(opts.BaseDelay, DefaultBaseDelay)
	maxBackoff := orDefault(opts.MaxBackoff, DefaultMaxBackoff)
	attemptTimeout := orDefault(opts.AttemptTimeout, DefaultAttemptTimeout)
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = maxBackoff
		o.Backoff = fullJitter{base: base, max: maxBackoff}
		// No cross-request retry quota: each operation is bounded by
		// MaxAttempts and Timeout, and an outage must not make later
		// operations fail without even trying.
		o.RateLimiter = ratelimit.None
	})
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(attemptTimeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = min(defaultDialTimeout, attemptTimeout) }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = min(defaultDialTimeout, attemptTimeout)
			t.ResponseHeaderTimeout = attemptTimeout
		})

	client := kms.NewFromConfig(cfg, func(o *kms.Options) {
		o.Region = region
		o.Retryer = retryer
		o.RetryMaxAttempts = attempts
		o.HTTPClient = httpClient
		o.ClientLogMode = 0 // never log requests or responses
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		if opts.Credentials != nil {
			o.Credentials = opts.Credentials
		}
	})
	return &KMS{client: client, keyID: keyID, timeout: orDefault(opts.Timeout, DefaultTimeout)}, nil
}

// KeyID is the key id New was given.
func (k *KMS) KeyID() string { return k.keyID }

// Sealer returns the envelope sealer (and opener) for k. random supplies
// the AES-GCM nonces; nil means crypto/rand.
func Sealer(k *KMS, random io.Reader) *seal.Envelope {
	if random == nil {
		random = rand.Reader
	}
	return &seal.Envelope{Scheme: Scheme, KMS: k, Random: random}
}

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
		return nil, nil, "", &Error{Op: op, Kind: ErrBadResponse, Err: fmt.Errorf("data key of %d bytes, wrapped key of %d bytes, key id %q",
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
		return nil, &Error{Op: op, Kind: ErrBadResponse, Err: fmt.Errorf("data key of %d bytes", len(out.Plaintext))}
	}
	return out.Plaintext, nil
}

// Kinds of failure (Error.Kind), for errors.Is. An outage is
// service.ErrUnavailable.
var (
	ErrInvalidCiphertext = errors.New("awskms: the wrapped data key does not authenticate (tampered, or another encryption context)")
	ErrIncorrectKey      = errors.New("awskms: the wrapped data key belongs to another KMS key")
	ErrAccessDenied      = errors.New("awskms: access denied")
	ErrKeyState          = errors.New("awskms: the KMS key is disabled or pending deletion")
	ErrKeyNotFound       = errors.New("awskms: the KMS key does not exist")
	ErrCredentials       = errors.New("awskms: no AWS credentials")
	ErrRejected          = errors.New("awskms: KMS rejected the request")
	ErrBadResponse       = errors.New("awskms: unexpected answer from KMS")
)

// Error is a failed KMS operation. It never holds key material.
type Error struct {
	Op        string // "GenerateDataKey" or "Decrypt"
	Kind      error  // a sentinel above, service.ErrUnavailable or context.Canceled
	Code      string // the KMS error code, e.g. "InvalidCiphertextException"; "" without an answer
	Status    int    // the HTTP status; 0 without an answer
	RequestID string // KMS's request id, when there was an answer
	Err       error  // the SDK's error
}

func (e *Error) Error() string {
	msg := "awskms: " + e.Op + ": " + strings.TrimPrefix(e.Kind.Error(), "awskms: ")
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes Kind and the SDK's error to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

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
	e := &Error{Op: op, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.RequestID = re.ServiceRequestID()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
	}
	var signing *v4.SigningError
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		e.Kind = context.Canceled
	case e.Status >= 500 || throttles.IsErrorThrottle(err) == aws.TrueTernary:
		e.Kind = service.ErrUnavailable
	case e.Code == "InvalidCiphertextException":
		e.Kind = ErrInvalidCiphertext
	case e.Code == "IncorrectKeyException":
		e.Kind = ErrIncorrectKey
	case authCodes[e.Code]:
		e.Kind = ErrAccessDenied
	case e.Code == "KMSInvalidStateException" || e.Code == "DisabledException":
		e.Kind = ErrKeyState
	case e.Code == "NotFoundException":
		e.Kind = ErrKeyNotFound
	case errors.As(err, &signing):
		e.Kind = ErrCredentials
	case e.Status >= 400:
		e.Kind = ErrRejected
	case unreachable(err):
		e.Kind = service.ErrUnavailable
	default:
		e.Kind = ErrBadResponse
	}
	return e
}

// unreachable reports errors of getting no (complete) answer: connection
// failures, timeouts, truncated responses.
func unreachable(err error) bool {
	var send *smithyhttp.RequestSendError
	var netErr net.Error
	return errors.As(err, &send) ||
		errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// fullJitter is exponential backoff with full jitter, the same for
// throttling and other retryable errors (the SDK's default waits at least
// a second after throttling, which an operation timeout of a few seconds
// cannot afford twice).
type fullJitter struct{ base, max time.Duration }

func (j fullJitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	ceil := j.base << min(max(attempt-1, 0), 16)
	if ceil <= 0 || ceil > j.max {
		ceil = j.max
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)+1))
	if err != nil {
		return ceil, nil
	}
	return time.Duration(n.Int64()), nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
