// Package alikms seals private keys under Alibaba Cloud KMS data keys
// (envelope encryption, DESIGN.md §3): each key gets a fresh 256-bit data
// key from GenerateDataKey, bound to the key's PubMd5 by the KMS
// EncryptionContext, and only the KMS-wrapped data key is stored with the
// record. It implements seal.DataKeys on the official SDK
// (github.com/alibabacloud-go/kms-20160120/v3, KMS API 2016-01-20, shared
// gateway); Sealer wires it into a seal.Envelope.
//
// The RAM policy the function's role needs on its key is kms:GenerateDataKey
// and kms:Decrypt (New makes no call).
//
// # Endpoint
//
// The default endpoint is the public one of the region,
// kms.<region>.aliyuncs.com, over HTTPS. Inside a VPC (a Function Compute
// function with VPC access and no Internet access) use the VPC endpoint,
// kms-vpc.<region>.aliyuncs.com (VPCEndpoint), through Options.Endpoint. An
// Endpoint may be a host[:port] (HTTPS) or a URL with its scheme.
//
// # Credentials
//
// Requests are signed with credentials fetched from a CredentialsProvider
// before every attempt, so temporary (STS) credentials can be renewed
// without rebuilding anything. The default, EnvCredentials, reads
// ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and
// ALIBABA_CLOUD_SECURITY_TOKEN, which Function Compute sets to the
// function role's STS credentials. FC also hands fresh credentials with
// each invocation (fccontext.FromContext(ctx).Credentials); an FC handler
// passes them on with WithCredentials, and ContextCredentials (the
// default wrapped around the provider) prefers them:
//
//	lc, _ := fccontext.FromContext(ctx)
//	ctx = alikms.WithCredentials(ctx, alikms.Credentials{
//		AccessKeyID:     lc.Credentials.AccessKeyId,
//		AccessKeySecret: lc.Credentials.AccessKeySecret,
//		SecurityToken:   lc.Credentials.SecurityToken,
//	})
//
// # Errors
//
// Errors are *Error values. A KMS that cannot be reached, answers with a
// server error (5xx) or keeps throttling after MaxAttempts attempts, or
// does not answer within the operation's time limit, gives an error
// wrapping service.ErrUnavailable, which the service answers with
// Internal.Error (retryable). Everything else wraps one of the sentinels
// below and not service.ErrUnavailable. The SDK's own retries are off
// (they never retry a failed connection and sleep without watching the
// context); this package retries itself, with exponential full-jitter
// backoff bounded by the context.
//
// Plaintext data keys are never put into errors or logs (the package does
// not log; the SDK's response models print their Plaintext and are never
// printed). The []byte data keys handed out are the caller's to zero
// (seal.Envelope does); this package zeroes any it does not hand over.
// The SDK returns the plaintext as a base64 Go string, which cannot be
// zeroed.
package alikms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	kmsclient "github.com/alibabacloud-go/kms-20160120/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/csrfn/csrfn/cloud/internal/kmsbase"
	"github.com/csrfn/csrfn/cloud/internal/kmserr"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// Scheme is the seal.SealedKey scheme of keys sealed under Alibaba Cloud
// KMS data keys.
const Scheme = "alibaba-kms-envelope"

// DataKeySize is the size of the data keys requested (KeySpec AES_256).
const DataKeySize = kmsbase.DataKeySize

// Environment variables of EnvCredentials and of the default region.
const (
	EnvAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	EnvAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	EnvSecurityToken   = "ALIBABA_CLOUD_SECURITY_TOKEN"
	EnvRegionID        = "ALIBABA_CLOUD_REGION_ID"
	EnvFCRegion        = "FC_REGION" // set by Function Compute
)

// Defaults of Options.
const (
	DefaultMaxAttempts    = kmsbase.DefaultMaxAttempts
	DefaultBaseDelay      = kmsbase.DefaultBaseDelay
	DefaultMaxBackoff     = kmsbase.DefaultMaxBackoff
	DefaultAttemptTimeout = kmsbase.DefaultAttemptTimeout
	DefaultTimeout        = kmsbase.DefaultTimeout
)

const errPrefix = "alikms: "

var adapter = &kmserr.Adapter{Name: "alikms", Answer: true}

// PublicEndpoint is the shared gateway's public endpoint of a region.
func PublicEndpoint(regionID string) string { return "kms." + regionID + ".aliyuncs.com" }

// VPCEndpoint is the shared gateway's VPC endpoint of a region.
func VPCEndpoint(regionID string) string { return "kms-vpc." + regionID + ".aliyuncs.com" }

// Credentials are an AccessKey, with a SecurityToken for STS credentials.
// They never print their secret.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SecurityToken   string
}

func (c Credentials) String() string {
	return "alikms.Credentials{AccessKeyID: " + c.AccessKeyID + ", AccessKeySecret: [redacted], SecurityToken: [redacted]}"
}
func (c Credentials) GoString() string     { return c.String() }
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// CredentialsProvider supplies the credentials of each request attempt.
type CredentialsProvider interface {
	Credentials(ctx context.Context) (Credentials, error)
}

// CredentialsFunc adapts a function to CredentialsProvider.
type CredentialsFunc func(ctx context.Context) (Credentials, error)

func (f CredentialsFunc) Credentials(ctx context.Context) (Credentials, error) { return f(ctx) }

// EnvCredentials reads the ALIBABA_CLOUD_* variables at each call.
func EnvCredentials() CredentialsProvider {
	return CredentialsFunc(func(context.Context) (Credentials, error) {
		c := Credentials{
			AccessKeyID:     strings.TrimSpace(os.Getenv(EnvAccessKeyID)),
			AccessKeySecret: strings.TrimSpace(os.Getenv(EnvAccessKeySecret)),
			SecurityToken:   strings.TrimSpace(os.Getenv(EnvSecurityToken)),
		}
		if c.AccessKeyID == "" || c.AccessKeySecret == "" {
			return Credentials{}, fmt.Errorf("%s and %s are not set", EnvAccessKeyID, EnvAccessKeySecret)
		}
		return c, nil
	})
}

// StaticCredentials always supplies c.
func StaticCredentials(c Credentials) CredentialsProvider {
	return CredentialsFunc(func(context.Context) (Credentials, error) { return c, nil })
}

type credsKey struct{}

// WithCredentials attaches per-invocation credentials (Function Compute's
// fccontext Credentials) to ctx for ContextCredentials.
func WithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credsKey{}, c)
}

// ContextCredentials supplies the credentials attached by WithCredentials
// when there are some, and fallback's otherwise.
func ContextCredentials(fallback CredentialsProvider) CredentialsProvider {
	return CredentialsFunc(func(ctx context.Context) (Credentials, error) {
		if c, ok := ctx.Value(credsKey{}).(Credentials); ok && c.AccessKeyID != "" && c.AccessKeySecret != "" {
			return c, nil
		}
		return fallback.Credentials(ctx)
	})
}

// Options adjust New. The zero value is the production setting on Function
// Compute: the region from FC_REGION (or ALIBABA_CLOUD_REGION_ID), the
// region's public endpoint, credentials from the context or the
// environment.
type Options struct {
	// RegionID, e.g. "cn-hangzhou".
	RegionID string
	// Endpoint overrides PublicEndpoint(RegionID): VPCEndpoint(RegionID),
	// a host[:port] (HTTPS) or a URL ("http://127.0.0.1:8080" for tests).
	Endpoint string
	// Credentials; nil means ContextCredentials(EnvCredentials()).
	Credentials CredentialsProvider

	// MaxAttempts per operation, the first included (default 3).
	// Connection failures, timeouts, 5xx answers and throttling are
	// retried.
	MaxAttempts int
	// BaseDelay and MaxBackoff shape the exponential full-jitter backoff
	// between attempts (defaults 100 ms, 1 s).
	BaseDelay, MaxBackoff time.Duration
	// AttemptTimeout bounds each HTTP attempt (default 5 s).
	AttemptTimeout time.Duration
	// Timeout bounds each operation, retries included (default 10 s); the
	// caller's context deadline applies too.
	Timeout time.Duration
}

// KMS is an Alibaba Cloud KMS key as envelope sealing uses it. It is safe
// for concurrent use.
type KMS struct {
	keyID    string
	regionID string
	protocol string // "https" or "http"
	host     string
	creds    CredentialsProvider
	http     *http.Client
	policy   kmsbase.Policy
}

var _ seal.DataKeys = (*KMS)(nil)

// New returns the KMS key keyID (a key id or an alias, "alias/…"). It
// makes no request.
func New(ctx context.Context, keyID string, opts Options) (*KMS, error) {
	keyID, err := kmsbase.KeyID(keyID, errPrefix, 1024, "a KMS key id or alias")
	if err != nil {
		return nil, err
	}
	region := strings.TrimSpace(opts.RegionID)
	if region == "" {
		region = strings.TrimSpace(os.Getenv(EnvRegionID))
	}
	if region == "" {
		region = strings.TrimSpace(os.Getenv(EnvFCRegion))
	}
	protocol, host := "https", ""
	switch ep := strings.TrimSpace(opts.Endpoint); {
	case ep == "" && region == "":
		return nil, fmt.Errorf("alikms: no region: set %s (Function Compute sets %s) or give an endpoint", EnvRegionID, EnvFCRegion)
	case ep == "":
		host = PublicEndpoint(region)
	case strings.Contains(ep, "://"):
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("alikms: endpoint %q is not an http(s)://host[:port] URL", ep)
		}
		protocol, host = u.Scheme, u.Host
	default:
		if strings.ContainsAny(ep, "/?# ") {
			return nil, fmt.Errorf("alikms: endpoint %q is not a host[:port]", ep)
		}
		host = ep
	}
	creds := opts.Credentials
	if creds == nil {
		creds = ContextCredentials(EnvCredentials())
	}
	policy := kmsbase.Policy{MaxAttempts: opts.MaxAttempts, BaseDelay: opts.BaseDelay, MaxBackoff: opts.MaxBackoff,
		AttemptTimeout: opts.AttemptTimeout, Timeout: opts.Timeout}.WithDefaults()
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: policy.DialTimeout(), KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   policy.DialTimeout(),
		ResponseHeaderTimeout: policy.AttemptTimeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &KMS{
		keyID:    keyID,
		regionID: region,
		protocol: protocol,
		host:     host,
		creds:    creds,
		http:     &http.Client{Transport: transport, Timeout: policy.AttemptTimeout},
		policy:   policy,
	}, nil
}

// KeyID is the key id New was given.
func (k *KMS) KeyID() string { return k.keyID }

// Endpoint is the endpoint requests go to (host[:port]).
func (k *KMS) Endpoint() string { return k.host }

// Sealer returns the envelope sealer (and opener) for k. random supplies
// the AES-GCM nonces; nil means crypto/rand.
func Sealer(k *KMS, random io.Reader) *seal.Envelope { return kmsbase.Sealer(Scheme, k, random) }

// GenerateDataKey asks KMS for a fresh AES-256 data key under k, bound to
// encContext. keyID is the id of the KMS key KMS used (an alias resolved).
func (k *KMS) GenerateDataKey(ctx context.Context, encContext map[string]string) (plaintext, wrapped []byte, keyID string, err error) {
	const op = "GenerateDataKey"
	req := &kmsclient.GenerateDataKeyRequest{
		KeyId:             tea.String(k.keyID),
		KeySpec:           tea.String("AES_256"),
		EncryptionContext: sdkContext(encContext),
	}
	var body *kmsclient.GenerateDataKeyResponseBody
	err = k.do(ctx, op, func(c *kmsclient.Client) error {
		resp, err := c.GenerateDataKey(req)
		if err == nil && resp != nil {
			body = resp.Body
		}
		return answered(body != nil, err)
	})
	if err != nil {
		return nil, nil, "", err
	}
	bad := func(format string, args ...any) error {
		return &Error{Adapter: adapter, Op: op, Kind: ErrBadResponse, RequestID: tea.StringValue(body.RequestId), Err: fmt.Errorf(format, args...)}
	}
	plaintext, err = base64.StdEncoding.DecodeString(tea.StringValue(body.Plaintext))
	if err != nil || len(plaintext) != DataKeySize {
		seal.Zero(plaintext)
		return nil, nil, "", bad("Plaintext is not a base64 %d-byte key", DataKeySize)
	}
	wrapped, err = base64.StdEncoding.DecodeString(tea.StringValue(body.CiphertextBlob))
	if err != nil || len(wrapped) == 0 {
		seal.Zero(plaintext)
		return nil, nil, "", bad("CiphertextBlob is not base64")
	}
	keyID = tea.StringValue(body.KeyId)
	if keyID == "" {
		seal.Zero(plaintext)
		return nil, nil, "", bad("no KeyId")
	}
	return plaintext, wrapped, keyID, nil
}

// Decrypt unwraps a data key. keyID, when set, is the KMS key id recorded
// at sealing: the Decrypt API finds the key from the ciphertext itself, and
// an answer from another key is refused with ErrIncorrectKey.
func (k *KMS) Decrypt(ctx context.Context, wrapped []byte, keyID string, encContext map[string]string) ([]byte, error) {
	const op = "Decrypt"
	req := &kmsclient.DecryptRequest{
		CiphertextBlob:    tea.String(base64.StdEncoding.EncodeToString(wrapped)),
		EncryptionContext: sdkContext(encContext),
	}
	var body *kmsclient.DecryptResponseBody
	err := k.do(ctx, op, func(c *kmsclient.Client) error {
		resp, err := c.Decrypt(req)
		if err == nil && resp != nil {
			body = resp.Body
		}
		return answered(body != nil, err)
	})
	if err != nil {
		return nil, err
	}
	plaintext, err := base64.StdEncoding.DecodeString(tea.StringValue(body.Plaintext))
	if err != nil || len(plaintext) != DataKeySize {
		seal.Zero(plaintext)
		return nil, &Error{Adapter: adapter, Op: op, Kind: ErrBadResponse, RequestID: tea.StringValue(body.RequestId),
			Err: fmt.Errorf("the Plaintext field is not a base64 %d-byte key", DataKeySize)}
	}
	if got := tea.StringValue(body.KeyId); keyID != "" && got != keyID {
		seal.Zero(plaintext)
		return nil, &Error{Adapter: adapter, Op: op, Kind: ErrIncorrectKey, RequestID: tea.StringValue(body.RequestId),
			Err: fmt.Errorf("unwrapped by key %s, the record names %s", got, keyID)}
	}
	return plaintext, nil
}

var errNoBody = errors.New("answer without a body")

// answered is the error of an SDK call that returned err, and a body when
// hasBody: a success without a body is errNoBody.
func answered(hasBody bool, err error) error {
	if err == nil && !hasBody {
		return errNoBody
	}
	return err
}

func sdkContext(ec map[string]string) map[string]interface{} {
	if len(ec) == 0 {
		return nil
	}
	m := make(map[string]interface{}, len(ec))
	for k, v := range ec {
		m[k] = v
	}
	return m
}

// do runs call with a client signed by fresh credentials, retrying
// outages with backoff within the operation's time limit.
func (k *KMS) do(ctx context.Context, op string, call func(*kmsclient.Client) error) error {
	octx, cancel := context.WithTimeout(ctx, k.policy.Timeout)
	defer cancel()
	var last *Error
	for attempt := 1; ; attempt++ {
		last = k.attempt(ctx, octx, op, call)
		if last == nil {
			return nil
		}
		if last.Kind != service.ErrUnavailable || attempt >= k.policy.MaxAttempts || octx.Err() != nil {
			return last
		}
		if !sleep(octx, k.policy.Backoff(attempt)) {
			if errors.Is(ctx.Err(), context.Canceled) {
				last.Kind = context.Canceled
			}
			return last
		}
	}
}

func (k *KMS) attempt(parent, octx context.Context, op string, call func(*kmsclient.Client) error) *Error {
	creds, err := k.creds.Credentials(octx)
	if err == nil && (creds.AccessKeyID == "" || creds.AccessKeySecret == "") {
		err = errors.New("empty AccessKey")
	}
	if err != nil {
		return &Error{Adapter: adapter, Op: op, Kind: ErrCredentials, Err: err}
	}
	hc := &ctxClient{ctx: octx, client: k.http}
	cfg := &openapi.Config{
		AccessKeyId:     tea.String(creds.AccessKeyID),
		AccessKeySecret: tea.String(creds.AccessKeySecret),
		RegionId:        tea.String(k.regionID),
		Endpoint:        tea.String(k.host),
		Protocol:        tea.String(k.protocol),
		UserAgent:       tea.String("csrfn"),
		HttpClient:      hc,
	}
	if creds.SecurityToken != "" {
		cfg.SecurityToken = tea.String(creds.SecurityToken)
	}
	client, err := kmsclient.NewClient(cfg)
	if err != nil {
		return &Error{Adapter: adapter, Op: op, Kind: ErrCredentials, Err: err}
	}
	if err := call(client); err != nil {
		return classify(op, parent, hc, err)
	}
	return nil
}

// ctxClient is the SDK's HTTP client for one operation: it binds the
// operation's context to each request (the SDK takes none) and remembers
// the last answer's status and request id, which the SDK loses when an
// error body is not JSON (a load balancer's 503 page).
type ctxClient struct {
	ctx       context.Context
	client    *http.Client
	status    atomic.Int64
	requestID atomic.Value
}

func (c *ctxClient) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	resp, err := c.client.Do(req.WithContext(c.ctx))
	if err == nil {
		c.status.Store(int64(resp.StatusCode))
		c.requestID.Store(resp.Header.Get("x-acs-request-id"))
	}
	return resp, err
}

// Kinds of failure (Error.Kind), for errors.Is: kmserr's, which awskms
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
// Its message adds the answer's HTTP status, code and RequestId, which the
// SDK's error does not say on one line, or at all for an answer that is
// not JSON.
type Error = kmserr.Error

var (
	notFoundCodes = map[string]bool{
		"Forbidden.KeyNotFound":        true,
		"Forbidden.AliasNotFound":      true,
		"Forbidden.KeyVersionNotFound": true,
		"Forbidden.ResourceNotFound":   true,
	}
	keyStateCodes = map[string]bool{
		"Rejected.Disabled":        true,
		"Rejected.PendingDeletion": true,
		"Rejetced.PendingDeletion": true, // so spelt in an edition of the API reference
		"Rejected.PendingImport":   true,
		"Rejected.KeyStateInvalid": true,
	}
)

// classify turns an SDK error into an *Error; parent is the caller's
// context (the operation's own deadline is an outage, the caller's
// cancellation is not).
func classify(op string, parent context.Context, hc *ctxClient, err error) *Error {
	e := &Error{Adapter: adapter, Op: op, Err: err, Status: int(hc.status.Load())}
	e.RequestID, _ = hc.requestID.Load().(string)
	var sdk *tea.SDKError
	if errors.As(err, &sdk) {
		e.Code = tea.StringValue(sdk.Code)
		if s := tea.IntValue(sdk.StatusCode); s != 0 {
			e.Status = s
		}
		if id := requestIDOf(sdk); id != "" {
			e.RequestID = id
		}
	}
	code := e.Code
	e.Kind = kmserr.KindOf(parent,
		e.Status >= 500 || strings.HasPrefix(code, "Throttling") || code == "Rejected.Throttling" ||
			code == "ServiceUnavailableTemporary" || code == "InternalFailure",
		kindOfCode(op, code), e.Status >= 400 || code != "", unreachable(err))
	return e
}

// kindOfCode is the kind of failure an Alibaba Cloud KMS error code says
// of operation op; nil for any other code.
func kindOfCode(op, code string) error {
	switch {
	case notFoundCodes[code]:
		return ErrKeyNotFound
	case keyStateCodes[code]:
		return ErrKeyState
	case op == "Decrypt" && (strings.HasPrefix(code, "InvalidParameter") || strings.Contains(code, "Ciphertext")):
		return ErrInvalidCiphertext
	case strings.HasPrefix(code, "Forbidden") || strings.HasPrefix(code, "InvalidAccessKeyId") ||
		strings.HasPrefix(code, "InvalidSecurityToken") || strings.HasPrefix(code, "Signature") ||
		code == "IncompleteSignature" || strings.HasPrefix(code, "InvalidTimeStamp") || code == "InvalidCredentials":
		return ErrAccessDenied
	}
	return nil
}

// requestIDOf digs KMS's RequestId out of the error body the SDK keeps.
func requestIDOf(e *tea.SDKError) string {
	var body struct{ RequestId string }
	if json.Unmarshal([]byte(tea.StringValue(e.Data)), &body) == nil {
		return body.RequestId
	}
	return ""
}

// unreachable reports errors of getting no (complete) answer, an empty
// one (io.EOF) included.
func unreachable(err error) bool {
	return errors.Is(err, io.EOF) || kmserr.Unreachable(err)
}

// sleep waits d unless ctx ends first; it reports whether it waited.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
