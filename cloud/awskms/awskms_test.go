package awskms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/cloud/internal/kmsbase"
	"github.com/csrfn/csrfn/cloud/internal/kmstest"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

// options are the adapter's options with the retry policy p.
func options(p kmsbase.Policy) awskms.Options {
	return awskms.Options{MaxAttempts: p.MaxAttempts, BaseDelay: p.BaseDelay, MaxBackoff: p.MaxBackoff,
		AttemptTimeout: p.AttemptTimeout, Timeout: p.Timeout}
}

// fastOptions keep retries and timeouts short for tests.
func fastOptions() awskms.Options { return options(kmstest.Fast) }

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

// backend is the adapter on kmsfake.AWS, for kmstest.
var backend = kmstest.Backend{
	Scheme:  awskms.Scheme,
	NewFake: func(t *testing.T) kmstest.Fake { return kmsfake.NewAWS(t) },
	Sealer: func(t *testing.T, f kmstest.Fake, keyID string, creds kmsfake.Credentials, p kmsbase.Policy) *seal.Envelope {
		return awskms.Sealer(newKMS(t, f.(*kmsfake.AWS), keyID, creds, options(p)), nil)
	},
	// The key's ARN, its alias and its bare id.
	KeyIDs: func(arn string) []string {
		return []string{arn, "alias/csrfn", strings.TrimPrefix(arn[strings.LastIndex(arn, "/"):], "/")}
	},
	Refusals: refusals,
}

// refusals are AWS KMS's answers (all 400) to a key it does not find or
// may not use, and to requests it does not authenticate.
func refusals(kf kmstest.Fake, arn string) []kmstest.Refusal {
	f := kf.(*kmsfake.AWS)
	wrongSecret := f.Credentials()
	wrongSecret.AccessKeySecret = strings.Repeat("x", 40)
	unknownKey := f.Credentials()
	unknownKey.AccessKeyID = "AKIAUNKNOWN000000000"
	noToken := f.NewCredentials(true)
	noToken.SessionToken = ""
	state := func(s kmsfake.KeyState) func() { return func() { f.SetKeyState(arn, s) } }
	deny := func(d bool) func() { return func() { f.DenyAccess(arn, d) } }
	return []kmstest.Refusal{
		{Name: "unknown alias", KeyID: "alias/missing", Want: awskms.ErrKeyNotFound, Status: 400, Code: "NotFoundException"},
		{Name: "unknown key", KeyID: "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000",
			Want: awskms.ErrKeyNotFound, Status: 400, Code: "NotFoundException"},
		{Name: "disabled", KeyID: arn, Setup: state(kmsfake.Disabled), Undo: state(kmsfake.Enabled),
			Want: awskms.ErrKeyState, Status: 400, Code: "DisabledException"},
		{Name: "pending deletion", KeyID: arn, Setup: state(kmsfake.PendingDeletion), Undo: state(kmsfake.Enabled),
			Want: awskms.ErrKeyState, Status: 400, Code: "KMSInvalidStateException"},
		{Name: "access denied", KeyID: arn, Setup: deny(true), Undo: deny(false), Want: awskms.ErrAccessDenied, Status: 400, Code: "AccessDeniedException"},
		{Name: "wrong secret", KeyID: arn, Creds: wrongSecret, Want: awskms.ErrAccessDenied, Status: 400, Code: "InvalidSignatureException"},
		{Name: "unknown access key", KeyID: arn, Creds: unknownKey, Want: awskms.ErrAccessDenied, Status: 400, Code: "UnrecognizedClientException"},
		{Name: "missing session token", KeyID: arn, Creds: noToken, Want: awskms.ErrAccessDenied, Status: 400, Code: "UnrecognizedClientException"},
	}
}

// TestAdapter runs the tests every adapter passes (kmstest.Run): round
// trips, tampering, refusals, outages, timeouts, and the service on top.
func TestAdapter(t *testing.T) { kmstest.Run(t, backend) }

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
	sk, err := env.Seal(context.Background(), []byte("k"), []byte(kmstest.PubMd5))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Open(context.Background(), sk, []byte(kmstest.PubMd5)); err != nil {
		t.Fatal(err)
	}

	f.ExpireCredentials(c.AccessKeyID)
	_, err = env.Seal(context.Background(), []byte("k"), []byte(kmstest.PubMd5))
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
	local, err := seal.NewLocal(kmstest.RandomBytes(seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: local, awskms.Scheme: env}
	for _, s := range []seal.Sealer{local, env} {
		sk, err := s.Seal(context.Background(), []byte("pkcs8"), []byte(kmstest.PubMd5))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ring.Open(context.Background(), sk, []byte(kmstest.PubMd5))
		if err != nil || string(got) != "pkcs8" {
			t.Fatalf("%s: %q, %v", sk.Scheme, got, err)
		}
	}
	sk, _ := env.Seal(context.Background(), []byte("pkcs8"), []byte(kmstest.PubMd5))
	sk.Scheme = "gcp-kms-envelope"
	if _, err := ring.Open(context.Background(), sk, []byte(kmstest.PubMd5)); !errors.Is(err, seal.ErrUnknownScheme) {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// TestForeignAnswers covers answers the fake does not give: a load
// balancer's HTML 503 and a malformed success.
func TestForeignAnswers(t *testing.T) {
	srv := kmstest.NewCanned(t)
	opts := fastOptions()
	opts.Endpoint = srv.URL
	opts.Config = &aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIA", "secret", "")}
	k, err := awskms.New(context.Background(), "alias/x", opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Answer(503, "text/html", "<html>Service Unavailable</html>")
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("HTML 503: %v", err)
	}
	srv.Answer(200, "text/html", `{"CiphertextBlob":"AAAA","KeyId":"arn:aws:kms:us-east-1:1:key/x","Plaintext":"AAAAAAAAAAAAAAAAAAAAAA=="}`)
	_, _, _, err = k.GenerateDataKey(context.Background(), nil)
	if !errors.Is(err, awskms.ErrBadResponse) || errors.Is(err, service.ErrUnavailable) {
		t.Errorf("16-byte data key: %v", err)
	}
	srv.Answer(400, "text/html", `{"__type":"ValidationException","message":"bad"}`)
	if _, err := k.Decrypt(context.Background(), []byte("x"), "", nil); !errors.Is(err, awskms.ErrRejected) {
		t.Errorf("validation error: %v", err)
	}
}
