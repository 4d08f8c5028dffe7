package ossstore

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/cloud/internal/objstore/objstoretest"
	"github.com/csrfn/csrfn/core/keystore/storetest"
)

// The OSS test server is gofakes3, an in-memory S3 server, which the OSS
// SDK can talk to because OSS's REST API for objects has S3's shape (PUT,
// GET, ListObjectsV2 with list-type=2, XML errors with a Code). gofakes3
// checks no signatures at all (neither S3's nor OSS's OSS4-HMAC-SHA256) and
// ignores every x-oss-* header, x-oss-forbid-overwrite included. ossShim
// adds exactly that one semantic in front of it, as OSS documents it:
//
//	PutObject / x-oss-forbid-overwrite: "If you set the
//	x-oss-forbid-overwrite header to true, an existing object that has the
//	same name cannot be overwritten." (OSS API reference, PutObject; also
//	the SDK's doc comment on PutObjectRequest.ForbidOverwrite)
//	Error 0026-00000201 (help.aliyun.com/en/oss/user-guide/0026-00000201):
//	when the header is true and the object exists, OSS returns HTTP 409
//	with the error code FileAlreadyExists.
//	Error 0017-00000279: values other than true and false are refused
//	(400 InvalidArgument).
//
// It does so atomically by turning the header into gofakes3's conditional
// write (If-None-Match: *, checked under the backend's lock) and its 412
// into OSS's 409 FileAlreadyExists.
type ossShim struct{ next http.Handler }

func (s ossShim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := r.Header.Get("x-oss-forbid-overwrite")
	if r.Method != http.MethodPut || v == "" || strings.EqualFold(v, "false") {
		s.next.ServeHTTP(w, r)
		return
	}
	if !strings.EqualFold(v, "true") {
		ossError(w, http.StatusBadRequest, "InvalidArgument", "0017-00000279", "x-oss-forbid-overwrite must be true or false.")
		return
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set("If-None-Match", "*")
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r2)
	if rec.Code == http.StatusPreconditionFailed {
		ossError(w, http.StatusConflict, codeExists, "0026-00000201", "The object you specified already exists and can not be overwritten.")
		return
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// ossError writes an error the way OSS does: XML with Code, Message,
// RequestId, HostId and EC, and the request id header.
func ossError(w http.ResponseWriter, status int, code, ec, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-oss-request-id", "FAKE0000000000000000")
	w.Header().Set("x-oss-ec", ec)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><RequestId>FAKE0000000000000000</RequestId><HostId>127.0.0.1</HostId><EC>%s</EC></Error>`, code, msg, ec)
}

const testBucket = objstoretest.Bucket

// fake is OSS as gofakes3 behind ossShim serves it, for objstoretest.
var fake = objstoretest.Backend{
	Shim:   func(h http.Handler) http.Handler { return ossShim{h} },
	Answer: ossAnswer,
	Open: func(t *testing.T, endpoint string, p objstore.Policy) storetest.Store {
		return open(t, endpoint, freshURL(testBucket), Options{MaxAttempts: p.MaxAttempts, MaxBackoff: p.MaxBackoff,
			AttemptTimeout: p.AttemptTimeout, CallTimeout: p.CallTimeout})
	},
	Exists: "409 FileAlreadyExists",
}

// fakeOSS starts gofakes3 behind the OSS shim (and wrap, outermost) on
// 127.0.0.1, with testBucket created; it stops when the test ends.
func fakeOSS(t *testing.T, wrap func(http.Handler) http.Handler) (endpoint string, backend *s3mem.Backend) {
	t.Helper()
	return fake.Serve(t, wrap)
}

// fakeCreds are dummy credentials: the test server checks none.
var fakeCreds = credentials.NewStaticCredentialsProvider("LTAICSRFNTEST", "not-a-secret")

func freshURL(bucket string) *url.URL { return objstoretest.FreshURL(scheme, bucket) }

// open opens a store on endpoint (an http://127.0.0.1 URL, which the SDK
// addresses path-style); opts may override the retry policy.
func open(t *testing.T, endpoint string, u *url.URL, opts Options) *Store {
	t.Helper()
	opts.Endpoint = endpoint
	opts.Region = "cn-hangzhou"
	if opts.CredentialsProvider == nil {
		opts.CredentialsProvider = fakeCreds
	}
	s, err := New(context.Background(), u, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ossAnswer answers a fault as OSS does.
func ossAnswer(w http.ResponseWriter, kind objstoretest.Fault) {
	switch kind {
	case objstoretest.Fault503:
		ossError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "0002-00000000", "Please try again later.")
	case objstoretest.Fault500:
		ossError(w, http.StatusInternalServerError, "InternalError", "0002-00000000", "We encountered an internal error. Please try again.")
	}
}
