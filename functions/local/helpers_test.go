package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/internal/testkit"
)

// serverBin is the real server binary, built once by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "csrfn-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdtemp:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBin = filepath.Join(dir, "csrfn-local")
	build := exec.Command(goTool(), "build", "-o", serverBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the server:", err)
		return 1
	}
	return m.Run()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// server is one run of the real binary.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string // working directory: ./.csrfn lives here
	base    string // http://127.0.0.1:PORT once listening
	stdout  *testkit.SyncBuffer
	stderr  *testkit.SyncBuffer
	done    chan struct{} // closed when the process has been waited for
	waitErr error
	secrets []string // redacted from anything the test prints
}

var listeningRE = regexp.MustCompile(`csrfn listening on (http://127\.0\.0\.1:\d+)\n`)

// serverEnv is the test's environment without any CSRFN_ setting, plus env.
func serverEnv(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CSRFN_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// launch starts the binary in dir with env (NAME=value items) added to a
// clean environment. CSRFN_LISTEN defaults to 127.0.0.1:0. The process is
// killed in t.Cleanup.
func launch(t *testing.T, dir string, env ...string) *server {
	t.Helper()
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "CSRFN_LISTEN=") }) {
		env = append(env, "CSRFN_LISTEN=127.0.0.1:0")
	}
	s := &server{t: t, dir: dir, stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, done: make(chan struct{})}
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); (k == "CSRFN_TOKEN" || k == "CSRFN_MASTER_KEY") && v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	s.cmd = exec.Command(serverBin)
	s.cmd.Dir = dir
	s.cmd.Env = serverEnv(env)
	s.cmd.Stdout = s.stdout
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// start launches the server and waits for its listening line.
func start(t *testing.T, dir string, env ...string) *server {
	t.Helper()
	s := launch(t, dir, env...)
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.base = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("server exited before listening (%v)\nstdout:\n%s\nstderr:\n%s", s.waitErr, s.redact(s.stdout.String()), s.redact(s.stderr.String()))
		case <-deadline:
			t.Fatalf("server did not print its listening line within 20s\nstdout:\n%s\nstderr:\n%s", s.redact(s.stdout.String()), s.redact(s.stderr.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// redact hides the run's secrets from test output.
func (s *server) redact(text string) string {
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "[SECRET]")
	}
	return text
}

// wait waits for the process to exit and returns its exit code (-1 when it
// was killed by a signal).
func (s *server) wait(timeout time.Duration) int {
	s.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		select {
		case <-s.done: // exited just as the time ran out
		default:
			s.t.Fatalf("server still running after %v\nstderr:\n%s", timeout, s.redact(s.stderr.String()))
		}
	}
	var ee *exec.ExitError
	if errors.As(s.waitErr, &ee) {
		return ee.ExitCode()
	}
	if s.waitErr != nil {
		s.t.Fatalf("wait: %v", s.waitErr)
	}
	return 0
}

// terminate sends SIGTERM and returns the exit code.
func (s *server) terminate() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	return s.wait(45 * time.Second)
}

// logLines parses stderr as JSON lines; every line must be JSON.
func (s *server) logLines() []testkit.LogLine {
	s.t.Helper()
	lines, err := testkit.ParseJSONLines(s.stderr.String())
	if err != nil {
		s.t.Fatalf("stderr: %s", s.redact(err.Error()))
	}
	return lines
}

var httpClient = &http.Client{Timeout: 90 * time.Second}

// reply is a server answer read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request; query is appended to the base URL as given.
func (s *server) do(method, query, contentType, body string, header ...string) (*reply, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+"/"+query, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// mustDo is do that fails the test on a transport error.
func (s *server) mustDo(method, query, contentType, body string, header ...string) *reply {
	s.t.Helper()
	r, err := s.do(method, query, contentType, body, header...)
	if err != nil {
		s.t.Fatalf("%s /%s: %v", method, query, err)
	}
	return r
}

var (
	requestIDRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
	pubMd5RE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// success is a checked 200 answer.
type success struct {
	RequestId, PubMd5, Csr, CommonName string
	CSR                                *x509.CertificateRequest
}

// checkSuccess asserts the contract's 200 answer in JSON or XML (xmlRoot
// names the expected root element, "" for JSON) and returns its fields.
func checkSuccess(t *testing.T, r *reply, xmlRoot string) success {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200; body: %s", r.Status, r.Body)
	}
	fields := map[string]string{}
	if xmlRoot == "" {
		if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
		}
		var obj map[string]any
		if err := json.Unmarshal(r.Body, &obj); err != nil {
			t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
		}
		for k, v := range obj {
			s, ok := v.(string)
			if !ok {
				t.Errorf("%s is %T, want a string", k, v)
			}
			fields[k] = s
		}
	} else {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") && !strings.HasPrefix(ct, "text/xml") {
			t.Errorf("Content-Type %q, want XML", ct)
		}
		root, children := parseXML(t, r.Body)
		if root != xmlRoot {
			t.Errorf("XML root <%s>, want <%s>", root, xmlRoot)
		}
		fields = children
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"CommonName", "Csr", "PubMd5", "RequestId"}; !slices.Equal(keys, want) {
		t.Errorf("response fields %v, want exactly %v", keys, want)
	}
	out := success{RequestId: fields["RequestId"], PubMd5: fields["PubMd5"], Csr: fields["Csr"], CommonName: fields["CommonName"]}
	if !requestIDRE.MatchString(out.RequestId) {
		t.Errorf("RequestId %q is not an upper-case UUID v4", out.RequestId)
	}
	if !pubMd5RE.MatchString(out.PubMd5) {
		t.Errorf("PubMd5 %q is not 32 lower-case hex digits", out.PubMd5)
	}
	if got := r.Header.Get("X-Acs-Request-Id"); got != out.RequestId {
		t.Errorf("X-Acs-Request-Id %q, want the RequestId %q", got, out.RequestId)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	out.CSR = parseCSR(t, out.Csr)
	if got := md5Hex(out.CSR.RawSubjectPublicKeyInfo); got != out.PubMd5 {
		t.Errorf("PubMd5 %s is not the MD5 of the CSR's SubjectPublicKeyInfo (%s)", out.PubMd5, got)
	}
	return out
}

// parseCSR checks the PEM form and the self-signature of a CSR.
func parseCSR(t *testing.T, text string) *x509.CertificateRequest {
	t.Helper()
	if !strings.HasSuffix(text, "-----END CERTIFICATE REQUEST-----\n") {
		t.Fatalf("Csr is not a newline-terminated PEM CERTIFICATE REQUEST: %q", text)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(rest) != 0 {
		t.Fatalf("Csr is not exactly one PEM CERTIFICATE REQUEST: %q", text)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatalf("parse CSR: %v", err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	return req
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// parseXML returns the root element's name and its children's text; it
// fails on nested elements and repeated children.
func parseXML(t *testing.T, body []byte) (string, map[string]string) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(body))
	var (
		root     string
		children = map[string]string{}
		stack    []string
		text     strings.Builder
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("body is not XML: %v: %s", err, body)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			switch len(stack) {
			case 0:
				if root != "" {
					t.Fatalf("XML has two roots: %s", body)
				}
				root = tok.Name.Local
			case 1:
				text.Reset()
			default:
				t.Fatalf("XML nests deeper than root/child: %s", body)
			}
			stack = append(stack, tok.Name.Local)
		case xml.CharData:
			if len(stack) == 2 {
				text.Write(tok)
			}
		case xml.EndElement:
			if len(stack) == 2 {
				if _, dup := children[tok.Name.Local]; dup {
					t.Fatalf("XML repeats <%s>: %s", tok.Name.Local, body)
				}
				children[tok.Name.Local] = text.String()
			}
			stack = stack[:len(stack)-1]
		}
	}
	return root, children
}

// apiError checks an error answer in JSON and returns its fields.
func apiError(t *testing.T, r *reply, status int, code string) map[string]string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	var obj map[string]string
	if err := json.Unmarshal(r.Body, &obj); err != nil {
		t.Fatalf("error body is not a JSON object of strings: %v: %s", err, r.Body)
	}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"Code", "HostId", "Message", "RequestId"}; !slices.Equal(keys, want) {
		t.Errorf("error fields %v, want exactly %v", keys, want)
	}
	if obj["Code"] != code {
		t.Errorf("Code %q, want %q (Message %q)", obj["Code"], code, obj["Message"])
	}
	if !requestIDRE.MatchString(obj["RequestId"]) || r.Header.Get("X-Acs-Request-Id") != obj["RequestId"] {
		t.Errorf("RequestId %q / X-Acs-Request-Id %q: want the same upper-case UUID v4", obj["RequestId"], r.Header.Get("X-Acs-Request-Id"))
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	return obj
}

// localOpener opens records sealed under the master key of dir's
// ./.csrfn/master.key, or under keyB64 when it is not empty.
func localOpener(t *testing.T, dir, keyB64 string) *seal.Local {
	t.Helper()
	var (
		key []byte
		err error
	)
	if keyB64 != "" {
		key, err = seal.DecodeKey(keyB64)
	} else {
		key, err = seal.ReadKeyFile(filepath.Join(dir, ".csrfn", "master.key"))
	}
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	o, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatalf("seal.NewLocal: %v", err)
	}
	return o
}

func storeDir(dir string) string { return filepath.Join(dir, ".csrfn", "store") }

// loadRecord reads, parses and unseals the record of pubMd5, checking its
// file mode; it returns the record and its private key.
func loadRecord(t *testing.T, dir string, o seal.Opener, pubMd5 string) (*record.Record, crypto.Signer) {
	t.Helper()
	path := filepath.Join(storeDir(dir), record.Name(pubMd5))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("record of %s: %v", pubMd5, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("record %s has mode %04o, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read record: %v", err)
	}
	return openRecord(t, path, b, o)
}

func openRecord(t *testing.T, path string, b []byte, o seal.Opener) (*record.Record, crypto.Signer) {
	t.Helper()
	rec, err := record.Unmarshal(b)
	if err != nil {
		t.Fatalf("record %s does not parse: %v", filepath.Base(path), err)
	}
	if filepath.Base(path) != record.Name(rec.PubMd5) {
		t.Errorf("record file %s holds PubMd5 %s", filepath.Base(path), rec.PubMd5)
	}
	key, err := record.OpenKey(context.Background(), rec, o)
	if err != nil {
		t.Fatalf("record %s does not unseal: %v", filepath.Base(path), err)
	}
	return rec, key
}

// storeRecords lists the record names of the store: regular files whose
// names do not start with a dot.
func storeRecords(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(storeDir(dir))
	if err != nil {
		t.Fatalf("read store: %v", err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// keyForms are the encodings in which a private key could leak: PKCS#8
// DER, base64, PEM and hex, and the algorithm-specific DER.
func keyForms(t *testing.T, key crypto.Signer) map[string][]byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("PKCS#8: %v", err)
	}
	pemText := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	b64 := base64.StdEncoding.EncodeToString(der)
	forms := map[string][]byte{
		"PKCS#8 DER":           der,
		"PKCS#8 base64":        []byte(b64),
		"PKCS#8 base64url":     []byte(base64.RawURLEncoding.EncodeToString(der)),
		"PKCS#8 PEM":           pemText,
		"PKCS#8 PEM first row": []byte(b64[:64]),
		"PKCS#8 hex":           []byte(hex.EncodeToString(der)),
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pk1 := x509.MarshalPKCS1PrivateKey(k)
		forms["PKCS#1 DER"] = pk1
		forms["PKCS#1 base64"] = []byte(base64.StdEncoding.EncodeToString(pk1))
		forms["RSA private exponent"] = k.D.Bytes()
	case *ecdsa.PrivateKey:
		sec1, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatalf("SEC 1: %v", err)
		}
		forms["SEC1 DER"] = sec1
		forms["SEC1 base64"] = []byte(base64.StdEncoding.EncodeToString(sec1))
	}
	return forms
}

// assertNoKeyIn fails if any form of any key occurs in data; where names
// the data. The key itself is never printed.
func assertNoKeyIn(t *testing.T, where string, data []byte, keys []crypto.Signer) {
	t.Helper()
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Errorf("%s holds a PEM PRIVATE KEY block", where)
	}
	for i, k := range keys {
		for name, form := range keyForms(t, k) {
			if bytes.Contains(data, form) {
				t.Errorf("%s holds private key #%d in the clear (%s)", where, i, name)
			}
		}
	}
}

// assertNoKeyOnDisk walks every file under dir/.csrfn.
func assertNoKeyOnDisk(t *testing.T, dir string, keys []crypto.Signer) {
	t.Helper()
	root := filepath.Join(dir, ".csrfn")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		assertNoKeyIn(t, path, b, keys)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	if n == 0 {
		t.Fatalf("no files under %s", root)
	}
}

// publicKeysEqual compares a private key's public half with a CSR's key.
func publicKeysEqual(key crypto.Signer, csr *x509.CertificateRequest) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(csr.PublicKey) {
		return false
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	return err == nil && bytes.Equal(spki, csr.RawSubjectPublicKeyInfo)
}
