package s3store

// These tests run the store against versitygw v1.8.0 (tools/go.mod), a real
// S3 server that checks SigV4 signatures, with its posix backend in a
// temporary directory. Findings, checked by the tests below:
//
//   - It checks signatures: a wrong secret gets 403 SignatureDoesNotMatch,
//     an unknown access key 404 XAdminUserNotFound (AWS says 403
//     InvalidAccessKeyId).
//   - It honours If-None-Match: * on PutObject (backend/common.go,
//     EvaluateObjectPutPreconditions): 412 PreconditionFailed when the key
//     exists, decided under a per-object lock file in the posix backend
//     (backend/posix/objlock.go), so concurrent creates have one winner.
//   - It accepts x-amz-server-side-encryption: aws:kms and the key id
//     headers but does not implement SSE: objects are stored in the clear
//     and GetObject reports no encryption. Encryption at rest is therefore
//     checked only as headers sent (TestCreateHeaders, on gofakes3).

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/csrfn/csrfn/cloud/internal/objstore/objstoretest"
	"github.com/csrfn/csrfn/core/keystore/storetest"
	"github.com/csrfn/csrfn/core/service"
	"github.com/csrfn/csrfn/internal/versitygw"
)

// versity is a running versitygw with testBucket created.
type versity struct{ *versitygw.Server }

func startVersity(t *testing.T) *versity {
	t.Helper()
	v := &versity{versitygw.Start(t)}
	v.CreateBucket(t, testBucket)
	return v
}

func (v *versity) creds() aws.CredentialsProvider { return v.Credentials() }

func (v *versity) client(creds aws.CredentialsProvider) *s3.Client { return v.Client(creds) }

func TestVersityConformance(t *testing.T) {
	t.Parallel()
	v := startVersity(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, v.Endpoint, v.creds(), freshURL(testBucket), Options{})
	})
}

// TestVersityChecksSignatures: versitygw rejects a request signed with a
// wrong secret or an unknown key, so the conformance run above proves our
// requests are signed correctly, headers included. Such errors are not
// "unavailable": retrying cannot help.
func TestVersityChecksSignatures(t *testing.T) {
	t.Parallel()
	v := startVersity(t)
	ctx := context.Background()
	u := freshURL(testBucket)
	good := open(t, v.Endpoint, v.creds(), u, Options{})
	defer good.Close()
	for _, tc := range []struct {
		name  string
		creds aws.CredentialsProvider
		code  string
	}{
		{"wrong secret", credentials.NewStaticCredentialsProvider(v.AccessKey, "wrong"+v.SecretKey[5:], ""), "SignatureDoesNotMatch"},
		// versitygw answers an unknown access key with 404
		// XAdminUserNotFound (AWS: 403 InvalidAccessKeyId); Load must
		// not mistake that 404 for a missing record.
		{"unknown key", credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", v.SecretKey, ""), "XAdminUserNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := open(t, v.Endpoint, tc.creds, u, Options{})
			defer bad.Close()
			name := storetest.Name(len(tc.name))
			err := bad.Create(ctx, name, []byte(`{"Version":1}`))
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("Create with %s = %v; want %s", tc.name, err, tc.code)
			}
			if errors.Is(err, service.ErrUnavailable) || errors.Is(err, fs.ErrExist) {
				t.Errorf("Create with %s = %v; want neither unavailable nor exists", tc.name, err)
			}
			if strings.Contains(err.Error(), v.SecretKey) || strings.Contains(err.Error(), v.SecretKey[5:]) {
				t.Error("the error quotes the secret")
			}
			_, err = bad.Load(ctx, name)
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load with %s = %v; want %s, not fs.ErrNotExist", tc.name, err, tc.code)
			}
			if _, err := good.Load(ctx, name); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after the refused Create, Load = %v; want fs.ErrNotExist", err)
			}
		})
	}
}

// TestVersityIfNoneMatch shows that create-only comes from the header: a
// plain PUT overwrites, a PUT with If-None-Match: * on an existing key gets
// 412 and changes nothing.
func TestVersityIfNoneMatch(t *testing.T) {
	t.Parallel()
	v := startVersity(t)
	c := v.client(v.creds())
	ctx := context.Background()
	key := aws.String("plain/" + storetest.Name(1))
	put := func(body string, ifNoneMatch *string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(testBucket), Key: key, Body: strings.NewReader(body), IfNoneMatch: ifNoneMatch,
		})
		return err
	}
	get := func() string {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(testBucket), Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return objstoretest.ReadAll(t, out.Body)
	}
	if err := put("one", aws.String("*")); err != nil {
		t.Fatalf("conditional PUT of a new key: %v", err)
	}
	if err := put("two", nil); err != nil {
		t.Fatalf("plain PUT over it: %v", err)
	}
	if got := get(); got != "two" {
		t.Fatalf("after a plain PUT, the object is %q; want it overwritten", got)
	}
	err := put("three", aws.String("*"))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("PUT with If-None-Match: * over an existing key = %v; want 412 PreconditionFailed", err)
	}
	if got := get(); got != "two" {
		t.Fatalf("after the refused PUT, the object is %q; want %q", got, "two")
	}
}

// TestVersitySSE records that versitygw accepts the SSE-KMS headers the
// store sends but does not implement them (see the comment at the top).
func TestVersitySSE(t *testing.T) {
	t.Parallel()
	v := startVersity(t)
	u := freshURL(testBucket)
	s := open(t, v.Endpoint, v.creds(), u, Options{KMSKeyID: "alias/csrfn-test", BucketKeyEnabled: true})
	defer s.Close()
	ctx := context.Background()
	name := storetest.Name(1)
	if err := s.Create(ctx, name, []byte(`{"Version":1}`)); err != nil {
		t.Fatalf("Create with SSE-KMS headers: %v", err)
	}
	out, err := v.client(v.creds()).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(s.Prefix() + name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("versitygw reports ServerSideEncryption=%q SSEKMSKeyId=%q (it does not implement SSE)", out.ServerSideEncryption, aws.ToString(out.SSEKMSKeyId))
}
