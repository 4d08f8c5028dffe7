package alikms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/csrfn/csrfn/cloud/alikms"
	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/cloud/internal/kmsbase"
	"github.com/csrfn/csrfn/cloud/internal/kmstest"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/kmsfake"
)

// options are the adapter's options with the retry policy p.
func options(p kmsbase.Policy) alikms.Options {
	return alikms.Options{MaxAttempts: p.MaxAttempts, BaseDelay: p.BaseDelay, MaxBackoff: p.MaxBackoff,
		AttemptTimeout: p.AttemptTimeout, Timeout: p.Timeout}
}

func fastOptions() alikms.Options { return options(kmstest.Fast) }

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

// backend is the adapter on kmsfake.Ali, for kmstest.
var backend = kmstest.Backend{
	Scheme:  alikms.Scheme,
	NewFake: func(t *testing.T) kmstest.Fake { return kmsfake.NewAli(t) },
	Sealer: func(t *testing.T, f kmstest.Fake, keyID string, creds kmsfake.Credentials, p kmsbase.Policy) *seal.Envelope {
		var provider alikms.CredentialsProvider
		if creds != (kmsfake.Credentials{}) {
			provider = static(creds)
		}
		return alikms.Sealer(newKMS(t, f.(*kmsfake.Ali), keyID, provider, options(p)), nil)
	},
	// The key's id and its alias.
	KeyIDs:   func(id string) []string { return []string{id, "alias/csrfn"} },
	Refusals: refusals,
}

// refusals are Alibaba Cloud KMS's answers to a key it does not find or
// may not use, and to requests it does not authenticate.
func refusals(kf kmstest.Fake, id string) []kmstest.Refusal {
	f := kf.(*kmsfake.Ali)
	wrongSecret := f.Credentials()
	wrongSecret.AccessKeySecret += "x"
	unknown := f.Credentials()
	unknown.AccessKeyID = "LTAIunknown"
	state := func(s kmsfake.KeyState) func() { return func() { f.SetKeyState(id, s) } }
	deny := func(d bool) func() { return func() { f.DenyAccess(id, d) } }
	return []kmstest.Refusal{
		{Name: "unknown key", KeyID: "00000000-0000-4000-8000-000000000000", Want: alikms.ErrKeyNotFound, Status: 404, Code: "Forbidden.KeyNotFound"},
		{Name: "unknown alias", KeyID: "alias/missing", Want: alikms.ErrKeyNotFound, Status: 404, Code: "Forbidden.AliasNotFound"},
		{Name: "disabled", KeyID: id, Setup: state(kmsfake.Disabled), Undo: state(kmsfake.Enabled),
			Want: alikms.ErrKeyState, Status: 409, Code: "Rejected.Disabled"},
		{Name: "pending deletion", KeyID: id, Setup: state(kmsfake.PendingDeletion), Undo: state(kmsfake.Enabled),
			Want: alikms.ErrKeyState, Status: 409, Code: "Rejected.PendingDeletion"},
		{Name: "no permission", KeyID: id, Setup: deny(true), Undo: deny(false), Want: alikms.ErrAccessDenied, Status: 403, Code: "Forbidden.NoPermission"},
		{Name: "wrong secret", KeyID: id, Creds: wrongSecret, Want: alikms.ErrAccessDenied, Status: 400, Code: "SignatureDoesNotMatch"},
		{Name: "unknown AccessKey", KeyID: id, Creds: unknown, Want: alikms.ErrAccessDenied, Status: 404, Code: "InvalidAccessKeyId.NotFound"},
	}
}

// TestAdapter runs the tests every adapter passes (kmstest.Run): round
// trips, tampering, refusals, outages, timeouts, and the service on top.
func TestAdapter(t *testing.T) { kmstest.Run(t, backend) }

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
	sk, err := sealer.Seal(ctx, []byte("pkcs8"), []byte(kmstest.PubMd5))
	if err != nil {
		t.Fatal(err)
	}

	f.ExpireCredentials(env.AccessKeyID)
	_, err = sealer.Open(ctx, sk, []byte(kmstest.PubMd5))
	var ke *alikms.Error
	if !errors.Is(err, alikms.ErrAccessDenied) || !errors.As(err, &ke) || ke.Code != "InvalidSecurityToken.Expired" {
		t.Fatalf("expired STS token: %v", err)
	}
	fresh := f.NewCredentials(true)
	ictx := alikms.WithCredentials(ctx, alikms.Credentials{AccessKeyID: fresh.AccessKeyID, AccessKeySecret: fresh.AccessKeySecret, SecurityToken: fresh.SessionToken})
	if got, err := sealer.Open(ictx, sk, []byte(kmstest.PubMd5)); err != nil || string(got) != "pkcs8" {
		t.Fatalf("with the invocation's credentials: %q, %v", got, err)
	}

	t.Setenv(alikms.EnvAccessKeyID, "")
	_, err = sealer.Seal(ctx, []byte("pkcs8"), []byte(kmstest.PubMd5))
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

	local, err := seal.NewLocal(kmstest.RandomBytes(seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ring := seal.Keyring{seal.SchemeLocal: local, awskms.Scheme: awsEnv, alikms.Scheme: aliEnv}
	ctx := context.Background()
	var sealed []seal.SealedKey
	for i, s := range []seal.Sealer{local, awsEnv, aliEnv} {
		sk, err := s.Seal(ctx, []byte(fmt.Sprint("key ", i)), []byte(kmstest.PubMd5))
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, sk)
	}
	for i, sk := range sealed {
		got, err := ring.Open(ctx, sk, []byte(kmstest.PubMd5))
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
	if _, err := ring.Open(ctx, bad, []byte(kmstest.PubMd5)); err == nil {
		t.Fatal("an Alibaba record opened as an AWS one")
	}
}

// TestForeignAnswers covers answers the fake does not give: a load
// balancer's HTML 503, a malformed success, an unexpected client error.
func TestForeignAnswers(t *testing.T) {
	srv := kmstest.NewCanned(t)
	opts := fastOptions()
	opts.Endpoint = srv.URL
	opts.RegionID = "cn-hangzhou"
	opts.Credentials = alikms.StaticCredentials(alikms.Credentials{AccessKeyID: "LTAI", AccessKeySecret: "secret"})
	k, err := alikms.New(context.Background(), "alias/x", opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Answer(503, "text/html", "<html>Service Unavailable</html>")
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("HTML 503: %v", err)
	}
	srv.Answer(200, "application/json", `{"CiphertextBlob":"AAAA","KeyId":"k","Plaintext":"AAAAAAAAAAAAAAAAAAAAAA==","RequestId":"R"}`)
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, alikms.ErrBadResponse) || errors.Is(err, service.ErrUnavailable) {
		t.Errorf("16-byte data key: %v", err)
	}
	srv.Answer(400, "application/json", `{"Code":"InvalidParameter","Message":"bad","RequestId":"R"}`)
	if _, _, _, err := k.GenerateDataKey(context.Background(), nil); !errors.Is(err, alikms.ErrRejected) {
		t.Errorf("InvalidParameter on GenerateDataKey: %v", err)
	}
	if _, err := k.Decrypt(context.Background(), []byte("x"), "", nil); !errors.Is(err, alikms.ErrInvalidCiphertext) {
		t.Errorf("InvalidParameter on Decrypt: %v", err)
	}
}
