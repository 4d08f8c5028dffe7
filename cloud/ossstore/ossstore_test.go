package ossstore

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"

	"github.com/csrfn/csrfn/cloud/internal/objstore/objstoretest"
	"github.com/csrfn/csrfn/core/keystore/storetest"
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
		return objstoretest.ReadAll(t, out.Body)
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
			var rec objstoretest.Recorder
			endpoint, backend := fakeOSS(t, rec.Wrap)
			u := freshURL(testBucket)
			s := open(t, endpoint, u, Options{KMSKeyID: kmsKeyID})
			defer s.Close()
			name := storetest.Name(1)
			data := []byte(`{"Version":1}`)
			if err := s.Create(context.Background(), name, data); err != nil {
				t.Fatal(err)
			}
			reqs := rec.All()
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
			if keys := objstoretest.Objects(t, backend); !slices.Equal(keys, []string{key}) {
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
	var rec objstoretest.Recorder
	endpoint, _ := fakeOSS(t, rec.Wrap)
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
	r := rec.All()[0]
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

// TestObjstoreRules runs objstore's rules through the OSS SDK: retries
// through failures, the create retried after its answer was lost (here
// the retry meets FileAlreadyExists), a server that keeps failing, the call
// timeout and the service on such a store.
func TestObjstoreRules(t *testing.T) {
	t.Parallel()
	objstoretest.Run(t, fake)
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
