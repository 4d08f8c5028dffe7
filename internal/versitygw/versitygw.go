// Package versitygw runs versitygw (tools/go.mod), a real S3 server that
// checks SigV4 signatures, on 127.0.0.1 for tests, with its posix backend
// in a temporary directory and a fresh root key pair. Test support only.
//
// Behaviour at v1.8.0 that tests rely on: it checks signatures; it honours
// If-None-Match: * on PutObject (412 when the key exists, decided under a
// per-object lock); it accepts the SSE-KMS headers but stores objects in
// the clear.
package versitygw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/csrfn/csrfn/internal/testkit"
	"github.com/csrfn/csrfn/internal/toolbin"
)

// Package is the Go package of the server, pinned in tools/go.mod.
const Package = "github.com/versity/versitygw/cmd/versitygw"

// Region is the region the server is started with.
const Region = "us-east-1"

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
}

// Credentials are the root key pair.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client is a plain S3 client for the server with creds.
func (s *Server) Client(creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{Region: Region, BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true, Credentials: creds})
}

// CreateBucket creates bucket with the root credentials.
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if _, err := s.Client(s.Credentials()).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("versitygw: CreateBucket %s: %v", bucket, err)
	}
}

// Start runs the server and stops it when the test ends. The key pair goes
// to the process through its environment (ROOT_ACCESS_KEY,
// ROOT_SECRET_KEY), never its command line.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, "CSRFN"+strings.ToUpper(randHex(6)), randHex(20))
}

// StartWith runs the server with the given root key pair, for a client
// (such as a Lambda function) that has only one set of credentials.
func StartWith(t testing.TB, accessKey, secretKey string) *Server {
	t.Helper()
	bin := toolbin.Path(t, "versitygw", Package)
	s := &Server{AccessKey: accessKey, SecretKey: secretKey}
	root := t.TempDir()
	var lastOut string
	for try := 0; try < 3; try++ {
		addr := freeAddr(t)
		var out testkit.SyncBuffer
		// --port: listen address; --quiet: no request log; then the posix
		// backend on root, single-account mode with the root key pair.
		cmd := exec.Command(bin, "--port", addr, "--region", Region, "--quiet", "posix", root)
		cmd.Env = []string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey, "HOME=" + root}
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
			s.Endpoint = "http://" + addr
			return s
		}
		cmd.Process.Kill()
		<-exited
		lastOut = strings.ReplaceAll(out.String(), s.SecretKey, "[redacted]")
	}
	t.Fatalf("versitygw did not start; its output:\n%s", lastOut)
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t testing.TB) string {
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
