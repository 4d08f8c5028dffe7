package s3store

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/csrfn/csrfn/cloud/internal/objstore/objstoretest"
	"github.com/csrfn/csrfn/core/keystore/storetest"
	"github.com/csrfn/csrfn/core/service"
)

// TestConformanceFake runs the store contract against gofakes3, which
// implements If-None-Match: * atomically (since v1.2.0) but checks no
// signatures; versitygw (versity_test.go) is the server that does.
func TestConformanceFake(t *testing.T) {
	t.Parallel()
	endpoint, _ := fakeS3(t, nil)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, endpoint, fakeCreds, freshURL(testBucket), Options{})
	})
}

// TestCreateHeaders checks what the PUT carries: the create-only condition,
// SSE-KMS with the key and bucket key, the content type and an integrity
// checksum.
func TestCreateHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		kmsKeyID  string
		bucketKey bool
	}{
		{"key and bucket key", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true},
		{"aws managed key", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rec objstoretest.Recorder
			endpoint, backend := fakeS3(t, rec.Wrap)
			u := freshURL(testBucket)
			s := open(t, endpoint, fakeCreds, u, Options{KMSKeyID: tc.kmsKeyID, BucketKeyEnabled: tc.bucketKey})
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
			wantPath := "/" + testBucket + "/" + strings.TrimPrefix(u.Path, "/") + "/" + name
			if r.Path != wantPath {
				t.Errorf("PUT path = %q; want %q (path-style, under the prefix)", r.Path, wantPath)
			}
			sum := md5.Sum(data)
			want := map[string]string{
				"If-None-Match":                "*",
				"X-Amz-Server-Side-Encryption": "aws:kms",
				"Content-Type":                 "application/json",
				"Content-Md5":                  base64.StdEncoding.EncodeToString(sum[:]),
				"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id":     tc.kmsKeyID,
				"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled": map[bool]string{true: "true"}[tc.bucketKey],
			}
			for h, v := range want {
				if got := r.Header.Get(h); got != v {
					t.Errorf("%s: %q; want %q", h, got, v)
				}
			}
			for _, h := range []string{"If-None-Match", "X-Amz-Server-Side-Encryption"} {
				if !strings.Contains(strings.ToLower(r.Header.Get("Authorization")), strings.ToLower(h)) {
					t.Errorf("%s is not among the signed headers", h)
				}
			}
			if !has(t, backend, strings.TrimPrefix(u.Path, "/")+"/"+name) {
				t.Error("the record is not stored")
			}
		})
	}
}

// TestObjstoreRules runs objstore's rules through the S3 SDK: retries
// through failures, the create retried after its answer was lost, a server
// that keeps failing, the call timeout and the service on such a store.
func TestObjstoreRules(t *testing.T) {
	t.Parallel()
	objstoretest.Run(t, fake)
}

// TestConditionalRequestConflict: S3 answers 409 ConditionalRequestConflict
// to a conditional write racing another operation on the key and documents
// "On a 409 failure you should retry the upload": the store retries it. A
// conflict that outlasts the retries with nothing stored is transient
// (service.ErrUnavailable); with a record stored it is decided by the
// record's bytes.
func TestConditionalRequestConflict(t *testing.T) {
	t.Parallel()
	f, endpoint, _ := fake.ServeFaulty(t, objstoretest.Fault409, 2, objstoretest.IsPut, nil)
	s := open(t, endpoint, fakeCreds, freshURL(testBucket), Options{MaxAttempts: 4, MaxBackoff: 10 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	data := []byte(`{"Version":1}`)
	if err := s.Create(ctx, storetest.Name(1), data); err != nil {
		t.Fatalf("Create through two 409s: %v", err)
	}
	if got := f.Count(); got != 3 {
		t.Errorf("server saw %d PUTs; want 3", got)
	}

	f.Reset(objstoretest.Fault409, -1)
	err := s.Create(ctx, storetest.Name(2), data)
	if !errors.Is(err, service.ErrUnavailable) || errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create with endless 409s and nothing stored = %v; want service.ErrUnavailable", err)
	}
	if _, err := s.Load(ctx, storetest.Name(2)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load = %v; want fs.ErrNotExist", err)
	}
	// Endless 409s over another writer's record: fs.ErrExist.
	err = s.Create(ctx, storetest.Name(1), []byte(`{"Version":1,"other":true}`))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create with endless 409s over a stored record = %v; want fs.ErrExist", err)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, bucket, prefix string
	}{
		{"s3://b", "b", ""},
		{"s3://b/", "b", ""},
		{"s3://b/p", "b", "p/"},
		{"s3://b/p/q/", "b", "p/q/"},
	} {
		u, _ := url.Parse(tc.in)
		b, p, err := ParseURL(u)
		if err != nil || b != tc.bucket || p != tc.prefix {
			t.Errorf("ParseURL(%s) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
		}
	}
	for _, in := range []string{"s3:///p", "file:///x", "s3://AKID:SECRETVALUE@b/p", "s3://b/p?x=1", "s3://b/a/../c", "s3://b/a//c"} {
		u, _ := url.Parse(in)
		_, _, err := ParseURL(u)
		if err == nil {
			t.Errorf("ParseURL(%s) succeeded; want an error", in)
		} else if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("ParseURL error quotes the credentials: %v", err)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		EnvEndpoint:  "http://127.0.0.1:9999",
		EnvKMSKeyID:  "alias/csrfn",
		EnvBucketKey: "true",
		EnvPathStyle: "false",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	o, err := OptionsFromEnv(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if o.Endpoint != env[EnvEndpoint] || o.KMSKeyID != "alias/csrfn" || !o.BucketKeyEnabled || o.PathStyle == nil || *o.PathStyle {
		t.Fatalf("OptionsFromEnv = %+v", o)
	}
	for k, v := range map[string]string{EnvEndpoint: "127.0.0.1:9999", EnvBucketKey: "yes please", EnvPathStyle: "2"} {
		bad := map[string]string{k: v}
		_, err := OptionsFromEnv(func(k string) (string, bool) { v, ok := bad[k]; return v, ok })
		if err == nil || !strings.HasPrefix(err.Error(), k+":") {
			t.Errorf("%s=%q: error %v; want one naming the variable", k, v, err)
		}
	}
}

// TestDefaultChain runs the production path, no AWSConfig: credentials and
// region come from the environment as Lambda sets them for the function's
// role (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_REGION), and the store's own HTTP client bounds each attempt.
func TestDefaultChain(t *testing.T) {
	// t.Setenv: not parallel.
	dir := t.TempDir()
	const id, secret, token = "ASIACSRFNTESTKEY", "csrfn-test-secret-value", "csrfn-test-session-token"
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           id,
		"AWS_SECRET_ACCESS_KEY":       secret,
		"AWS_SESSION_TOKEN":           token,
		"AWS_REGION":                  "eu-west-1",
		"AWS_MAX_ATTEMPTS":            "9", // the store's policy wins
		"AWS_CONFIG_FILE":             dir + "/none",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/none",
		"AWS_PROFILE":                 "",
	} {
		t.Setenv(k, v)
	}
	var rec objstoretest.Recorder
	f, endpoint, _ := fake.ServeFaulty(t, objstoretest.FaultHang, 0, nil, &rec)
	opts := Options{Endpoint: endpoint, MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond, AttemptTimeout: 300 * time.Millisecond}
	s, err := New(context.Background(), freshURL(testBucket), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(context.Background(), storetest.Name(1), []byte("x")); err != nil {
		t.Fatal(err)
	}
	r := rec.All()[0]
	if a := r.Header.Get("Authorization"); !strings.Contains(a, "Credential="+id+"/") || !strings.Contains(a, "/eu-west-1/s3/") || strings.Contains(a, secret) {
		t.Errorf("Authorization = %q; want the environment's key and region", a)
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != token {
		t.Errorf("X-Amz-Security-Token = %q; want AWS_SESSION_TOKEN's value", got)
	}

	f.Reset(objstoretest.FaultHang, -1)
	start := time.Now()
	err = s.Create(context.Background(), storetest.Name(2), []byte("x"))
	if d := time.Since(start); !errors.Is(err, service.ErrUnavailable) || d > 2*time.Second {
		t.Fatalf("Create on a server that never answers = %v after %v; want service.ErrUnavailable after about 2 × 300ms", err, d)
	}
	if got := f.Count(); got != 2 {
		t.Errorf("server saw %d attempts; want MaxAttempts = 2 (not AWS_MAX_ATTEMPTS)", got)
	}
}
