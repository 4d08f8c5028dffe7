package alikms_test

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

	"github.com/csrfn/csrfn/cloud/alikms"
	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

const pubMd5 = "629bf4fd8104eda171135bcb0f77a10b"

func fastOptions() alikms.Options {
	return alikms.Options{
		MaxAttempts:    3,
		BaseDelay:      time.Millisecond,
		MaxBackoff:     5 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
		Timeout:        5 * time.Second,
	}
}

func static(c kmsfake.Credentials) alikms.CredentialsProvider {
	return alikms.StaticCredentials(alikms.Credentials{AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SessionToken})
}

// newKMS returns the adapter for keyID on f through the real SDK client,
// signing with creds (f's own long-term AccessKey when nil).
func newKMS(t *testing.T, f *kmsfake.Ali, keyID string, creds alikms.CredentialsProvider, opts alikms.Options) *alikms.KMS {
	t.Helper()
	if creds == nil {
		creds = static(f.Credentials())
	}
	opts.Credentials = creds
	opts.Endpoint = f.URL()
	opts.RegionID = f.RegionID()
	k, err := alikms.New(context.Background(), keyID, opts)
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

func noLeak(t *testing.T, f *kmsfake.Ali, text string, extra ...[]byte) {
	t.Helper()
	if i, ok := kmsfake.LeakedSecret(text, append(f.IssuedDataKeys(), extra...)...); ok {
		t.Fatalf("secret #%d leaked into %q", i, text)
	}
}

func TestRoundTrip(t *testing.T) {
	f := kmsfake.NewAli(t)
	id := f.CreateKey("csrfn")
	for _, keyID := range []string{id, "alias/csrfn"} {
		t.Run(keyID, func(t *testing.T) {
			env := alikms.Sealer(newKMS(t, f, keyID, nil, fastOptions()), nil)
			secret := randomBytes(1200)
			sk, err := env.Seal(context.Background(), secret, []byte(pubMd5))
			if err != nil {
				t.Fatal(err)
			}
			if sk.Scheme != alikms.Scheme || sk.KeyID != id || len(sk.WrappedKey) == 0 || len(sk.Nonce) != 12 {
				t.Fatalf("sealed key %+v", sk)
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
	if g, d := f.Calls("GenerateDataKey"), f.Calls("Decrypt"); g != 2 || d != 2 {
		t.Errorf("calls: GenerateDataKey %d, Decrypt %d; want 2 and 2", g, d)
	}
}

// TestFunctionComputeCredentials runs as on FC: region and STS credentials
// from the environment, then fresh per-invocation credentials through the
// context once the environment's have expired.
func TestFunctionComputeCredentials(t *testing.T) {
	f := kmsfake.NewAli(t)
	id := f.CreateKey("")
	env := f.NewCredentials(true)
	t.Setenv(alikms.EnvAccessKeyID, env.AccessKeyID)
	t.Setenv(alikms.EnvAccessKeySecret, env.AccessKeySecret)
	t.Setenv(alikms.EnvSecurityToken, env.SessionToken)
	t.Setenv(alikms.EnvRegionID, "")
	t.Setenv(alikms.EnvFCRegion, f.RegionID())
	opts := fastOptions()
	opts.Endpoint = f.URL()
	k, err := alikms.New(context.Background(), id, opts)
	if err != nil {
		t.Fatal(err)
	}
	sealer := alikms.Sealer(k, nil)
	ctx := context.Background()
	sk, err := sealer.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}

	f.ExpireCredentials(env.AccessKeyID)
	_, err = sealer.Open(ctx, sk, []byte(pubMd5))
	var ke *alikms.Error
	if !errors.Is(err, alikms.ErrAccessDenied) || !errors.As(err, &ke) || ke.Code != "InvalidSecurityToken.Expired" {
		t.Fatalf("expired STS token: %v", err)
	}
	fresh := f.NewCredentials(true)
	ictx := alikms.WithCredentials(ctx, alikms.Credentials{AccessKeyID: fresh.AccessKeyID, AccessKeySecret: fresh.AccessKeySecret, SecurityToken: fresh.SessionToken})
	if got, err := sealer.Open(ictx, sk, []byte(pubMd5)); err != nil || string(got) != "pkcs8" {
		t.Fatalf("with the invocation's credentials: %q, %v", got, err)
	}

	t.Setenv(alikms.EnvAccessKeyID, "")
	_, err = sealer.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if !errors.Is(err, alikms.ErrCredentials) || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("no credentials: %v", err)
	}
	if s := fmt.Sprint(alikms.Credentials{AccessKeyID: "id", AccessKeySecret: "topsecret", SecurityToken: "tok"}); strings.Contains(s, "topsecret") || strings.Contains(s, "tok}") {
		t.Errorf("Credentials print their secret: %s", s)
	}
}

func TestEndpoints(t *testing.T) {
	t.Setenv(alikms.EnvRegionID, "")
	t.Setenv(alikms.EnvFCRegion, "")
	for _, c := range []struct {
		opts alikms.Options
		want string
	}{
		{alikms.Options{RegionID: "cn-shanghai"}, "kms.cn-shanghai.aliyuncs.com"},
		{alikms.Options{RegionID: "cn-shanghai", Endpoint: alikms.VPCEndpoint("cn-shanghai")}, "kms-vpc.cn-shanghai.aliyuncs.com"},
		{alikms.Options{Endpoint: "https://kms.example.test:8443"}, "kms.example.test:8443"},
	} {
		k, err := alikms.New(context.Background(), "alias/x", c.opts)
		if err != nil || k.Endpoint() != c.want {
			t.Errorf("%+v: %v %v, want %s", c.opts, k, err, c.want)
		}
	}
	for _, opts := range []alikms.Options{{}, {Endpoint: "ftp://x"}, {Endpoint: "host/path"}} {
		if _, err := alikms.New(context.Background(), "alias/x", opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
	if _, err := alikms.New(context.Background(), "", alikms.Options{RegionID: "cn-shanghai"}); err == nil {
		t.Error("empty key id accepted")
	}
}

// TestKeyringAllSchemes opens records sealed by the local master key, AWS
// KMS and Alibaba KMS with one Keyring, each by its Scheme.
func TestKeyringAllSchemes(t *testing.T) {
	ali := kmsfake.NewAli(t)
	aliEnv := alikms.Sealer(newKMS(t, ali, ali.CreateKey(""), nil, fastOptions()), nil)

	aw := kmsfake.NewAWS(t)
	c := aw.Credentials()
	awsK, err := awskms.New(context.Background(), aw.CreateKey(""), awskms.Options{
		Endpoint: aw.URL(),
		Config:   &aws.Config{Region: aw.Region(), Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	awsEnv := awskms.Sealer(awsK, nil)

	local, err := seal.NewLocal(randomBytes(seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: local, awskms.Scheme: awsEnv, alikms.Scheme: aliEnv}
	ctx := context.Background()
	var sealed []seal.SealedKey
	for i, s := range []seal.Sealer{local, awsEnv, aliEnv} {
		sk, err := s.Seal(ctx, []byte(fmt.Sprint("key ", i)), []byte(pubMd5))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, sk)
	}
	for i, sk := range sealed {
		got, err := ring.Open(ctx, sk, []byte(pubMd5))
		if err != nil || string(got) != fmt.Sprint("key ", i) {
			t.Fatalf("%s: %q, %v", sk.Scheme, got, err)
		}
	}
	if d := ali.Calls("Decrypt"); d != 1 {
		t.Errorf("Alibaba Decrypt calls %d, want 1", d)
	}
	// A record relabelled with the other KMS's scheme is refused.
	bad := sealed[2]
	bad.Scheme = awskms.Scheme
	if _, err := ring.Open(ctx, bad, []byte(pubMd5)); err == nil {
		t.Fatal("an Alibaba record opened as an AWS one")
	}
}

func TestTamperingAndWrongContext(t *testing.T) {
	f := kmsfake.NewAli(t)
	env := alikms.Sealer(newKMS(t, f, f.CreateKey(""), nil, fastOptions()), nil)
	secret := randomBytes(100)
	ctx := context.Background()
	sk, err := env.Seal(ctx, secret, []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) || errors.Is(err, service.ErrUnavailable) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		if err != nil {
			noLeak(t, f, err.Error(), secret)
		}
	}
	for _, i := range []int{0, 20, 36, 40, len(sk.WrappedKey) - 17, len(sk.WrappedKey) - 1} {
		bad := sk
		bad.WrappedKey = bytes.Clone(sk.WrappedKey)
		bad.WrappedKey[i] ^= 0x01
		_, err := env.Open(ctx, bad, []byte(pubMd5))
		check(fmt.Sprintf("wrapped key byte %d", i), err, alikms.ErrInvalidCiphertext)
	}
	bad := sk
	bad.Ciphertext = bytes.Clone(sk.Ciphertext)
	bad.Ciphertext[7] ^= 0x40
	_, err = env.Open(ctx, bad, []byte(pubMd5))
	check("ciphertext", err, seal.ErrAuth)

	_, err = env.Open(ctx, sk, []byte("00000000000000000000000000000000"))
	check("another PubMd5", err, alikms.ErrInvalidCiphertext)

	bad = sk
	bad.KeyID = f.CreateKey("")
	_, err = env.Open(ctx, bad, []byte(pubMd5))
	check("another key id", err, alikms.ErrIncorrectKey)

	if got, err := env.Open(ctx, sk, []byte(pubMd5)); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the untouched record no longer opens: %v", err)
	}
}

func TestKeyRefusals(t *testing.T) {
	f := kmsfake.NewAli(t)
	id := f.CreateKey("")
	ctx := context.Background()
	wrongSecret := f.Credentials()
	wrongSecret.AccessKeySecret += "x"
	unknown := f.Credentials()
	unknown.AccessKeyID = "LTAIunknown"
	state := func(s kmsfake.KeyState) func() { return func() { f.SetKeyState(id, s) } }
	deny := func(d bool) func() { return func() { f.DenyAccess(id, d) } }
	cases := []struct {
		name        string
		keyID       string
		creds       alikms.CredentialsProvider
		setup, undo func()
		want        error
		status      int
		code        string
	}{
		{"unknown key", "00000000-0000-4000-8000-000000000000", nil, nil, nil, alikms.ErrKeyNotFound, 404, "Forbidden.KeyNotFound"},
		{"unknown alias", "alias/missing", nil, nil, nil, alikms.ErrKeyNotFound, 404, "Forbidden.AliasNotFound"},
		{"disabled", id, nil, state(kmsfake.Disabled), state(kmsfake.Enabled), alikms.ErrKeyState, 409, "Rejected.Disabled"},
		{"pending deletion", id, nil, state(kmsfake.PendingDeletion), state(kmsfake.Enabled), alikms.ErrKeyState, 409, "Rejected.PendingDeletion"},
		{"no permission", id, nil, deny(true), deny(false), alikms.ErrAccessDenied, 403, "Forbidden.NoPermission"},
		{"wrong secret", id, static(wrongSecret), nil, nil, alikms.ErrAccessDenied, 400, "SignatureDoesNotMatch"},
		{"unknown AccessKey", id, static(unknown), nil, nil, alikms.ErrAccessDenied, 404, "InvalidAccessKeyId.NotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
				defer c.undo()
			}
			before := f.Calls("GenerateDataKey")
			env := alikms.Sealer(newKMS(t, f, c.keyID, c.creds, fastOptions()), nil)
			_, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
			if !errors.Is(err, c.want) || errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			var ke *alikms.Error
			if !errors.As(err, &ke) || ke.Code != c.code || ke.Status != c.status || ke.Op != "GenerateDataKey" || ke.RequestID == "" {
				t.Fatalf("error %#v, want %d %s", ke, c.status, c.code)
			}
			if n := f.Calls("GenerateDataKey") - before; n != 1 {
				t.Errorf("%d requests; a refusal must not be retried", n)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	f := kmsfake.NewAli(t)
	opts := fastOptions()
	opts.AttemptTimeout = 200 * time.Millisecond
	env := alikms.Sealer(newKMS(t, f, f.CreateKey(""), nil, opts), nil)
	ctx := context.Background()
	sk, err := env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		outage   kmsfake.Outage
		attempts int
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
	f := kmsfake.NewAli(t)
	opts := fastOptions()
	opts.Timeout = 300 * time.Millisecond
	env := alikms.Sealer(newKMS(t, f, f.CreateKey(""), nil, opts), nil)
	f.SetOutage(kmsfake.Stalled)
	defer f.SetOutage(kmsfake.Up)
	start := time.Now()
	_, err := env.Seal(context.Background(), []byte("pkcs8"), []byte(pubMd5))
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("operation timeout: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about 300ms", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = env.Seal(ctx, []byte("pkcs8"), []byte(pubMd5))
	if !errors.Is(err, context.Canceled) || errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestForeignAnswers covers answers the fake does not give: a load
// balancer's HTML 503, a malformed success, an unexpected client error.
func TestForeignAnswers(t *testing.T) {
	var status int
	var body, contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.Endpoint = srv.URL
	opts.RegionID = "cn-hangzhou"
	opts.Credentials = alikms.StaticCredentials(alikms.Credentials{AccessKeyID: "LTAI", AccessKeySecret: "secret"})
	k, err := alikms.New(context.Background(), "alias/x", opts)
	if err != nil {
		t.Fatal(err)
	}
	status, body, contentType = 503, "<html>Service Unavailable</html>", "text/html"
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("HTML 503: %v", err)
	}
	status, body, contentType = 200, `{"CiphertextBlob":"AAAA","KeyId":"k","Plaintext":"AAAAAAAAAAAAAAAAAAAAAA==","RequestId":"R"}`, "application/json"
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, alikms.ErrBadResponse) || errors.Is(err, service.ErrUnavailable) {
		t.Errorf("16-byte data key: %v", err)
	}
	status, body = 400, `{"Code":"InvalidParameter","Message":"bad","RequestId":"R"}`
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, alikms.ErrRejected) {
		t.Errorf("InvalidParameter on GenerateDataKey: %v", err)
	}
	if _, err := k.Decrypt(context.Background(), []byte("x"), "", nil); !errors.Is(err, alikms.ErrInvalidCiphertext) {
		t.Errorf("InvalidParameter on Decrypt: %v", err)
	}
}
