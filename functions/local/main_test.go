package main

// These tests build the real server (TestMain) and run it as a process in
// a temporary working directory, as `make run` does, listening on
// 127.0.0.1:0.

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	curlPath = "/?Action=CreateDcdnCertificateSigningRequest&CommonName=example.com&SANs=www.example.com,203.0.113.7"
	exQuery  = "CommonName=example.com&SANs=www.example.com,203.0.113.7"
)

var curlRE = regexp.MustCompile(`curl -s -X POST '(http://[^']+)'`)

// checkExampleNames asserts the subject and SANs of the curl example's CSR.
func checkExampleNames(t *testing.T, s success) {
	t.Helper()
	if s.CommonName != "example.com" || s.CSR.Subject.CommonName != "example.com" {
		t.Errorf("CommonName %q, CSR subject CN %q; want example.com", s.CommonName, s.CSR.Subject.CommonName)
	}
	if want := []string{"example.com", "www.example.com"}; !slices.Equal(s.CSR.DNSNames, want) {
		t.Errorf("CSR DNS names %v, want %v", s.CSR.DNSNames, want)
	}
	if len(s.CSR.IPAddresses) != 1 || s.CSR.IPAddresses[0].String() != "203.0.113.7" {
		t.Errorf("CSR IP addresses %v, want [203.0.113.7]", s.CSR.IPAddresses)
	}
}

// TestFreshStart: the embedded default creates its store and master key with
// private modes, prints a curl example that works, and every parameter
// source and format answers the contract's 200 with a sealed record on disk
// and no private key anywhere under ./.csrfn in the clear.
func TestFreshStart(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)

	for _, c := range []struct {
		path string
		dir  bool
		mode os.FileMode
	}{
		{".csrfn", true, 0o700},
		{".csrfn/store", true, 0o700},
		{".csrfn/master.key", false, 0o600},
	} {
		st, err := os.Stat(filepath.Join(dir, c.path))
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if st.IsDir() != c.dir || st.Mode().Perm() != c.mode {
			t.Errorf("%s: dir=%v mode %04o, want dir=%v mode %04o", c.path, st.IsDir(), st.Mode().Perm(), c.dir, c.mode)
		}
	}
	if out := s.stdout.String(); !strings.Contains(out, "master.key (created)") {
		t.Errorf("stdout does not report the created master key:\n%s", out)
	}

	m := curlRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("stdout has no curl example:\n%s", s.stdout.String())
	}
	if m[1] != s.base+curlPath {
		t.Fatalf("curl example URL %q, want %q", m[1], s.base+curlPath)
	}
	curlQuery := strings.TrimPrefix(m[1], s.base+"/")

	const (
		form = "application/x-www-form-urlencoded"
		js   = "application/json"
	)
	cases := []struct {
		name, method, query, ctype, body, xmlRoot string
	}{
		{"curl example", "POST", curlQuery, "", "", ""},
		{"JSON body", "POST", "", js, `{"Action":"CreateDcdnCertificateSigningRequest","CommonName":"example.com","SANs":"www.example.com,203.0.113.7"}`, ""},
		{"JSON body with SANs array", "POST", "?Action=CreateDcdnCertificateSigningRequest", js, `{"CommonName":"example.com","SANs":["www.example.com","203.0.113.7"]}`, ""},
		{"form body", "POST", "", form, "Action=CreateDcdnCertificateSigningRequest&CommonName=example.com&SANs=www.example.com%2C203.0.113.7", ""},
		{"GET", "GET", "?Action=CreateDcdnCertificateSigningRequest&" + exQuery, "", "", ""},
		{"GET without Action", "GET", "?" + exQuery, "", "", ""},
		{"CDN alias", "POST", "?Action=CreateCdnCertificateSigningRequest&" + exQuery, "", "", ""},
		{"CDN alias in JSON", "POST", "", js, `{"Action":"CreateCdnCertificateSigningRequest","CommonName":"example.com","SANs":"www.example.com,203.0.113.7"}`, ""},
		{"XML", "POST", "?Action=CreateDcdnCertificateSigningRequest&Format=XML&" + exQuery, "", "", "CreateDcdnCertificateSigningRequestResponse"},
		{"XML from form body", "POST", "", form, "Format=XML&CommonName=example.com&SANs=www.example.com,203.0.113.7", "CreateDcdnCertificateSigningRequestResponse"},
		{"CDN alias XML", "GET", "?Action=CreateCdnCertificateSigningRequest&Format=xml&" + exQuery, "", "", "CreateCdnCertificateSigningRequestResponse"},
	}
	o := localOpener(t, dir, "")
	var keys []crypto.Signer
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.mustDo(c.method, c.query, c.ctype, c.body)
			got := checkSuccess(t, r, c.xmlRoot)
			checkExampleNames(t, got)
			if seen[got.PubMd5] || seen[got.RequestId] {
				t.Errorf("PubMd5 %s or RequestId %s repeats an earlier response", got.PubMd5, got.RequestId)
			}
			seen[got.PubMd5], seen[got.RequestId] = true, true

			rec, key := loadRecord(t, dir, o, got.PubMd5)
			if rec.RequestId != got.RequestId || rec.Csr != got.Csr || rec.CommonName != got.CommonName || rec.PubMd5 != got.PubMd5 {
				t.Errorf("record (RequestId %s, CommonName %s) does not match the response", rec.RequestId, rec.CommonName)
			}
			if want := []string{"example.com", "www.example.com", "203.0.113.7"}; !slices.Equal(rec.SANs, want) {
				t.Errorf("record SANs %v, want %v", rec.SANs, want)
			}
			if rec.KeyAlgorithm != "RSA_2048" {
				t.Errorf("record KeyAlgorithm %q, want the default RSA_2048", rec.KeyAlgorithm)
			}
			if !publicKeysEqual(key, got.CSR) {
				t.Errorf("the sealed key is not the CSR's key")
			}
			assertNoKeyIn(t, "response body", r.Body, []crypto.Signer{key})
			keys = append(keys, key)
		})
	}
	if recs := storeRecords(t, dir); len(recs) != len(keys) {
		t.Errorf("store holds %d records, want %d: %v", len(recs), len(keys), recs)
	}
	assertNoKeyOnDisk(t, dir, keys)
	assertNoKeyIn(t, "stdout", []byte(s.stdout.String()), keys)
	assertNoKeyIn(t, "stderr", []byte(s.stderr.String()), keys)
}

// TestConcurrentRequests: 50 simultaneous requests, EC and RSA mixed, give 50
// distinct keys, each stored once and unsealing to the key of its CSR.
func TestConcurrentRequests(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)

	const n = 50
	type result struct {
		alg string
		r   *reply
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		alg := "EC_prime256v1"
		if i%2 == 1 {
			alg = "RSA_2048"
		}
		results[i].alg = alg
		wg.Go(func() {
			q := fmt.Sprintf("?CommonName=host%d.example.com&KeyAlgorithm=%s", i, alg)
			results[i].r, results[i].err = s.do("POST", q, "", "")
		})
	}
	wg.Wait()

	o := localOpener(t, dir, "")
	pubs := map[string]int{}
	ids := map[string]bool{}
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("request %d: %v", i, res.err)
		}
		got := checkSuccess(t, res.r, "")
		if want := fmt.Sprintf("host%d.example.com", i); got.CommonName != want {
			t.Errorf("request %d: CommonName %q, want %q", i, got.CommonName, want)
		}
		if j, dup := pubs[got.PubMd5]; dup {
			t.Errorf("requests %d and %d got the same PubMd5 %s", j, i, got.PubMd5)
		}
		pubs[got.PubMd5] = i
		if ids[got.RequestId] {
			t.Errorf("request %d: RequestId %s repeats", i, got.RequestId)
		}
		ids[got.RequestId] = true

		rec, key := loadRecord(t, dir, o, got.PubMd5)
		if string(rec.KeyAlgorithm) != res.alg || rec.RequestId != got.RequestId || rec.Csr != got.Csr {
			t.Errorf("request %d: record (%s, %s) does not match the response (%s, %s)", i, rec.KeyAlgorithm, rec.RequestId, res.alg, got.RequestId)
		}
		if !publicKeysEqual(key, got.CSR) {
			t.Errorf("request %d: the sealed key's public key is not the CSR's", i)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			if res.alg != "EC_prime256v1" || k.Curve != elliptic.P256() {
				t.Errorf("request %d asked %s and got a key on %s", i, res.alg, k.Curve.Params().Name)
			}
		case *rsa.PrivateKey:
			if res.alg != "RSA_2048" || k.N.BitLen() != 2048 {
				t.Errorf("request %d asked %s and got RSA-%d", i, res.alg, k.N.BitLen())
			}
		default:
			t.Errorf("request %d: key of type %T", i, key)
		}
	}
	if len(pubs) != n {
		t.Errorf("%d distinct PubMd5s, want %d", len(pubs), n)
	}
	if recs := storeRecords(t, dir); len(recs) != n {
		t.Errorf("store holds %d records, want %d", len(recs), n)
	}
}

// TestKillDuringRequests: a SIGKILL while RSA requests are in flight leaves
// no partial record; every 200 that reached the caller has its record; the
// server restarts on the same directory with the same master key and serves.
// Three rounds on the same directory kill at different points of the load.
func TestKillDuringRequests(t *testing.T) {
	dir := t.TempDir()
	var (
		keyBefore []byte
		answered  []success // every 200 of every round
	)
	for round, killAfter := range []int{3, 10, 20} {
		s := start(t, dir)
		if round == 0 {
			var err error
			if keyBefore, err = os.ReadFile(filepath.Join(dir, ".csrfn", "master.key")); err != nil {
				t.Fatal(err)
			}
		} else if strings.Contains(s.stdout.String(), "(created)") {
			t.Fatalf("round %d: the restart created a new master key:\n%s", round, s.stdout.String())
		}

		const n = 30
		replies := make([]*reply, n)
		oks := make(chan struct{}, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := s.do("POST", fmt.Sprintf("?CommonName=kill%d-%d.example.com&KeyAlgorithm=RSA_2048", round, i), "", "")
				if err == nil {
					replies[i] = r
					if r.Status == http.StatusOK {
						oks <- struct{}{}
					}
				}
			})
		}
		deadline := time.After(60 * time.Second)
		for range killAfter {
			select {
			case <-oks:
			case <-deadline:
				t.Fatalf("round %d: fewer than %d requests answered 200 in 60s", round, killAfter)
			}
		}
		if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		if code := s.wait(10 * time.Second); code != -1 {
			t.Errorf("round %d: exit code %d after SIGKILL, want -1 (killed)", round, code)
		}
		wg.Wait()
		cut := 0
		for _, r := range replies {
			if r == nil {
				cut++
				continue
			}
			answered = append(answered, checkSuccess(t, r, ""))
		}
		t.Logf("round %d: killed after %d answers; %d answered, %d cut off", round, killAfter, n-cut, cut)
	}

	// Every named file is a whole record that unseals, and every 200 has
	// its record.
	o := localOpener(t, dir, "")
	stored := map[string]bool{}
	for _, name := range storeRecords(t, dir) {
		path := filepath.Join(storeDir(dir), name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := openRecord(t, path, b, o)
		stored[rec.PubMd5] = true
	}
	for _, got := range answered {
		if !stored[got.PubMd5] {
			t.Errorf("request %s answered 200 with PubMd5 %s but its record is not in the store", got.RequestId, got.PubMd5)
		}
	}
	if len(stored) < len(answered) || len(stored) > 90 {
		t.Errorf("%d records for %d answers and 90 requests", len(stored), len(answered))
	}

	// Restart once more: same master key file, new requests served.
	s := start(t, dir)
	if strings.Contains(s.stdout.String(), "(created)") {
		t.Errorf("the restart created a new master key:\n%s", s.stdout.String())
	}
	keyAfter, err := os.ReadFile(filepath.Join(dir, ".csrfn", "master.key"))
	if err != nil || string(keyAfter) != string(keyBefore) {
		t.Errorf("the master key file changed across restarts (err %v)", err)
	}
	got := checkSuccess(t, s.mustDo("POST", "?CommonName=after.example.com&KeyAlgorithm=EC_prime256v1", "", ""), "")
	loadRecord(t, dir, o, got.PubMd5)
	if code := s.terminate(); code != 0 {
		t.Errorf("restarted server exited %d on SIGTERM, want 0", code)
	}
}

// waitRefusal waits for a process that must refuse to start: it must exit
// non-zero within 10s without ever listening. A listening server is killed
// at once.
func waitRefusal(t *testing.T, s *server) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(s.stdout.String(), "listening") {
			s.cmd.Process.Kill()
			<-s.done
			t.Fatalf("the server listened instead of refusing:\n%s", s.redact(s.stdout.String()))
		}
		select {
		case <-s.done:
			if strings.Contains(s.stdout.String(), "listening") {
				t.Fatalf("the server listened before exiting:\n%s", s.redact(s.stdout.String()))
			}
			return s.wait(0)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server neither refused nor listened within 10s; stderr:\n%s", s.redact(s.stderr.String()))
		}
	}
}

func newMasterKeyB64(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// TestRefusals: a configuration the server must not run with stops it before
// it listens, with a non-zero exit and a message naming the variable.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, dir string) []string // returns env
		wantVar string
	}{
		{"master key file readable by group", func(t *testing.T, dir string) []string {
			path := filepath.Join(dir, "master.key")
			if err := os.WriteFile(path, []byte(newMasterKeyB64(t)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			return []string{"CSRFN_MASTER_KEY_FILE=" + path}
		}, "CSRFN_MASTER_KEY_FILE"},
		{"default master key made world-readable", func(t *testing.T, dir string) []string {
			first := start(t, dir) // creates ./.csrfn/master.key
			if code := first.terminate(); code != 0 {
				t.Fatalf("first run exited %d", code)
			}
			if err := os.Chmod(filepath.Join(dir, ".csrfn", "master.key"), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "CSRFN_MASTER_KEY_FILE"},
		{"all interfaces without a token", func(*testing.T, string) []string {
			return []string{"CSRFN_LISTEN=0.0.0.0:0"}
		}, "CSRFN_TOKEN"},
		{"non-loopback address without a token", func(*testing.T, string) []string {
			return []string{"CSRFN_LISTEN=192.0.2.1:0"}
		}, "CSRFN_TOKEN"},
		{"default country of three letters", func(*testing.T, string) []string {
			return []string{"CSRFN_DEFAULT_COUNTRY=CHN"}
		}, "CSRFN_DEFAULT_COUNTRY"},
		{"default country with a digit", func(*testing.T, string) []string {
			return []string{"CSRFN_DEFAULT_COUNTRY=C1"}
		}, "CSRFN_DEFAULT_COUNTRY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := c.setup(t, dir)
			keyFile := filepath.Join(dir, ".csrfn", "master.key")
			before, _ := os.ReadFile(keyFile)
			s := launch(t, dir, env...)
			for _, kv := range env {
				if k, v, _ := strings.Cut(kv, "="); k == "CSRFN_MASTER_KEY_FILE" {
					b, _ := os.ReadFile(v)
					s.secrets = append(s.secrets, strings.TrimSpace(string(b)))
				}
			}
			if len(before) > 0 {
				s.secrets = append(s.secrets, strings.TrimSpace(string(before)))
			}
			start := time.Now()
			code := waitRefusal(t, s)
			stderr := s.stderr.String()
			if code <= 0 {
				t.Errorf("exit code %d, want a non-zero exit", code)
			}
			if !strings.Contains(stderr, c.wantVar) {
				t.Errorf("stderr does not name %s:\n%s", c.wantVar, s.redact(stderr))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("refusal took %v", d)
			}
			for _, sec := range s.secrets {
				if strings.Contains(stderr+s.stdout.String(), sec) {
					t.Errorf("the master key appears in the output")
				}
			}
			if after, _ := os.ReadFile(keyFile); len(before) > 0 && string(after) != string(before) {
				t.Errorf("the refused start changed the existing ./.csrfn/master.key")
			}
		})
	}
}

// TestToken: with CSRFN_TOKEN set, requests need the bearer token; 401s
// carry WWW-Authenticate and are answered before the parameters are read;
// the token never reaches the output.
func TestToken(t *testing.T) {
	tok := make([]byte, 32)
	rand.Read(tok)
	token := hex.EncodeToString(tok)
	dir := t.TempDir()
	s := start(t, dir, "CSRFN_TOKEN="+token)
	if !strings.Contains(s.stdout.String(), `-H "Authorization: Bearer $CSRFN_TOKEN"`) {
		t.Errorf("the curl example does not show the Authorization header:\n%s", s.redact(s.stdout.String()))
	}

	q := "?CommonName=token.example.com&KeyAlgorithm=EC_prime256v1"
	cases := []struct {
		name, query, auth string
		status            int
		code              string
	}{
		{"no Authorization", q, "", 401, "MissingToken"},
		{"no Authorization and no parameters", "", "", 401, "MissingToken"},
		{"Basic scheme", q, "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+token)), 401, "MissingToken"},
		{"Bearer without a token", q, "Bearer", 401, "MissingToken"},
		{"wrong token", q, "Bearer not-the-token", 401, "InvalidToken"},
		{"token with a suffix", q, "Bearer " + token + "x", 401, "InvalidToken"},
		{"token prefix", q, "Bearer " + token[:len(token)-1], 401, "InvalidToken"},
		{"wrong token, bad parameters", "?Country=CHN", "Bearer nope", 401, "InvalidToken"},
		{"right token", q, "Bearer " + token, 200, ""},
		{"right token, scheme in lower case", q, "bearer " + token, 200, ""},
		{"right token, bad parameters", "?CommonName=example.com&Country=CHN", "Bearer " + token, 400, "InvalidValue.Malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = []string{"Authorization", c.auth}
			}
			r := s.mustDo("POST", c.query, "", "", hdr...)
			if strings.Contains(string(r.Body), token) {
				t.Errorf("the response body holds the token")
			}
			if c.status == 200 {
				checkSuccess(t, r, "")
				return
			}
			apiError(t, r, c.status, c.code)
			wa := r.Header.Get("WWW-Authenticate")
			if c.status == 401 && !strings.HasPrefix(wa, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", wa)
			}
			if c.status != 401 && wa != "" {
				t.Errorf("WWW-Authenticate %q on a %d", wa, c.status)
			}
		})
	}
	if code := s.terminate(); code != 0 {
		t.Errorf("exit code %d on SIGTERM, want 0", code)
	}
	for name, out := range map[string]string{"stdout": s.stdout.String(), "stderr": s.stderr.String()} {
		if strings.Contains(out, token) || strings.Contains(out, token[:16]) {
			t.Errorf("%s holds the token", name)
		}
	}
	if n := len(storeRecords(t, dir)); n != 2 {
		t.Errorf("%d records, want 2 (only the authorised valid requests)", n)
	}
}

// TestGracefulShutdown: SIGTERM while an RSA_4096 request is in flight lets
// it finish with 200 and its record, then the process exits 0. The request
// is held in flight deterministically: the server has started reading it
// (it sent "100 Continue") when the signal is sent, and its body, and so
// its key generation, follows the signal.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	host := strings.TrimPrefix(s.base, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	body := "CommonName=shutdown.example.com&KeyAlgorithm=RSA_4096"
	fmt.Fprintf(conn, "POST /?Action=CreateDcdnCertificateSigningRequest HTTP/1.1\r\nHost: %s\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, len(body))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q (%v)", line, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("100 Continue not followed by a blank line: %q (%v)", blank, err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stderr.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown log line after SIGTERM:\n%s", s.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-s.done:
		t.Fatalf("the server exited with a request in flight (%v)", s.waitErr)
	default:
	}
	if _, err := conn.Write([]byte(body)); err != nil {
		t.Fatalf("send body after SIGTERM: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b := make([]byte, 0, 4096)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	got := checkSuccess(t, &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, "")
	if code := s.wait(45 * time.Second); code != 0 {
		t.Errorf("exit code %d after graceful shutdown, want 0; stderr:\n%s", code, s.stderr.String())
	}
	_, key := loadRecord(t, dir, localOpener(t, dir, ""), got.PubMd5)
	if k, ok := key.(*rsa.PrivateKey); !ok || k.N.BitLen() != 4096 {
		t.Errorf("stored key is not RSA-4096")
	}
	// The request's log line follows the shutdown line.
	logs := s.logLines()
	shut, req := -1, -1
	for i, l := range logs {
		if strings.Contains(fmt.Sprint(l["msg"]), "shutting down") {
			shut = i
		}
		if l["RequestId"] == got.RequestId {
			req = i
		}
	}
	if shut < 0 || req < shut {
		t.Errorf("request logged at line %d, shutdown at line %d: the request was not in flight during shutdown", req, shut)
	}
}

// TestRequestLog: stderr holds one JSON line per request with its
// RequestId, Status and, for errors, Code; neither the master key nor any
// private key appears in stdout or stderr.
func TestRequestLog(t *testing.T) {
	dir := t.TempDir()
	mk := newMasterKeyB64(t)
	s := start(t, dir, "CSRFN_MASTER_KEY="+mk, "CSRFN_LOG_LEVEL=DEBUG")
	if !strings.Contains(s.stdout.String(), "from CSRFN_MASTER_KEY") {
		t.Errorf("stdout does not say where the master key comes from:\n%s", s.redact(s.stdout.String()))
	}
	if _, err := os.Stat(filepath.Join(dir, ".csrfn", "master.key")); err == nil {
		t.Errorf("a master key file was created although CSRFN_MASTER_KEY is set")
	}

	cases := []struct {
		name, method, query, ctype, body string
		status                           int
		code                             string
	}{
		{"EC success", "POST", "?CommonName=log.example.com&KeyAlgorithm=EC_secp384r1", "", "", 200, ""},
		{"RSA success", "POST", "?CommonName=log2.example.com&SANs=203.0.113.9", "", "", 200, ""},
		{"missing CommonName", "POST", "?SANs=a.example.com", "", "", 400, "MissingParameter"},
		{"bad Country", "GET", "?CommonName=example.com&Country=CHN", "", "", 400, "InvalidValue.Malformed"},
		{"bad CommonName", "GET", "?CommonName=*.com", "", "", 400, "InvalidParameter"},
		{"unknown Action", "GET", "?Action=DeleteEverything&CommonName=example.com", "", "", 404, "InvalidAction.NotFound"},
		{"PUT", "PUT", "?CommonName=example.com", "", "", 405, "UnsupportedHTTPMethod"},
		{"broken JSON", "POST", "", "application/json", `{"CommonName":`, 400, "InvalidParameter.Body"},
		{"CommonName not a string", "POST", "", "application/json", `{"CommonName":42}`, 400, "InvalidParameter.Body"},
		{"oversize body", "POST", "", "application/x-www-form-urlencoded", "CommonName=example.com&Pad=" + strings.Repeat("a", 70<<10), 413, "RequestEntityTooLarge"},
	}
	type sent struct {
		status int
		code   string
		pubMd5 string
	}
	byID := map[string]sent{}
	var pubs []string
	for _, c := range cases {
		r := s.mustDo(c.method, c.query, c.ctype, c.body)
		if r.Status != c.status {
			t.Fatalf("%s: status %d, want %d: %s", c.name, r.Status, c.status, r.Body)
		}
		e := sent{status: c.status, code: c.code}
		if c.status == 200 {
			got := checkSuccess(t, r, "")
			e.pubMd5 = got.PubMd5
			pubs = append(pubs, got.PubMd5)
		} else {
			apiError(t, r, c.status, c.code)
		}
		byID[r.Header.Get("X-Acs-Request-Id")] = e
	}
	if code := s.terminate(); code != 0 {
		t.Errorf("exit code %d on SIGTERM, want 0", code)
	}

	requests := 0
	for _, l := range s.logLines() {
		if l["msg"] != "request" {
			continue
		}
		requests++
		id, _ := l["RequestId"].(string)
		want, ok := byID[id]
		if !ok {
			t.Errorf("log line for unknown or repeated RequestId %q", id)
			continue
		}
		delete(byID, id)
		if st, _ := l["Status"].(float64); int(st) != want.status {
			t.Errorf("%s: logged Status %v, want %d", id, l["Status"], want.status)
		}
		code, hasCode := l["Code"]
		if want.code == "" && hasCode {
			t.Errorf("%s: a 200 logged Code %v", id, code)
		}
		if want.code != "" && code != want.code {
			t.Errorf("%s: logged Code %v, want %s", id, code, want.code)
		}
		if want.pubMd5 != "" && l["PubMd5"] != want.pubMd5 {
			t.Errorf("%s: logged PubMd5 %v, want %s", id, l["PubMd5"], want.pubMd5)
		}
		if _, ok := l["DurationMs"].(float64); !ok {
			t.Errorf("%s: no DurationMs", id)
		}
	}
	if requests != len(cases) {
		t.Errorf("%d request log lines for %d requests", requests, len(cases))
	}
	for id := range byID {
		t.Errorf("request %s has no log line", id)
	}

	// No key material in the output.
	out := s.stdout.String() + s.stderr.String()
	raw, _ := base64.StdEncoding.DecodeString(mk)
	for name, form := range map[string]string{
		"base64":    mk,
		"base64url": base64.RawURLEncoding.EncodeToString(raw),
		"hex":       hex.EncodeToString(raw),
		"raw":       string(raw),
	} {
		if strings.Contains(out, form) {
			t.Errorf("the output holds the master key (%s)", name)
		}
	}
	o := localOpener(t, dir, mk)
	var keys []crypto.Signer
	for _, p := range pubs {
		_, k := loadRecord(t, dir, o, p)
		keys = append(keys, k)
	}
	assertNoKeyIn(t, "stdout", []byte(s.stdout.String()), keys)
	assertNoKeyIn(t, "stderr", []byte(s.stderr.String()), keys)
	assertNoKeyOnDisk(t, dir, keys)
}

// TestIsLoopback covers the listen-address rule the token refusal rests on.
func TestIsLoopback(t *testing.T) {
	for _, c := range []struct {
		addr    string
		want    bool
		wantErr bool
	}{
		{"127.0.0.1:9000", true, false},
		{"127.1.2.3:0", true, false},
		{"[::1]:9000", true, false},
		{"localhost:9000", true, false},
		{"LOCALHOST:1", true, false},
		{"0.0.0.0:9000", false, false},
		{":9000", false, false},
		{"[::]:9000", false, false},
		{"192.0.2.1:80", false, false},
		{"example.com:80", false, false},
		{"127.0.0.1", false, true},
		{"", false, true},
	} {
		got, err := isLoopback(c.addr)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("isLoopback(%q) = %v, %v; want %v, error %v", c.addr, got, err, c.want, c.wantErr)
		}
	}
}
