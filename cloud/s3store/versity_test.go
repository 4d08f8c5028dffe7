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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/csrfn/csrfn/core/keystore/storetest"
	"github.com/csrfn/csrfn/core/service"
)

// repoRoot finds the module root (where tools/go.mod is) above the test's
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tools", "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (tools/go.mod) above the test directory")
		}
		dir = parent
	}
}

// versityBinary returns the versitygw binary in $CSRFN_TOOLS_BIN (the
// repository's bin/ when unset), building it there from tools/go.mod if it
// is missing. The build is slow, so it happens once, under a lock, and the
// result is kept.
func versityBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dir := os.Getenv("CSRFN_TOOLS_BIN")
	if dir == "" {
		dir = filepath.Join(root, "bin")
	}
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(filepath.Join(dir, ".versitygw.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if isExecutable(bin) { // built while we waited
		return bin
	}
	t.Logf("building versitygw into %s (once)", dir)
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-C", filepath.Join(root, "tools"), "-o", tmp, "github.com/versity/versitygw/cmd/versitygw")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("building versitygw: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// versity is a running versitygw.
type versity struct {
	endpoint string
	access   string
	secret   string
}

func (v *versity) creds() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(v.access, v.secret, "")
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startVersity runs versitygw on 127.0.0.1 with its posix backend in a
// temporary directory and a fresh root key pair, creates testBucket, and
// stops it when the test ends. The key pair goes to the process through its
// environment (ROOT_ACCESS_KEY, ROOT_SECRET_KEY), never its command line.
func startVersity(t *testing.T) *versity {
	t.Helper()
	bin := versityBinary(t)
	v := &versity{access: "CSRFN" + strings.ToUpper(randHex(6)), secret: randHex(20)}
	root := t.TempDir()
	var lastOut string
	for try := 0; try < 3; try++ {
		addr := freeAddr(t)
		var out syncBuffer
		// Flags: --port (listen address), --region, --quiet (no request
		// log), then the posix backend on root; single-account mode with
		// the root key pair, no IAM service.
		cmd := exec.Command(bin, "--port", addr, "--region", "us-east-1", "--quiet", "posix", root)
		cmd.Env = []string{"ROOT_ACCESS_KEY=" + v.access, "ROOT_SECRET_KEY=" + v.secret, "HOME=" + root}
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if waitListening(addr, exited, 20*time.Second) {
			t.Cleanup(func() {
				cmd.Process.Signal(os.Interrupt)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
			})
			v.endpoint = "http://" + addr
			v.createBucket(t, testBucket)
			return v
		}
		cmd.Process.Kill()
		<-exited
		lastOut = strings.ReplaceAll(out.String(), v.secret, "[redacted]")
	}
	t.Fatalf("versitygw did not start; its output:\n%s", lastOut)
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitListening(addr string, exited <-chan error, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// client is a plain S3 client for v with the given credentials.
func (v *versity) client(creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(v.endpoint),
		UsePathStyle: true,
		Credentials:  creds,
	})
}

func (v *versity) createBucket(t *testing.T, bucket string) {
	t.Helper()
	_, err := v.client(v.creds()).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
}

func TestVersityConformance(t *testing.T) {
	t.Parallel()
	v := startVersity(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return open(t, v.endpoint, v.creds(), freshURL(testBucket), Options{})
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
	good := open(t, v.endpoint, v.creds(), u, Options{})
	defer good.Close()
	for _, tc := range []struct {
		name  string
		creds aws.CredentialsProvider
		code  string
	}{
		{"wrong secret", credentials.NewStaticCredentialsProvider(v.access, "wrong"+v.secret[5:], ""), "SignatureDoesNotMatch"},
		// versitygw answers an unknown access key with 404
		// XAdminUserNotFound (AWS: 403 InvalidAccessKeyId); Load must
		// not mistake that 404 for a missing record.
		{"unknown key", credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", v.secret, ""), "XAdminUserNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := open(t, v.endpoint, tc.creds, u, Options{})
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
			if strings.Contains(err.Error(), v.secret) || strings.Contains(err.Error(), v.secret[5:]) {
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
		defer out.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(out.Body)
		return b.String()
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
	s := open(t, v.endpoint, v.creds(), u, Options{KMSKeyID: "alias/csrfn-test", BucketKeyEnabled: true})
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
