// Package kmsfake runs test doubles of AWS KMS and Alibaba Cloud KMS that
// speak the wire protocols the official SDKs speak, so that tests can drive
// the real SDK clients end to end without a cloud account.
//
// Both fakes:
//
//   - listen on 127.0.0.1 only and stop through t.Cleanup;
//   - verify the request signature with the fake's own credentials and reject
//     anything else the way the service does (AWS: Signature Version 4;
//     Alibaba: signature method V3, ACS3-HMAC-SHA256), including a wrong
//     secret, an unknown or expired access key, a stale timestamp and (Alibaba)
//     a replayed nonce;
//   - wrap each data key with real AES-256-GCM under a per-key master secret
//     that never leaves the fake, with the encryption context as additional
//     data, so that a tampered CiphertextBlob and a wrong encryption context
//     are detected cryptographically, as KMS does;
//   - offer an outage switch (SetOutage): 503 answers, throttling answers,
//     stalled requests, or a closed port (connection refused);
//   - count the requests of each operation (Calls) so that tests can see the
//     SDK's retries, and remember every data key they handed out
//     (IssuedDataKeys) so that tests can check that no plaintext data key
//     leaks into an error or a log.
//
// The package uses the standard library only: the signature checks are
// independent re-implementations of the published algorithms, not the SDKs'
// own signers. It is meant for tests (it depends on package testing).
package kmsfake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Outage selects how a fake misbehaves.
type Outage int

const (
	// Up answers normally.
	Up Outage = iota
	// Unavailable answers every request with HTTP 503 and the service's
	// "service unavailable" error.
	Unavailable
	// Throttled answers every request with the service's throttling error.
	Throttled
	// Stalled accepts requests and never answers until the client gives
	// up (or the outage ends, which then answers 503).
	Stalled
	// Refused closes the listening port: connections are refused. Ending
	// the outage listens again on the same address.
	Refused
)

func (o Outage) String() string {
	switch o {
	case Up:
		return "up"
	case Unavailable:
		return "unavailable"
	case Throttled:
		return "throttled"
	case Stalled:
		return "stalled"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("Outage(%d)", int(o))
}

// KeyState is the state of a fake master key.
type KeyState int

const (
	Enabled KeyState = iota
	Disabled
	PendingDeletion
)

// Credentials are an access key the fake accepts. SessionToken is set for
// temporary (STS) credentials; requests must then carry it.
type Credentials struct {
	AccessKeyID     string
	AccessKeySecret string
	SessionToken    string
}

// String never shows the secret or the token.
func (c Credentials) String() string { return "kmsfake.Credentials{" + c.AccessKeyID + " [redacted]}" }

// GoString never shows the secret or the token.
func (c Credentials) GoString() string { return c.String() }

// server is the part both fakes share: the listener, the outage switch,
// credentials, keys and counters.
type server struct {
	t       testing.TB
	opOf    func(r *http.Request) string // the operation a request names
	handler func(w http.ResponseWriter, r *http.Request, outage Outage)
	// resolveLocked finds a key the way the fake's service names keys;
	// kmu is held.
	resolveLocked func(keyID string) (*masterKey, *apiError)

	mu      sync.Mutex
	addr    string
	ln      net.Listener
	srv     *http.Server
	outage  Outage
	stalled chan struct{} // closed when a Stalled outage ends
	closed  bool
	creds   map[string]*credEntry
	calls   map[string]int
	issued  [][]byte
	now     func() time.Time

	kmu      sync.Mutex            // guards the keys, and what a fake keeps with them
	keys     map[string]*masterKey // by key id
	versions map[string]*masterKey // by key version id (Alibaba)
	aliases  map[string]string     // "alias/name" -> key id
}

// apiError is an error answer: the HTTP status and the service's error
// code and message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

type credEntry struct {
	Credentials
	expired bool
}

func newServer(t testing.TB, opOf func(*http.Request) string, h func(http.ResponseWriter, *http.Request, Outage),
	resolveLocked func(string) (*masterKey, *apiError)) *server {
	t.Helper()
	s := &server{
		t:             t,
		opOf:          opOf,
		handler:       h,
		resolveLocked: resolveLocked,
		creds:         map[string]*credEntry{},
		calls:         map[string]int{},
		now:           time.Now,
		stalled:       make(chan struct{}),
		keys:          map[string]*masterKey{},
		versions:      map[string]*masterKey{},
		aliases:       map[string]string{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kmsfake: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.close)
	return s
}

// serve starts an http.Server on ln; s.mu is held or s is not shared yet.
func (s *server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.ln, s.srv = ln, srv
	go srv.Serve(ln)
}

func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.outage == Stalled {
		close(s.stalled)
	}
	if s.srv != nil {
		s.srv.Close()
		s.srv, s.ln = nil, nil
	}
}

func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[s.opOf(r)]++
	outage, stalled := s.outage, s.stalled
	s.mu.Unlock()
	if outage == Stalled {
		select {
		case <-r.Context().Done():
			return
		case <-stalled:
			// The outage ended while this request waited: answer as
			// an overloaded service would.
			outage = Unavailable
		}
	}
	s.handler(w, r, outage)
}

// Addr is the host:port the fake listens on (127.0.0.1).
func (s *server) Addr() string { return s.addr }

// SetOutage switches the fake's behaviour; Up ends any outage.
func (s *server) SetOutage(o Outage) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || o == s.outage {
		return
	}
	prev := s.outage
	s.outage = o
	if prev == Stalled {
		close(s.stalled)
		s.stalled = make(chan struct{})
	}
	switch {
	case o == Refused:
		s.srv.Close() // closes the listener and every connection
		s.srv, s.ln = nil, nil
	case prev == Refused:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			s.t.Fatalf("kmsfake: listen again on %s: %v", s.addr, err)
		}
		s.serve(ln)
	}
}

// Calls reports how many requests for operation op (e.g. "GenerateDataKey",
// "Decrypt") reached the fake, whatever their outcome; "" counts them all.
func (s *server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// IssuedDataKeys returns copies of every plaintext data key the fake has
// returned (by GenerateDataKey or Decrypt).
func (s *server) IssuedDataKeys() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.issued))
	for i, k := range s.issued {
		out[i] = append([]byte(nil), k...)
	}
	return out
}

func (s *server) recordIssued(k []byte) {
	s.mu.Lock()
	s.issued = append(s.issued, append([]byte(nil), k...))
	s.mu.Unlock()
}

// newCredentials creates and accepts another access key; with sts it is a
// temporary one that requests must accompany with its SessionToken.
func (s *server) newCredentials(idPrefix string, sts bool) Credentials {
	c := Credentials{
		AccessKeyID:     idPrefix + randomToken(16),
		AccessKeySecret: randomToken(40),
	}
	if sts {
		c.SessionToken = randomToken(64)
	}
	s.mu.Lock()
	s.creds[c.AccessKeyID] = &credEntry{Credentials: c}
	s.mu.Unlock()
	return c
}

// ExpireCredentials makes the fake answer the access key's requests as the
// service answers expired temporary credentials.
func (s *server) ExpireCredentials(accessKeyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.creds[accessKeyID]; ok {
		e.expired = true
	}
}

func (s *server) lookupCreds(id string) (credEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.creds[id]
	if !ok {
		return credEntry{}, false
	}
	return *e, true
}

// SetClock replaces the fake's clock (for signature timestamp checks).
func (s *server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

func (s *server) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// addKey keeps k, under alias ("alias/name" or "name") when that is not
// empty.
func (s *server) addKey(k *masterKey, alias string) {
	s.kmu.Lock()
	defer s.kmu.Unlock()
	s.keys[k.id] = k
	if k.version != "" {
		s.versions[k.version] = k
	}
	if alias != "" {
		if !strings.HasPrefix(alias, "alias/") {
			alias = "alias/" + alias
		}
		s.aliases[alias] = k.id
	}
}

// SetKeyState sets the state of a key given as the service takes it (AWS:
// id, ARN or alias; Alibaba: id or alias).
func (s *server) SetKeyState(keyID string, st KeyState) {
	s.t.Helper()
	s.withKey("SetKeyState", keyID, func(k *masterKey) { k.state = st })
}

// DenyAccess makes the key policy (AWS) or the permission system (Alibaba)
// refuse (deny=true) or allow every operation on the key.
func (s *server) DenyAccess(keyID string, deny bool) {
	s.t.Helper()
	s.withKey("DenyAccess", keyID, func(k *masterKey) { k.denied = deny })
}

// withKey runs f on the key named keyID, failing the test when there is
// none.
func (s *server) withKey(what, keyID string, f func(*masterKey)) {
	s.t.Helper()
	s.kmu.Lock()
	defer s.kmu.Unlock()
	k, e := s.resolveLocked(keyID)
	if e != nil {
		s.t.Fatalf("kmsfake: %s: %s", what, e.Message)
	}
	f(k)
}

// writeJSON writes an answer with a JSON body.
func writeJSON(w http.ResponseWriter, contentType string, status int, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// masterKey is a fake KMS key: a 256-bit secret that never leaves the fake.
type masterKey struct {
	id      string
	arn     string // AWS only
	version string // Alibaba only: the key version id
	secret  []byte
	state   KeyState
	denied  bool
}

// wrap seals dataKey under k with header and the canonical encryption
// context as additional data: header || nonce || GCM(ct||tag).
func (k *masterKey) wrap(header []byte, dataKey []byte, ec map[string]string) ([]byte, error) {
	aead, err := gcm(k.secret)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte(nil), header...), nonce...)
	return aead.Seal(out, nonce, dataKey, aad(header, ec)), nil
}

var errOpen = errors.New("kmsfake: ciphertext does not authenticate")

// unwrap reverses wrap given the blob's header length.
func (k *masterKey) unwrap(blob []byte, headerLen int, ec map[string]string) ([]byte, error) {
	aead, err := gcm(k.secret)
	if err != nil {
		return nil, err
	}
	if len(blob) < headerLen+aead.NonceSize()+aead.Overhead() {
		return nil, errOpen
	}
	header := blob[:headerLen]
	nonce := blob[headerLen : headerLen+aead.NonceSize()]
	pt, err := aead.Open(nil, nonce, blob[headerLen+aead.NonceSize():], aad(header, ec))
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// aad is the header followed by the encryption context in a canonical,
// unambiguous form: pairs sorted by key, each string length-prefixed.
func aad(header []byte, ec map[string]string) []byte {
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := append([]byte(nil), header...)
	out = binary.AppendUvarint(out, uint64(len(keys)))
	for _, k := range keys {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		out = binary.AppendUvarint(out, uint64(len(ec[k])))
		out = append(out, ec[k]...)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return b
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomToken(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

// uuid returns a random UUID v4 in lower case, as KMS key ids are.
func uuid() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// LeakedSecret reports whether text contains one of secrets, raw or in
// hex, standard or URL-safe base64 (padded or not), and which one. Tests
// use it to check that no data key or private key reached an error or a
// log line.
func LeakedSecret(text string, secrets ...[]byte) (index int, leaked bool) {
	for i, s := range secrets {
		if len(s) == 0 {
			continue
		}
		forms := []string{
			string(s),
			hex.EncodeToString(s),
			strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s),
			base64.RawStdEncoding.EncodeToString(s),
			base64.URLEncoding.EncodeToString(s),
			base64.RawURLEncoding.EncodeToString(s),
		}
		for _, f := range forms {
			if strings.Contains(text, f) {
				return i, true
			}
		}
	}
	return -1, false
}
