package awskms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

const pubMd5 = "629bf4fd8104eda171135bcb0f77a10b"

// fastOptions keep retries and timeouts short for tests.
func fastOptions() awskms.Options {
	return awskms.Options{
		MaxAttempts:    3,
		BaseDelay:      time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
		Timeout:        5 * time.Second,
	}
}

// newKMS returns the adapter for keyID on f, signing with creds (f's own
// when zero), through the real SDK client.
func newKMS(t *testing.T, f *kmsfake.AWS, keyID string, creds kmsfake.Credentials, opts awskms.Options) *awskms.KMS {
	t.Helper()
	if creds == (kmsfake.Credentials{}) {
		creds = f.Credentials()
	}
	cfg := aws.Config{
		Region:      f.Region(),
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.AccessKeySecret, creds.SessionToken),
	}
	opts.Config = &cfg
	opts.Endpoint = f.URL()
	k, err := awskms.New(context.Background(), keyID, opts)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// noLeak fails if a data key the fake issued, or one of extra, appears in
// text.
func noLeak(t *testing.T, f *kmsfake.AWS, text string, extra ...[]byte) {
	t.Helper()
	secrets := append(f.IssuedDataKeys(), extra...)
	if i, ok := kmsfake.LeakedSecret(text, secrets...); ok {
		t.Fatalf("secret #%d leaked into %q", i, text)
	}
}

func TestRoundTrip(t *testing.T) {
	f := kmsfake.NewAWS(t)
	arn := f.CreateKey("csrfn")
	for _, keyID := range []string{arn, "alias/csrfn", strings.TrimPrefix(arn[strings.LastIndex(arn, "/"):], "/")} {
		t.Run(keyID, func(t *testing.T) {
			env := awskms.Sealer(newKMS(t, f, keyID, kmsfake.Credentials{}, fastOptions()), nil)
			secret := randomBytes(1200)
			sk, err := env.Seal(context.Background(), secret, []byte(pubMd5))
			if err != nil {
				t.Fatal(err)
			}
			if sk.Scheme != awskms.Scheme || sk.KeyID != arn || len(sk.WrappedKey) == 0 || len(sk.Nonce) != 12 {
				t.Fatalf("sealed key %+v", sk)
			}
			if bytes.Contains(sk.Ciphertext, secret[:32]) {
				t.Fatal("ciphertext holds the plaintext")
			}
			got, err := env.Open(context.Background(), sk, []byte(pubMd5))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatal("round trip changed the plaintext")
			}
		})
	}
	if g, d := f.Calls("GenerateDataKey"), f.Calls("Decrypt"); g != 3 || d != 3 {
		t.Errorf("calls: GenerateDataKey %d, Decrypt %d; want 3 and 3", g, d)
	}
}

func TestDefaultConfigFromEnvironment(t *testing.T) {
	f := kmsfake.NewAWS(t)
	arn := f.CreateKey("")
	c := f.NewCredentials(true) // a Lambda role hands temporary credentials
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", c.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", c.AccessKeySecret)
	t.Setenv("AWS_SESSION_TOKEN", c.SessionToken)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL_KMS", f.URL()) // how an end-to-end test points a real function at the fake
	opts := fastOptions()
	k, err := awskms.New(context.Background(), arn, opts) // region from the ARN
	if err != nil {
		t.Fatal(err)
	}
	env := awskms.Sealer(k, rand.Reader)
	sk, err := env.Seal(context.Background(), []byte("k"), []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Open(context.Background(), sk, []byte(pubMd5)); err != nil {
		t.Fatal(err)
	}

	f.ExpireCredentials(c.AccessKeyID)
	_, err = env.Seal(context.Background(), []byte("k"), []byte(pubMd5))
	if !errors.Is(err, awskms.ErrAccessDenied) || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("expired token: %v", err)
	}

	if _, err := awskms.New(context.Background(), "alias/no-region", opts); err == nil {
		t.Fatal("New without a region succeeded")
	}
	if _, err := awskms.New(context.Background(), " ", opts); err == nil {
		t.Fatal("New with an empty key id succeeded")
	}
}

func TestKeyringOpensEachScheme(t *testing.T) {
	f := kmsfake.NewAWS(t)
	env := awskms.Sealer(newKMS(t, f, f.CreateKey(""), kmsfake.Credentials{}, fastOptions()), nil)
	local, err := seal.NewLocal(randomBytes(seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: local, awskms.Scheme: env}
	for _, s := range []seal.Sealer{local, env} {
		sk, err := s.Seal(context.Background(), []byte("pkcs8"), []byte(pubMd5))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ring.Open(context.Background(), sk, []byte(pubMd5))
		if err != nil || string(got) != "pkcs8" {
			t.Fatalf("%s: %q, %v", sk.Scheme, got, err)
		}
	}
	sk, _ := env.Seal(context.Background(), []byte("pkcs8"), []byte(pubMd5))
	sk.Scheme = "gcp-kms-envelope"
	if _, err := ring.Open(context.Background(), sk, []byte(pubMd5)); !errors.Is(err, seal.ErrUnknownScheme) {
		t.Fatalf("unknown scheme: %v", err)
	}
}

func TestTamperingAndWrongContext(t *testing.T) {
	f := kmsfake.NewAWS(t)
	env := awskms.Sealer(newKMS(t, f, f.CreateKey(""), kmsfake.Credentials{}, fastOptions()), nil)
	secret := randomBytes(100)
	sk, err := env.Seal(context.Background(), secret, []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		if errors.Is(err, service.ErrUnavailable) {
			t.Errorf("%s: %v wraps ErrUnavailable", name, err)
		}
		if err != nil {
			noLeak(t, f, err.Error(), secret)
		}
	}
	// Every byte of the wrapped key is covered: the blob header (key id),
	// the nonce, the ciphertext and the tag.
	for _, i := range []int{0, 5, 36, 40, len(sk.WrappedKey) - 20, len(sk.WrappedKey) - 1} {
		bad := sk
		bad.WrappedKey = bytes.Clone(sk.WrappedKey)
		bad.WrappedKey[i] ^= 0x01
		_, err := env.Open(ctx, bad, []byte(pubMd5))
		check(fmt.Sprintf("wrapped key byte %d", i), err, awskms.ErrInvalidCiphertext)
	}
	bad := sk
	bad.Ciphertext = bytes.Clone(sk.Ciphertext)
	bad.Ciphertext[3] ^= 0x80
	_, err = env.Open(ctx, bad, []byte(pubMd5))
	check("ciphertext", err, seal.ErrAuth)
	bad = sk
	bad.Nonce = bytes.Clone(sk.Nonce)
	bad.Nonce[0] ^= 1
	_, err = env.Open(ctx, bad, []byte(pubMd5))
	check("nonce", err, seal.ErrAuth)

	_, err = env.Open(ctx, sk, []byte("00000000000000000000000000000000"))
	check("another PubMd5", err, awskms.ErrInvalidCiphertext)

	// A record claiming another KMS key: KMS refuses the blob.
	other := f.CreateKey("")
	bad = sk
	bad.KeyID = other
	_, err = env.Open(ctx, bad, []byte(pubMd5))
	check("another key id", err, awskms.ErrIncorrectKey)

	if got, err := env.Open(ctx, sk, []byte(pubMd5)); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the untouched record no longer opens: %v", err)
	}
}

func TestKeyRefusals(t *testing.T) {
	f := kmsfake.NewAWS(t)
	arn := f.CreateKey("")
	ctx := context.Background()
	wrongSecret := f.Credentials()
	wrongSecret.AccessKeySecret = strings.Repeat("x", 40)
	unknownKey := f.Credentials()
	unknownKey.AccessKeyID = "AKIAUNKNOWN000000000"
	noToken := f.NewCredentials(true)
	noToken.SessionToken = ""
	state := func(s kmsfake.KeyState) func() { return func() { f.SetKeyState(arn, s) } }
	deny := func(d bool) func() { return func() { f.DenyAccess(arn, d) } }
	cases := []struct {
		name        string
		keyID       string
		creds       kmsfake.Credentials
		setup, undo func()
		want        error
		code        string
	}{
		{"unknown alias", "alias/missing", kmsfake.Credentials{}, nil, nil, awskms.ErrKeyNotFound, "NotFoundException"},
		{"unknown key", "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000", kmsfake.Credentials{}, nil, nil,
			awskms.ErrKeyNotFound, "NotFoundException"},
		{"disabled", arn, kmsfake.Credentials{}, state(kmsfake.Disabled), state(kmsfake.Enabled), awskms.ErrKeyState, "DisabledException"},
		{"pending deletion", arn, kmsfake.Credentials{}, state(kmsfake.PendingDeletion), state(kmsfake.Enabled), awskms.ErrKeyState, "KMSInvalidStateException"},
		{"access denied", arn, kmsfake.Credentials{}, deny(true), deny(false), awskms.ErrAccessDenied, "AccessDeniedException"},
		{"wrong secret", arn, wrongSecret, nil, nil, awskms.ErrAccessDenied, "InvalidSignatureException"},
		{"unknown access key", arn, unknownKey, nil, nil, awskms.ErrAccessDenied, "UnrecognizedClientException"},
		{"missing session token", arn, noToken, nil, nil, awskms.ErrAccessDenied, "UnrecognizedClientException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
				defer c.undo()
			}
			before := f.Calls("GenerateDataKey")
			env := awskms.Sealer(newKMS(t, f, c.keyID, c.creds, fastOptions()), nil)
			_, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
			if !errors.Is(err, c.want) || errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			var ke *awskms.Error
			if !errors.As(err, &ke) || ke.Code != c.code || ke.Status != 400 || ke.Op != "GenerateDataKey" || ke.RequestID == "" {
				t.Fatalf("error %#v, want code %s", ke, c.code)
			}
			if n := f.Calls("GenerateDataKey") - before; n != 1 {
				t.Errorf("%d requests; a refusal must not be retried", n)
			}
		})
	}
	// Decrypt refusals too.
	env := awskms.Sealer(newKMS(t, f, arn, kmsfake.Credentials{}, fastOptions()), nil)
	sk, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	f.SetKeyState(arn, kmsfake.Disabled)
	if _, err := env.Open(ctx, sk, []byte(pubMd5)); !errors.Is(err, awskms.ErrKeyState) {
		t.Fatalf("Decrypt with a disabled key: %v", err)
	}
	f.SetKeyState(arn, kmsfake.Enabled)
}

func TestOutage(t *testing.T) {
	f := kmsfake.NewAWS(t)
	arn := f.CreateKey("")
	opts := fastOptions()
	opts.AttemptTimeout = 200 * time.Millisecond
	env := awskms.Sealer(newKMS(t, f, arn, kmsfake.Credentials{}, opts), nil)
	ctx := context.Background()
	sk, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		outage   kmsfake.Outage
		attempts int // requests the fake sees per operation
	}{
		{kmsfake.Unavailable, 3},
		{kmsfake.Throttled, 3},
		{kmsfake.Stalled, 3},
		{kmsfake.Refused, 0},
	} {
		t.Run(c.outage.String(), func(t *testing.T) {
			f.SetOutage(c.outage)
			defer f.SetOutage(kmsfake.Up)
			before := f.Calls("")
			start := time.Now()
			_, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
			if !errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("Seal: %v does not wrap ErrUnavailable", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Seal took %v", d)
			}
			if n := f.Calls("") - before; n != c.attempts {
				t.Errorf("%d requests, want %d (bounded retries)", n, c.attempts)
			}
			_, err = env.Open(ctx, sk, []byte(pubMd5))
			if !errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("Open: %v does not wrap ErrUnavailable", err)
			}
			noLeak(t, f, err.Error())
		})
	}
	if _, err := env.Open(ctx, sk, []byte(pubMd5)); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestTimeouts(t *testing.T) {
	f := kmsfake.NewAWS(t)
	arn := f.CreateKey("")
	opts := fastOptions()
	opts.Timeout = 300 * time.Millisecond // shorter than one attempt
	env := awskms.Sealer(newKMS(t, f, arn, kmsfake.Credentials{}, opts), nil)
	f.SetOutage(kmsfake.Stalled)
	start := time.Now()
	_, err := env.Seal(context.Background(), []byte("pkcs8"), []byte(pubMd5))
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("operation timeout: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about 300ms", d)
	}

	// The caller giving up is not an outage.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if !errors.Is(err, context.Canceled) || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("cancelled: %v", err)
	}
	f.SetOutage(kmsfake.Up)
}

// TestForeignAnswers covers answers the fake does not give: a load
// balancer's HTML 503 and a malformed success.
func TestForeignAnswers(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.Endpoint = srv.URL
	opts.Config = &aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIA", "secret", "")}
	k, err := awskms.New(context.Background(), "alias/x", opts)
	if err != nil {
		t.Fatal(err)
	}
	status, body = 503, "<html>Service Unavailable</html>"
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("HTML 503: %v", err)
	}
	status, body = 200, `{"CiphertextBlob":"AAAA","KeyId":"arn:aws:kms:us-east-1:1:key/x","Plaintext":"AAAAAAAAAAAAAAAAAAAAAA=="}`
	_, _, _, err = k.GenerateDataKey(context.Background(), nil)
	if !errors.Is(err, awskms.ErrBadResponse) || errors.Is(err, service.ErrUnavailable) {
		t.Errorf("16-byte data key: %v", err)
	}
	status, body = 400, `{"__type":"ValidationException","message":"bad"}`
	if _, err := k.Decrypt(context.Background(), []byte("x"), "", nil); !errors.Is(err, awskms.ErrRejected) {
		t.Errorf("validation error: %v", err)
	}
}
