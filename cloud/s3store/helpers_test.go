package s3store

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/cloud/internal/objstore/objstoretest"
	"github.com/csrfn/csrfn/core/keystore/storetest"
)

const testBucket = objstoretest.Bucket

// fake is S3 as gofakes3 serves it (in memory, no authentication, with
// If-None-Match: * implemented atomically since v1.2.0), for objstoretest.
var fake = objstoretest.Backend{
	Answer: s3Answer,
	Open: func(t *testing.T, endpoint string, p objstore.Policy) storetest.Store {
		return open(t, endpoint, fakeCreds, freshURL(testBucket), Options{MaxAttempts: p.MaxAttempts, MaxBackoff: p.MaxBackoff,
			AttemptTimeout: p.AttemptTimeout, CallTimeout: p.CallTimeout})
	},
	Exists: "412",
}

// fakeS3 starts gofakes3 on 127.0.0.1 behind wrap, with testBucket
// created. It stops when the test ends.
func fakeS3(t *testing.T, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	return fake.Serve(t, wrap)
}

// fakeCreds are dummy credentials for servers that do not check them.
var fakeCreds = credentials.NewStaticCredentialsProvider("AKIDCSRFNTEST", "not-a-secret", "")

// freshURL returns s3://bucket/<a prefix no other call returns>.
func freshURL(bucket string) *url.URL { return objstoretest.FreshURL(scheme, bucket) }

// open opens a store on endpoint with test credentials; opts may override
// the retry policy.
func open(t *testing.T, endpoint string, creds aws.CredentialsProvider, u *url.URL, opts Options) *Store {
	t.Helper()
	opts.Endpoint = endpoint
	opts.AWSConfig = &aws.Config{Region: "us-east-1", Credentials: creds}
	s, err := New(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// s3Answer answers a fault as S3 does.
func s3Answer(w http.ResponseWriter, kind objstoretest.Fault) {
	switch kind {
	case objstoretest.Fault503:
		s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Please reduce your request rate.")
	case objstoretest.Fault500:
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case objstoretest.Fault409:
		s3Error(w, http.StatusConflict, "ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource. Please try again.")
	}
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>FAKE</RequestId></Error>`, code, msg)
}

// has reports whether the backend holds key in testBucket.
func has(t *testing.T, b *s3mem.Backend, key string) bool {
	t.Helper()
	_, err := b.HeadObject(testBucket, key)
	if err == nil {
		return true
	}
	if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchKey) {
		return false
	}
	t.Fatalf("HeadObject(%s): %v", key, err)
	return false
}
