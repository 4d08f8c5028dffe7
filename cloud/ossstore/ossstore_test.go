package ossstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/keystore/storetest"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// TestConformance runs the store contract through the OSS SDK against
// gofakes3 with the x-oss-forbid-overwrite shim (helpers_test.go). No OSS
// signature is checked: gofakes3 checks none.
func TestConformance(t *testing.T) {
	t.Parallel()
	endpoint, _ := fakeOSS(t, nil)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, endpoint, freshURL(testBucket), Options{})
	})
}

// TestShim checks the test server itself: a plain PUT overwrites, a PUT
// with x-oss-forbid-overwrite: true over an existing object gets OSS's 409
// FileAlreadyExists and changes nothing. Without the header the conformance
// run could not pass, so create-only really comes from the header.
func TestShim(t *testing.T) {
	t.Parallel()
	endpoint, _ := fakeOSS(t, nil)
	c := oss.NewClient(oss.NewConfig().WithRegion("cn-hangzhou").WithEndpoint(endpoint).WithCredentialsProvider(fakeCreds))
	ctx := context.Background()
	put := func(body, forbid string) error {
		req := &oss.PutObjectRequest{Bucket: oss.Ptr(testBucket), Key: oss.Ptr("plain/x"), Body: strings.NewReader(body)}
		if forbid != "" {
			req.ForbidOverwrite = oss.Ptr(forbid)
		}
		_, err := c.PutObject(ctx, req)
		return err
	}
	get := func() string {
		out, err := c.GetObject(ctx, &oss.GetObjectRequest{Bucket: oss.Ptr(testBucket), Key: oss.Ptr("plain/x")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(out.Body)
		return b.String()
	}
	if err := put("one", "true"); err != nil {
		t.Fatal(err)
	}
	if err := put("two", "false"); err != nil {
		t.Fatal(err)
	}
	if get() != "two" {
		t.Fatal("x-oss-forbid-overwrite: false did not overwrite")
	}
	err := put("three", "true")
	var se *oss.ServiceError
	if !errors.As(err, &se) || se.StatusCode != http.StatusConflict || se.Code != "FileAlreadyExists" || se.EC != "0026-00000201" {
		t.Fatalf("PUT with x-oss-forbid-overwrite: true over an object = %v; want 409 FileAlreadyExists", err)
	}
	if get() != "two" {
		t.Fatal("the refused PUT changed the object")
	}
	if err := put("four", "maybe"); !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("x-oss-forbid-overwrite: maybe = %v; want 400", err)
	}
}

// TestCreateHeaders checks what the PUT carries.
func TestCreateHeaders(t *testing.T) {
	t.Parallel()
	for _, kmsKeyID := range []string{"0e2fd9e1-ab12-cd34-ef56-1234567890ab", ""} {
		t.Run("key="+kmsKeyID, func(t *testing.T) {
			t.Parallel()
			var rec recorder
			endpoint, backend := fakeOSS(t, rec.wrap)
			u := freshURL(testBucket)
			s := open(t, endpoint, u, Options{KMSKeyID: kmsKeyID})
			defer s.Close()
			name := storetest.Name(1)
			data := []byte(`{"Version":1}`)
			if err := s.Create(context.Background(), name, data); err != nil {
				t.Fatal(err)
			}
			reqs := rec.all()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPut {
				t.Fatalf("requests = %+v; want one PUT", reqs)
			}
			r := reqs[0]
			key := strings.TrimPrefix(u.Path, "/") + "/" + name
			if want := "/" + testBucket + "/" + key; r.Path != want {
				t.Errorf("PUT path = %q; want %q", r.Path, want)
			}
			sum := md5.Sum(data)
			for h, v := range map[string]string{
				"X-Oss-Forbid-Overwrite":              "true",
				"X-Oss-Server-Side-Encryption":        "KMS",
				"X-Oss-Server-Side-Encryption-Key-Id": kmsKeyID,
				"Content-Type":                        "application/json",
				"Content-Md5":                         base64.StdEncoding.EncodeToString(sum[:]),
			} {
				if got := r.Header.Get(h); got != v {
					t.Errorf("%s: %q; want %q", h, got, v)
				}
			}
			if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "OSS4-HMAC-SHA256 Credential=LTAICSRFNTEST/") || !strings.Contains(a, "/cn-hangzhou/oss/aliyun_v4_request") {
				t.Errorf("Authorization = %q; want an OSS V4 signature for cn-hangzhou", a)
			}
			if keys := objects(t, backend); !slices.Equal(keys, []string{key}) {
				t.Errorf("stored %q; want %q", keys, key)
			}
		})
	}
}

// TestEnvCredentials: with no provider, requests are signed with the
// role credentials Function Compute puts in the environment, security
// token included; without them New fails naming the variables.
func TestEnvCredentials(t *testing.T) {
	// t.Setenv: not parallel.
	var rec recorder
	endpoint, _ := fakeOSS(t, rec.wrap)
	u := freshURL(testBucket)

	t.Setenv(EnvAccessKeyID, "")
	t.Setenv(EnvAccessKeySecret, "")
	t.Setenv(EnvSecurityToken, "")
	_, err := New(context.Background(), u, Options{Region: "cn-hangzhou", Endpoint: endpoint})
	if err == nil || !strings.Contains(err.Error(), EnvAccessKeyID) || !strings.Contains(err.Error(), EnvAccessKeySecret) {
		t.Fatalf("New without credentials = %v; want an error naming %s and %s", err, EnvAccessKeyID, EnvAccessKeySecret)
	}

	const id, secret, token = "STS.CSRFNTESTID", "csrfn-test-secret-value", "csrfn-test-security-token"
	t.Setenv(EnvAccessKeyID, id)
	t.Setenv(EnvAccessKeySecret, secret)
	t.Setenv(EnvSecurityToken, token)
	s, err := New(context.Background(), u, Options{Region: "cn-hangzhou", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(context.Background(), storetest.Name(1), []byte("x")); err != nil {
		t.Fatal(err)
	}
	r := rec.all()[0]
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "OSS4-HMAC-SHA256 Credential="+id+"/") || strings.Contains(a, secret) {
		t.Errorf("Authorization does not use %s (or quotes the secret)", EnvAccessKeyID)
	}
	if got := r.Header.Get("X-Oss-Security-Token"); got != token {
		t.Errorf("x-oss-security-token = %q; want %s's value", got, EnvSecurityToken)
	}
}

// TestDefaultEndpoint: without an endpoint the store uses the region's
// internal endpoint over HTTPS.
func TestDefaultEndpoint(t *testing.T) {
	t.Parallel()
	var got *url.URL
	hc := doFunc(func(r *http.Request) (*http.Response, error) {
		got = r.URL
		return nil, errors.New("no network in this test")
	})
	s, err := New(context.Background(), &url.URL{Scheme: "oss", Host: "mybucket", Path: "/keys"},
		Options{Region: "cn-shanghai", CredentialsProvider: fakeCreds, HTTPClient: hc, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.Load(context.Background(), storetest.Name(1))
	if got == nil || got.Scheme != "https" || got.Host != "mybucket.oss-cn-shanghai-internal.aliyuncs.com" || got.Path != "/keys/"+storetest.Name(1) {
		t.Fatalf("request URL = %v; want https://mybucket.oss-cn-shanghai-internal.aliyuncs.com/keys/%s", got, storetest.Name(1))
	}
}

type doFunc func(*http.Request) (*http.Response, error)

func (f doFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestRetryThenSucceed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kind fault
	}{
		{"503", fault503},
		{"500", fault500},
		{"dropped connection", faultDrop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &faulty{kind: tc.kind, n: 2}
			endpoint, _ := fakeOSS(t, func(h http.Handler) http.Handler { f.next = h; return f })
			s := open(t, endpoint, freshURL(testBucket), Options{MaxAttempts: 4, MaxBackoff: 20 * time.Millisecond})
			defer s.Close()
			ctx := context.Background()
			name := storetest.Name(1)
			data := []byte(`{"Version":1,"retried":true}`)
			if err := s.Create(ctx, name, data); err != nil {
				t.Fatalf("Create through 2 failures: %v", err)
			}
			if got := f.count(); got != 3 {
				t.Errorf("server saw %d requests; want 3", got)
			}
			f.reset(tc.kind, 2)
			if got, err := s.Load(ctx, name); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Load through 2 failures = %q, %v", got, err)
			}
			f.reset(tc.kind, 2)
			if names, err := s.List(ctx); err != nil || !slices.Equal(names, []string{name}) {
				t.Fatalf("List through 2 failures = %q, %v", names, err)
			}
		})
	}
}

// TestRetryAfterAppliedPut: see s3store's test of the same name; here the
// retry meets FileAlreadyExists.
func TestRetryAfterAppliedPut(t *testing.T) {
	t.Parallel()
	f := &faulty{kind: faultDropAfter, n: 1, match: isPut}
	var rec recorder
	endpoint, _ := fakeOSS(t, func(h http.Handler) http.Handler { f.next = h; return rec.wrap(f) })
	s := open(t, endpoint, freshURL(testBucket), Options{MaxBackoff: 20 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	name := storetest.Name(1)
	data := []byte(`{"Version":1,"RequestId":"A"}`)
	if err := s.Create(ctx, name, data); err != nil {
		t.Fatalf("Create whose first answer was lost: %v", err)
	}
	var methods []string
	for _, r := range rec.all() {
		methods = append(methods, r.Method)
	}
	if !slices.Equal(methods, []string{"PUT", "PUT", "GET"}) {
		t.Errorf("requests %q; want PUT (lost answer), PUT (409), GET (the check)", methods)
	}
	if got, err := s.Load(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load = %q, %v", got, err)
	}

	// A retried PUT whose 409 is a real conflict.
	name2 := storetest.Name(2)
	other := []byte(`{"Version":1,"RequestId":"B"}`)
	if err := s.Create(ctx, name2, other); err != nil {
		t.Fatal(err)
	}
	f.reset(faultDrop, 1)
	if err := s.Create(ctx, name2, data); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("retried Create over another writer's record = %v; want fs.ErrExist", err)
	}
	if got, _ := s.Load(ctx, name2); !bytes.Equal(got, other) {
		t.Fatalf("the other writer's record changed: %q", got)
	}
}

func TestAlwaysFailing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kind fault
	}{
		{"503", fault503},
		{"500", fault500},
		{"dropped connection", faultDrop},
		{"no answer", faultHang},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &faulty{kind: tc.kind, n: -1}
			endpoint, backend := fakeOSS(t, func(h http.Handler) http.Handler { f.next = h; return f })
			opts := Options{
				MaxAttempts:    3,
				MaxBackoff:     50 * time.Millisecond,
				AttemptTimeout: 300 * time.Millisecond,
				CallTimeout:    2 * time.Second,
			}
			s := open(t, endpoint, freshURL(testBucket), opts)
			defer s.Close()
			start := time.Now()
			err := s.Create(context.Background(), storetest.Name(1), []byte(`{"Version":1}`))
			elapsed := time.Since(start)
			if !errors.Is(err, service.ErrUnavailable) || errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create = %v; want an error wrapping service.ErrUnavailable (not fs.ErrExist)", err)
			}
			if elapsed > opts.CallTimeout+time.Second {
				t.Errorf("Create took %v; want at most the call timeout %v (+1s)", elapsed, opts.CallTimeout)
			}
			if got := f.count(); got != opts.MaxAttempts {
				t.Errorf("server saw %d requests; want MaxAttempts = %d", got, opts.MaxAttempts)
			}
			if keys := objects(t, backend); len(keys) != 0 {
				t.Errorf("objects stored: %q; want none", keys)
			}
			if _, err := s.Load(context.Background(), storetest.Name(1)); !errors.Is(err, service.ErrUnavailable) {
				t.Errorf("Load = %v; want service.ErrUnavailable", err)
			}
			if _, err := s.List(context.Background()); !errors.Is(err, service.ErrUnavailable) {
				t.Errorf("List = %v; want service.ErrUnavailable", err)
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	t.Parallel()
	f := &faulty{kind: faultHang, n: -1}
	endpoint, _ := fakeOSS(t, func(h http.Handler) http.Handler { f.next = h; return f })
	opts := Options{MaxAttempts: 10, AttemptTimeout: time.Minute, CallTimeout: 500 * time.Millisecond}
	s := open(t, endpoint, freshURL(testBucket), opts)
	defer s.Close()
	start := time.Now()
	err := s.Create(context.Background(), storetest.Name(1), []byte("x"))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Create took %v; want about the call timeout %v", d, opts.CallTimeout)
	}
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("Create = %v; want service.ErrUnavailable", err)
	}
}

// TestServiceUnavailableStore: the real service on an always-failing OSS
// store answers Internal.Error, returns no CSR and stores nothing.
func TestServiceUnavailableStore(t *testing.T) {
	t.Parallel()
	f := &faulty{kind: fault503, n: -1}
	endpoint, backend := fakeOSS(t, func(h http.Handler) http.Handler { f.next = h; return f })
	store := open(t, endpoint, freshURL(testBucket), Options{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	defer store.Close()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: store, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	req, err := request.Parse(params.Set{"CommonName": "example.com", "KeyAlgorithm": string(keys.ECP256)}, request.SeedDefaults)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := svc.Create(context.Background(), service.NewRequestID(), req)
	if resp != nil {
		t.Fatalf("service answered %+v; want no CSR", resp)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.CodeInternal || ae.Status != http.StatusInternalServerError || ae.Message != apierr.MsgInternal {
		t.Fatalf("service error = %v; want Internal.Error (500)", err)
	}
	if !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("cause = %v; want it to wrap service.ErrUnavailable", err)
	}
	if keys := objects(t, backend); len(keys) != 0 {
		t.Errorf("objects stored: %q; want none", keys)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, bucket, prefix string }{
		{"oss://b", "b", ""},
		{"oss://b/p", "b", "p/"},
		{"oss://b/p/q/", "b", "p/q/"},
	} {
		u, _ := url.Parse(tc.in)
		b, p, err := ParseURL(u)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%s) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
	for _, in := range []string{"oss:///p", "s3://b/p", "oss://LTAIKEY:SECRETVALUE@b/p", "oss://b/p#f", "oss://b/../c"} {
		u, _ := url.Parse(in)
		if _, _, err := ParseURL(u); err == nil {
			t.Errorf("ParseURL(%s) succeeded; want an error", in)
		} else if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("ParseURL error quotes the credentials: %v", err)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvFCRegion: "cn-beijing", EnvKMSKeyID: "key-1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := OptionsFromEnv(lookup)
	if err != nil || o.Region != "cn-beijing" || o.KMSKeyID != "key-1" || o.Endpoint != "" {
		t.Fatalf("OptionsFromEnv = %+v, %v", o, err)
	}
	env[EnvRegion] = "cn-hangzhou"
	env[EnvEndpoint] = "oss-cn-hangzhou.aliyuncs.com"
	if o, err := OptionsFromEnv(lookup); err != nil || o.Region != "cn-hangzhou" || o.Endpoint != "oss-cn-hangzhou.aliyuncs.com" {
		t.Fatalf("OptionsFromEnv = %+v, %v", o, err)
	}
	for k, v := range map[string]string{EnvEndpoint: "ftp://x", EnvRegion: ""} {
		bad := map[string]string{k: v}
		_, err := OptionsFromEnv(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
		if err == nil || !strings.HasPrefix(err.Error(), k+":") && !strings.HasPrefix(err.Error(), EnvRegion+":") {
			t.Errorf("%s=%q: error %v; want one naming the variable", k, v, err)
		}
	}
}
