package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aliyun/fc-runtime-go-sdk/events"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/invoke"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// ---------------------------------------------------------------------------
// Harness: an adapter built by newAdapter on a temporary file store, with its
// log lines captured through the logOutput seam.

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logOutputMu serialises the swap of logOutput around newAdapter, which
// reads it once, so that parallel tests each get their own buffer.
var logOutputMu sync.Mutex

type harness struct {
	t      *testing.T
	a      *adapter
	store  string      // the file store's directory
	opener seal.Opener // opens the records' sealed keys
	logs   *syncBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(t.TempDir(), "store")
	env := map[string]string{
		"CSRFN_STORE":      "file://" + store,
		"CSRFN_MASTER_KEY": base64.StdEncoding.EncodeToString(key),
	}
	opener, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logOutputMu.Lock()
	saved := logOutput
	logOutput = logs
	a, err := newAdapter(context.Background(), func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
	logOutput = saved
	logOutputMu.Unlock()
	if err != nil {
		t.Fatalf("newAdapter: %v", err)
	}
	return &harness{t: t, a: a, store: store, opener: opener, logs: logs}
}

// breakStore replaces the store's directory by a plain file, so that every
// later Create fails (root ignores permissions, so chmod would not do).
func (h *harness) breakStore() {
	h.t.Helper()
	if err := os.RemoveAll(h.store); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.store, []byte("not a directory\n"), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// handle invokes the handler as the FC runtime would, with a platform
// request id in the context. A panic fails the test.
func (h *harness) handle(platformID string, payload []byte) (out any, err error) {
	h.t.Helper()
	ctx := fccontext.NewContext(context.Background(), &fccontext.FcContext{
		RequestID: platformID,
		Region:    "cn-hangzhou",
		AccountId: "1234567890123456",
	})
	defer func() {
		if r := recover(); r != nil {
			h.t.Fatalf("Handle panicked on %.200q: %v", payload, r)
		}
	}()
	return h.a.Handle(ctx, json.RawMessage(payload))
}

type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

func (l logLine) num(k string) int { f, _ := l[k].(float64); return int(f) }

func (h *harness) logLines() []logLine {
	h.t.Helper()
	var out []logLine
	for _, s := range strings.Split(h.logs.String(), "\n") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			h.t.Fatalf("log line is not JSON: %q", s)
		}
		out = append(out, l)
	}
	return out
}

// checkLogs asserts one log line per object, each carrying the platform
// request id beside the object's own RequestId, and its status and code.
func (h *harness) checkLogs(platformID string, objs []apiObject, statuses []int) {
	h.t.Helper()
	lines := h.logLines()
	if len(lines) != len(objs) {
		h.t.Errorf("%d log lines, want %d:\n%s", len(lines), len(objs), h.logs.String())
	}
	byID := map[string]logLine{}
	for _, l := range lines {
		if got := l.str("PlatformRequestId"); got != platformID {
			h.t.Errorf("log line has PlatformRequestId %q, want %q: %v", got, platformID, l)
		}
		if l.str("msg") != "request" {
			h.t.Errorf("log line msg %q, want request", l.str("msg"))
		}
		byID[l.str("RequestId")] = l
	}
	for i, o := range objs {
		l, ok := byID[o.RequestId]
		if !ok {
			h.t.Errorf("no log line with RequestId %s", o.RequestId)
			continue
		}
		if got := l.num("Status"); got != statuses[i] {
			h.t.Errorf("log line of %s: Status %d, want %d", o.RequestId, got, statuses[i])
		}
		if got := l.str("Code"); got != o.Code {
			h.t.Errorf("log line of %s: Code %q, want %q", o.RequestId, got, o.Code)
		}
		if got := l.str("PubMd5"); got != o.PubMd5 {
			h.t.Errorf("log line of %s: PubMd5 %q, want %q", o.RequestId, got, o.PubMd5)
		}
	}
}

// recordNames lists the records in the store.
func (h *harness) recordNames() []string {
	h.t.Helper()
	ents, err := os.ReadDir(h.store)
	if err != nil {
		h.t.Fatalf("reading the store: %v", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// loadRecord reads <pubMd5>.json, checks it and opens its sealed key.
func (h *harness) loadRecord(pubMd5 string) *record.Record {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.store, record.Name(pubMd5)))
	if err != nil {
		h.t.Errorf("record of %s: %v", pubMd5, err)
		return nil
	}
	r, err := record.Unmarshal(data)
	if err != nil {
		h.t.Errorf("record of %s: %v", pubMd5, err)
		return nil
	}
	if _, err := record.OpenKey(context.Background(), r, h.opener); err != nil {
		h.t.Errorf("record of %s: sealed key: %v", pubMd5, err)
	}
	return r
}

// ---------------------------------------------------------------------------
// API objects, as JSON or XML.

type apiObject struct {
	Root       string   // XML root element; "" for JSON
	Keys       []string // field names, sorted
	RequestId  string
	HostId     string
	Code       string
	Message    string
	PubMd5     string
	Csr        string
	CommonName string
}

func (o *apiObject) set(k, v string) {
	o.Keys = append(o.Keys, k)
	switch k {
	case "RequestId":
		o.RequestId = v
	case "HostId":
		o.HostId = v
	case "Code":
		o.Code = v
	case "Message":
		o.Message = v
	case "PubMd5":
		o.PubMd5 = v
	case "Csr":
		o.Csr = v
	case "CommonName":
		o.CommonName = v
	}
}

func decodeJSONObject(t *testing.T, raw []byte) apiObject {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("API object is not a JSON object: %v: %.300s", err, raw)
	}
	var o apiObject
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Errorf("field %s is not a string: %s", k, v)
		}
		o.set(k, s)
	}
	sort.Strings(o.Keys)
	return o
}

func decodeXMLObject(t *testing.T, raw []byte) apiObject {
	t.Helper()
	if !bytes.HasPrefix(raw, []byte(xml.Header)) {
		t.Errorf("XML body does not start with the XML declaration: %.80q", raw)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	var o apiObject
	depth := 0
	var cur string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("XML body: %v: %.300s", err, raw)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				o.Root = tk.Name.Local
			case 2:
				cur = tk.Name.Local
				text.Reset()
			default:
				t.Errorf("XML body nests deeper than two levels: %s", tk.Name.Local)
			}
		case xml.CharData:
			if depth == 2 {
				text.Write(tk)
			}
		case xml.EndElement:
			if depth == 2 {
				o.set(cur, text.String())
			}
			depth--
		}
	}
	sort.Strings(o.Keys)
	return o
}

// ---------------------------------------------------------------------------
// Expectations.

// want is the expected outcome of one request.
type want struct {
	Code    string            // "" for a success
	CN      string            // normalised CommonName; "" = not checked
	SANs    []string          // exact SANs in order (DNS names and IPs); nil = not checked
	Alg     keys.Algorithm    // "" = not checked
	Subject map[string]string // C, ST, L, O, OU, emailAddress
	XMLRoot string            // XML body expected, with this root ("Error" for errors)
	Msg     string            // exact error message; "" = not checked
	Generic bool              // accept whatever outcome, check its form only
}

func statusOf(code string) int {
	switch {
	case code == "":
		return 200
	case code == apierr.CodeActionNotFound:
		return 404
	case code == apierr.CodeUnsupportedHTTPMethod:
		return 405
	case code == apierr.CodeTooLarge:
		return 413
	case strings.HasPrefix(code, "Internal."):
		return 500
	}
	return 400
}

var requestIDRE = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

var (
	successKeys = []string{"CommonName", "Csr", "PubMd5", "RequestId"}
	errorKeys   = []string{"Code", "HostId", "Message", "RequestId"}
)

// checkObject checks an API object against w: a success is verified down to
// its CSR and its stored record.
func (h *harness) checkObject(o apiObject, w want) {
	h.t.Helper()
	t := h.t
	if !requestIDRE.MatchString(o.RequestId) {
		t.Errorf("RequestId %q is not an upper-case UUID v4", o.RequestId)
	}
	if w.Generic {
		w = want{Code: o.Code}
	}
	if w.Code != "" {
		if !slices.Equal(o.Keys, errorKeys) {
			t.Errorf("error object has fields %v, want %v (%+v)", o.Keys, errorKeys, o)
		}
		if o.Code != w.Code {
			t.Errorf("Code %q (%s), want %q", o.Code, o.Message, w.Code)
		}
		if o.Message == "" || o.HostId == "" {
			t.Errorf("error object without Message or HostId: %+v", o)
		}
		if w.Msg != "" && o.Message != w.Msg {
			t.Errorf("Message %q, want %q", o.Message, w.Msg)
		}
		return
	}
	if !slices.Equal(o.Keys, successKeys) {
		t.Errorf("success object has fields %v, want %v (Code %q: %s)", o.Keys, successKeys, o.Code, o.Message)
		return
	}
	h.checkCSR(o, w)
}

var subjectOIDs = map[string]asn1.ObjectIdentifier{
	"C":            {2, 5, 4, 6},
	"ST":           {2, 5, 4, 8},
	"L":            {2, 5, 4, 7},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"CN":           {2, 5, 4, 3},
	"emailAddress": {1, 2, 840, 113549, 1, 9, 1},
}

// checkCSR parses the CSR, checks its signature, PubMd5, names, key and
// subject, and that its record is in the store and opens.
func (h *harness) checkCSR(o apiObject, w want) *x509.CertificateRequest {
	h.t.Helper()
	t := h.t
	if !strings.HasSuffix(o.Csr, "\n") {
		t.Errorf("Csr is not newline-terminated")
	}
	block, rest := pem.Decode([]byte(o.Csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("Csr is not one PEM CERTIFICATE REQUEST: %.100q", o.Csr)
		return nil
	}
	cr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Errorf("ParseCertificateRequest: %v", err)
		return nil
	}
	if err := cr.CheckSignature(); err != nil {
		t.Errorf("CheckSignature: %v", err)
	}
	sum := md5.Sum(cr.RawSubjectPublicKeyInfo)
	if got := hex.EncodeToString(sum[:]); got != o.PubMd5 {
		t.Errorf("PubMd5 %s, but the CSR's key has %s", o.PubMd5, got)
	}
	if w.CN != "" && o.CommonName != w.CN {
		t.Errorf("CommonName %q, want %q", o.CommonName, w.CN)
	}
	if cr.Subject.CommonName != o.CommonName {
		t.Errorf("CSR subject CN %q, response CommonName %q", cr.Subject.CommonName, o.CommonName)
	}
	var ips []string
	for _, ip := range cr.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Contains(cr.DNSNames, o.CommonName) && !slices.Contains(ips, o.CommonName) {
		t.Errorf("CommonName %q is not among the SANs %v %v", o.CommonName, cr.DNSNames, ips)
	}
	if w.SANs != nil {
		var wantDNS, wantIP []string
		for _, s := range w.SANs {
			if net.ParseIP(s) != nil {
				wantIP = append(wantIP, s)
			} else {
				wantDNS = append(wantDNS, s)
			}
		}
		if !slices.Equal(cr.DNSNames, wantDNS) || !slices.Equal(ips, wantIP) {
			t.Errorf("SANs DNS %v IP %v, want DNS %v IP %v", cr.DNSNames, ips, wantDNS, wantIP)
		}
	}
	alg, err := keys.AlgorithmOf(cr.PublicKey)
	if err != nil {
		t.Errorf("CSR key: %v", err)
	}
	if w.Alg != "" && alg != w.Alg {
		t.Errorf("key algorithm %s, want %s", alg, w.Alg)
	}
	if alg != "" && cr.SignatureAlgorithm != alg.SignatureAlgorithm() {
		t.Errorf("signature %v for a %s key, want %v", cr.SignatureAlgorithm, alg, alg.SignatureAlgorithm())
	}
	for name, v := range w.Subject {
		var got []string
		for _, atv := range cr.Subject.Names {
			if atv.Type.Equal(subjectOIDs[name]) {
				got = append(got, fmt.Sprint(atv.Value))
			}
		}
		if len(got) != 1 || got[0] != v {
			t.Errorf("subject %s = %q, want %q", name, got, v)
		}
	}
	if r := h.loadRecord(o.PubMd5); r != nil {
		if r.PubMd5 != o.PubMd5 || r.Csr != o.Csr || r.RequestId != o.RequestId || r.CommonName != o.CommonName {
			t.Errorf("record %s does not match the response: record {%s %s %s}, response {%s %s %s}",
				o.PubMd5, r.PubMd5, r.RequestId, r.CommonName, o.PubMd5, o.RequestId, o.CommonName)
		}
	}
	return cr
}

// ---------------------------------------------------------------------------
// Outputs.

type httpResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func header(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// asHTTP checks that out is an HTTP trigger response, and that it encodes
// to exactly {statusCode, headers, isBase64Encoded, body}.
func asHTTP(t *testing.T, out any) httpResult {
	t.Helper()
	r, ok := out.(events.HTTPTriggerResponse)
	if !ok {
		t.Fatalf("output is %T, want events.HTTPTriggerResponse", out)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"body", "headers", "isBase64Encoded", "statusCode"}; !slices.Equal(keys, want) {
		t.Errorf("response fields %v, want %v", keys, want)
	}
	if r.IsBase64Encoded {
		t.Errorf("response is marked base64")
	}
	return httpResult{r.StatusCode, header(r.Headers), []byte(r.Body)}
}

// checkHTTP checks status, headers and body against w and returns the
// body's object.
func (h *harness) checkHTTP(res httpResult, w want) apiObject {
	h.t.Helper()
	t := h.t
	isXML := w.XMLRoot != ""
	if w.Generic {
		isXML = strings.HasPrefix(res.Header.Get("Content-Type"), "application/xml")
	}
	ct := "application/json; charset=utf-8"
	if isXML {
		ct = "application/xml; charset=utf-8"
	}
	if got := res.Header.Get("Content-Type"); got != ct {
		t.Errorf("Content-Type %q, want %q", got, ct)
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	var o apiObject
	if isXML {
		o = decodeXMLObject(t, res.Body)
	} else {
		o = decodeJSONObject(t, res.Body)
	}
	if got := res.Header.Get("X-Acs-Request-Id"); got != o.RequestId {
		t.Errorf("X-Acs-Request-Id %q, body RequestId %q", got, o.RequestId)
	}
	if w.Generic {
		if res.Status != statusOf(o.Code) {
			t.Errorf("status %d for Code %q", res.Status, o.Code)
		}
	} else if want := statusOf(w.Code); res.Status != want {
		t.Errorf("status %d, want %d (body %.300s)", res.Status, want, res.Body)
	}
	if isXML && !w.Generic {
		if o.Root != w.XMLRoot {
			t.Errorf("XML root %q, want %q", o.Root, w.XMLRoot)
		}
	}
	h.checkObject(o, w)
	return o
}

// directObject checks that out is the API object of one request.
func directObject(t *testing.T, out any) apiObject {
	t.Helper()
	switch out.(type) {
	case *service.Response, *service.ErrorBody:
	default:
		t.Fatalf("output is %T, want *service.Response or *service.ErrorBody", out)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSONObject(t, raw)
}

// batchObjects checks that out is {RequestId, Results:[…]}.
func batchObjects(t *testing.T, out any) (string, []apiObject) {
	t.Helper()
	if _, ok := out.(*invoke.Batch); !ok {
		t.Fatalf("output is %T, want *invoke.Batch", out)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return decodeBatch(t, raw)
}

func decodeBatch(t *testing.T, raw []byte) (string, []apiObject) {
	t.Helper()
	var b map[string]json.RawMessage
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("batch is not a JSON object: %v: %.300s", err, raw)
	}
	if len(b) != 2 || b["RequestId"] == nil || b["Results"] == nil {
		t.Fatalf("batch fields: %.300s; want RequestId and Results", raw)
	}
	var id string
	var items []json.RawMessage
	if err := json.Unmarshal(b["RequestId"], &id); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b["Results"], &items); err != nil {
		t.Fatal(err)
	}
	if !requestIDRE.MatchString(id) {
		t.Errorf("batch RequestId %q is not an upper-case UUID v4", id)
	}
	objs := make([]apiObject, len(items))
	for i, it := range items {
		objs[i] = decodeJSONObject(t, it)
	}
	return id, objs
}

// functionError checks that err is the SDK's own error type, which the
// runtime reports as is, and returns its type and message.
func functionError(t *testing.T, err error) (string, string) {
	t.Helper()
	ie, ok := err.(messages.InvokeResponse_Error)
	if !ok {
		t.Fatalf("error is %T (%v), want messages.InvokeResponse_Error", err, err)
	}
	return ie.Type, ie.Message
}

// noInternals asserts that s carries no internal cause.
func (h *harness) noInternals(s string) {
	h.t.Helper()
	for _, bad := range []string{h.store, filepath.Dir(h.store), "keystore", "not a directory", "no such file", "link", ".json"} {
		if strings.Contains(s, bad) {
			h.t.Errorf("%q leaks internal text %q", s, bad)
		}
	}
}

func statuses(objs []apiObject) []int {
	out := make([]int, len(objs))
	for i, o := range objs {
		out[i] = statusOf(o.Code)
	}
	return out
}

// ---------------------------------------------------------------------------
// Sample events.

const samplesDir = "../../deploy/events/alibaba-fc"

// kindByName is the naming rule of the sample files.
func kindByName(name string) (envelope, bool) {
	for _, k := range []struct {
		prefix string
		kind   envelope
	}{
		{"http-", envHTTP},
		{"timer-", envTimer},
		{"eventbridge", envCloudEvent},
		{"direct-", envDirect},
	} {
		if strings.HasPrefix(name, k.prefix) {
			return k.kind, true
		}
	}
	return 0, false
}

type sampleWant struct {
	items []want // one per request: HTTP and one-request invokes 1, batches n
	batch bool   // the output is {RequestId, Results}
}

var sampleWants = map[string]sampleWant{
	"direct-batch.json": {batch: true, items: []want{
		{CN: "d1.example.com", SANs: []string{"d1.example.com"}, Alg: keys.ECP256},
		{Code: apierr.CodeMissingParameter},
	}},
	"direct-one.json": {items: []want{{
		CN: "direct.example.com", SANs: []string{"direct.example.com"}, Alg: keys.RSA2048,
		Subject: map[string]string{"C": "CN", "ST": "Zhejiang", "L": "Hangzhou", "O": "Alibaba Inc", "OU": "Aliyun CDN"},
	}}},
	"eventbridge.json": {items: []want{{
		CN: "eb.example.com", SANs: []string{"eb.example.com", "api.eb.example.com"}, Alg: keys.ECP256,
	}}},
	"http-form-base64.json": {items: []want{{
		CN: "cdn.example.com", SANs: []string{"cdn.example.com"}, Alg: keys.RSA2048,
		Subject: map[string]string{"OU": "CDN", "O": "Alibaba Inc"},
		XMLRoot: "CreateCdnCertificateSigningRequestResponse",
	}}},
	"http-get-query.json": {items: []want{{
		CN: "get.example.com", SANs: []string{"get.example.com", "2001:db8::20"}, Alg: keys.RSA2048,
		Subject: map[string]string{"C": "CN"},
	}}},
	"http-json.json": {items: []want{{
		CN: "xn--fsqu00a.example.cn", SANs: []string{"xn--fsqu00a.example.cn", "www.xn--fsqu00a.example.cn", "203.0.113.20"}, Alg: keys.ECP256,
	}}},
	"timer-batch.json": {batch: true, items: []want{
		{CN: "t1.example.com", SANs: []string{"t1.example.com"}, Alg: keys.ECP256},
		{CN: "t2.example.com", SANs: []string{"t2.example.com"}, Alg: keys.ECP384},
	}},
	"timer-one.json": {items: []want{{
		CN: "timer.example.com", SANs: []string{"timer.example.com"}, Alg: keys.ECP256,
	}}},
}

func isBatch(out any) bool { _, ok := out.(*invoke.Batch); return ok }

// TestSampleEvents runs every file of deploy/events/alibaba-fc: detected
// envelope, output type, status and body, CSR, stored record and log line.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events in %s (%v)", samplesDir, err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			kind, ok := kindByName(name)
			if !ok {
				t.Fatalf("sample %s does not follow the naming rule of kindByName", name)
			}
			if got, _ := detect(payload); got != kind {
				t.Errorf("detect = %d, want %d", got, kind)
			}
			sw, ok := sampleWants[name]
			if !ok {
				t.Errorf("sample %s has no entry in sampleWants; checking its form only", name)
				sw = sampleWant{items: []want{{Generic: true}}}
			}
			h := newHarness(t)
			pid := "fc-req-" + strings.TrimSuffix(name, ".json")
			out, err := h.handle(pid, payload)
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			if kind == envHTTP {
				res := asHTTP(t, out)
				if len(sw.items) != 1 {
					t.Fatalf("sampleWants[%s]: an HTTP sample has one item", name)
				}
				o := h.checkHTTP(res, sw.items[0])
				h.checkLogs(pid, []apiObject{o}, []int{res.Status})
				return
			}
			if sw.batch || (sw.items[0].Generic && isBatch(out)) {
				_, objs := batchObjects(t, out)
				if !sw.items[0].Generic {
					if len(objs) != len(sw.items) {
						t.Fatalf("%d results, want %d", len(objs), len(sw.items))
					}
					for i, o := range objs {
						h.checkObject(o, sw.items[i])
					}
				}
				h.checkLogs(pid, objs, statuses(objs))
				return
			}
			o := directObject(t, out)
			h.checkObject(o, sw.items[0])
			h.checkLogs(pid, []apiObject{o}, statuses([]apiObject{o}))
		})
	}
	for name := range sampleWants {
		if !seen[name] {
			t.Errorf("sampleWants has %s, which is not in %s", name, samplesDir)
		}
	}
}

// ---------------------------------------------------------------------------
// Malformed envelopes and non-HTTP payloads.

// TestMalformedEnvelopes feeds broken and foreign payloads: each gives a 4xx
// API object, never a panic or a function error.
func TestMalformedEnvelopes(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		kind    envelope
		code    string
	}{
		{"rawPath with string requestContext", `{"version":"v1","rawPath":"/","requestContext":"oops","body":"CommonName=x.example.com"}`, envDirect, apierr.CodeBody},
		{"rawPath with array requestContext", `{"rawPath":"/","requestContext":[1],"queryParameters":{"CommonName":"x.example.com"}}`, envDirect, apierr.CodeBody},
		{"requestContext.http a string", `{"rawPath":"/","requestContext":{"http":"POST"}}`, envDirect, apierr.CodeBody},
		{"HTTP with object body", `{"version":"v1","rawPath":"/","requestContext":{"http":{"method":"POST"}},"body":{"CommonName":"x.example.com"}}`, envHTTP, apierr.CodeBody},
		{"HTTP with headers as a list", `{"version":"v1","rawPath":"/","requestContext":{"http":{"method":"POST"}},"headers":["Host: x"],"body":"CommonName=x.example.com"}`, envHTTP, apierr.CodeBody},
		{"HTTP with multi-valued query", `{"version":"v1","rawPath":"/","requestContext":{"http":{"method":"GET"}},"queryParameters":{"CommonName":["x.example.com"]}}`, envHTTP, apierr.CodeBody},
		{"HTTP with string isBase64Encoded", `{"version":"v1","rawPath":"/","requestContext":{"http":{"method":"POST"}},"body":"e30=","isBase64Encoded":"true"}`, envHTTP, apierr.CodeBody},
		{"timer with object payload", `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"t","payload":{"CommonName":"x.example.com"}}`, envDirect, apierr.CodeBody},
		{"timer with empty payload", `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"t","payload":""}`, envTimer, apierr.CodeBody},
		{"timer with text payload", `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"t","payload":"renew everything"}`, envTimer, apierr.CodeBody},
		{"timer with array payload", `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"t","payload":"[{\"CommonName\":\"x.example.com\"}]"}`, envTimer, apierr.CodeBody},
		{"timer with null payload", `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"t","payload":null}`, envDirect, apierr.CodeBody},
		{"CloudEvent with null data", `{"specversion":"1.0","id":"1","source":"acs.eventbridge","type":"t","data":null}`, envCloudEvent, apierr.CodeBody},
		{"CloudEvent with empty data", `{"specversion":"1.0","id":"1","source":"acs.eventbridge","type":"t","data":{}}`, envCloudEvent, apierr.CodeBody},
		{"CloudEvent with numeric data", `{"specversion":"1.0","id":"1","source":"acs.eventbridge","type":"t","data":7}`, envCloudEvent, apierr.CodeBody},
		{"CloudEvent with text data", `{"specversion":"1.0","id":"1","source":"acs.eventbridge","type":"t","data":"CommonName=x.example.com"}`, envCloudEvent, apierr.CodeBody},
		{"CloudEvent with numeric specversion", `{"specversion":1,"data":{"CommonName":"x.example.com"}}`, envDirect, apierr.CodeBody},
		{"JSON array", `[{"CommonName":"x.example.com"}]`, envDirect, apierr.CodeBody},
		{"JSON string", `"{\"CommonName\":\"x.example.com\"}"`, envDirect, apierr.CodeBody},
		{"JSON number", `42`, envDirect, apierr.CodeBody},
		{"JSON null", `null`, envDirect, apierr.CodeBody},
		{"JSON false", `false`, envDirect, apierr.CodeBody},
		{"invalid JSON", `{"CommonName": "x.example.com"`, envDirect, apierr.CodeBody},
		{"empty payload", ``, envDirect, apierr.CodeBody},
		{"empty object", `{}`, envDirect, apierr.CodeBody},
		{"object with no known keys", `{"hello":"world","commonName":"x.example.com"}`, envDirect, apierr.CodeBody},
		{"blank CommonName", `{"CommonName":"  "}`, envDirect, apierr.CodeMissingParameter},
		{"null CommonName", `{"CommonName":null,"KeyAlgorithm":"EC_prime256v1"}`, envDirect, apierr.CodeMissingParameter},
		{"numeric CommonName", `{"CommonName":5}`, envDirect, apierr.CodeBody},
		{"trailing data", `{"CommonName":"x.example.com"} {}`, envDirect, apierr.CodeBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got, _ := detect([]byte(c.payload)); got != c.kind {
				t.Errorf("detect = %d, want %d", got, c.kind)
			}
			h := newHarness(t)
			out, err := h.handle("pid-malformed", []byte(c.payload))
			if err != nil {
				t.Fatalf("Handle returned an error (a function error) for a 4xx: %v", err)
			}
			o := directObject(t, out)
			h.checkObject(o, want{Code: c.code})
			if o.HostId != "csrfn" {
				t.Errorf("HostId %q, want csrfn", o.HostId)
			}
			h.checkLogs("pid-malformed", []apiObject{o}, []int{statusOf(c.code)})
			if names := h.recordNames(); len(names) != 0 {
				t.Errorf("records stored for a refused request: %v", names)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// HTTP bodies and query strings.

// httpEvent builds an FC 3.0 HTTP trigger event. query holds decoded
// values, one per name, as FC delivers them. host "" leaves out the Host
// header (the domain name then stands in).
func httpEvent(method string, query map[string]string, host, contentType string, body *string, b64 bool) []byte {
	headers := map[string]string{"User-Agent": "test", "X-Forwarded-Proto": "https"}
	if host != "" {
		headers["Host"] = host
	}
	if contentType != "" {
		headers["Content-Type"] = contentType
	}
	if query == nil {
		query = map[string]string{}
	}
	ev := map[string]any{
		"version":         "v1",
		"rawPath":         "/",
		"headers":         headers,
		"queryParameters": query,
		"isBase64Encoded": b64,
		"requestContext": map[string]any{
			"accountId":    "1234567890123456",
			"domainName":   "csrfn-test.cn-hangzhou.fcapp.run",
			"domainPrefix": "csrfn-test",
			"http":         map[string]any{"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.1"},
			"requestId":    "1-0000-0000",
			"time":         "2026-12-04T20:40:00Z",
			"timeEpoch":    "1796416800000",
		},
	}
	if body != nil {
		ev["body"] = *body
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return raw
}

func ptr(s string) *string { return &s }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// formOfSize is a valid form body of exactly n bytes.
func formOfSize(n int) string {
	s := "CommonName=limit.example.com&KeyAlgorithm=EC_prime256v1&Pad="
	return s + strings.Repeat("p", n-len(s))
}

// TestHTTPBodies checks base64 bodies, missing bodies, the 64 KiB limit and
// the other HTTP refusals of the HTTP trigger.
func TestHTTPBodies(t *testing.T) {
	const limit = apierr.MaxBodyBytes
	tooLarge := strings.Repeat("a", limit+1)
	msgMissing := `The input parameter "CommonName" that is mandatory for processing this request is not supplied.`
	cases := []struct {
		name   string
		method string
		query  map[string]string
		ct     string
		body   *string
		b64    bool
		w      want
	}{
		{"base64 JSON", "POST", nil, "application/json", ptr(b64(`{"CommonName":"B64.Example.com.","KeyAlgorithm":"EC_prime256v1"}`)), true,
			want{CN: "b64.example.com", SANs: []string{"b64.example.com"}, Alg: keys.ECP256}},
		{"base64 form", "POST", nil, "application/x-www-form-urlencoded", ptr(b64("CommonName=form.example.com&SANs=a.form.example.com%2C198.51.100.1&KeyAlgorithm=EC_prime256v1")), true,
			want{CN: "form.example.com", SANs: []string{"form.example.com", "a.form.example.com", "198.51.100.1"}, Alg: keys.ECP256}},
		{"base64 XML answer", "POST", map[string]string{"Format": "XML"}, "application/json", ptr(b64(`{"CommonName":"xml.example.com","KeyAlgorithm":"EC_prime256v1"}`)), true,
			want{CN: "xml.example.com", Alg: keys.ECP256, XMLRoot: "CreateDcdnCertificateSigningRequestResponse"}},
		{"plain JSON", "POST", nil, "application/json; charset=utf-8", ptr(`{"CommonName":"plain.example.com","SANs":["198.51.100.2"],"KeyAlgorithm":"EC_prime256v1"}`), false,
			want{CN: "plain.example.com", SANs: []string{"plain.example.com", "198.51.100.2"}, Alg: keys.ECP256}},
		{"invalid base64", "POST", nil, "application/json", ptr("{not base64!}"), true,
			want{Code: apierr.CodeBody}},
		{"truncated base64", "POST", nil, "application/json", ptr("eyJDb21tb25OYW1lI"), true,
			want{Code: apierr.CodeBody}},
		{"missing body", "POST", nil, "", nil, false,
			want{Code: apierr.CodeMissingParameter, Msg: msgMissing}},
		{"empty body GET", "GET", nil, "", ptr(""), false,
			want{Code: apierr.CodeMissingParameter, Msg: msgMissing}},
		{"empty base64 body", "POST", nil, "application/json", ptr(""), true,
			want{Code: apierr.CodeMissingParameter, Msg: msgMissing}},
		{"oversize raw", "POST", nil, "application/x-www-form-urlencoded", ptr(tooLarge), false,
			want{Code: apierr.CodeTooLarge}},
		{"oversize base64", "POST", nil, "application/x-www-form-urlencoded", ptr(b64(tooLarge)), true,
			want{Code: apierr.CodeTooLarge}},
		{"oversize XML error", "POST", map[string]string{"Format": "XML"}, "", ptr(tooLarge), false,
			want{Code: apierr.CodeTooLarge, XMLRoot: "Error"}},
		{"limit raw", "POST", nil, "application/x-www-form-urlencoded", ptr(formOfSize(limit)), false,
			want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"limit base64", "POST", nil, "application/x-www-form-urlencoded", ptr(b64(formOfSize(limit))), true,
			want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"JSON array body", "POST", nil, "application/json", ptr(`[{"CommonName":"x.example.com"}]`), false,
			want{Code: apierr.CodeBody}},
		{"unsupported content type", "POST", nil, "text/plain", ptr("CommonName=x.example.com"), false,
			want{Code: apierr.CodeBody}},
		{"method not allowed", "PUT", map[string]string{"CommonName": "x.example.com"}, "", nil, false,
			want{Code: apierr.CodeUnsupportedHTTPMethod}},
		{"unknown action", "GET", map[string]string{"Action": "DescribeCdnDomain", "CommonName": "x.example.com"}, "", nil, false,
			want{Code: apierr.CodeActionNotFound, Msg: apierr.MsgActionNotFound}},
	}
	h := newHarness(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := *h
			h.t = t
			payload := httpEvent(c.method, c.query, "h.example", c.ct, c.body, c.b64)
			if got, _ := detect(payload); got != envHTTP {
				t.Fatalf("detect = %d, want %d", got, envHTTP)
			}
			out, err := h.handle("pid-body", payload)
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			res := asHTTP(t, out)
			o := h.checkHTTP(res, c.w)
			if c.w.Code != "" && o.HostId != "h.example" {
				t.Errorf("HostId %q, want the request's Host h.example", o.HostId)
			}
			if c.w.Code == apierr.CodeTooLarge && !strings.Contains(o.Message, "64 KiB") {
				t.Errorf("413 message %q does not state the limit", o.Message)
			}
			if c.w.Code == apierr.CodeUnsupportedHTTPMethod && res.Header.Get("Allow") != "GET, POST" {
				t.Errorf("Allow %q, want GET, POST", res.Header.Get("Allow"))
			}
		})
	}
	t.Run("no Host header", func(t *testing.T) {
		h := *h
		h.t = t
		out, err := h.handle("pid-body", httpEvent("GET", nil, "", "", nil, false))
		if err != nil {
			t.Fatal(err)
		}
		o := h.checkHTTP(asHTTP(t, out), want{Code: apierr.CodeMissingParameter})
		if o.HostId != "csrfn-test.cn-hangzhou.fcapp.run" {
			t.Errorf("HostId %q, want the trigger's domain name", o.HostId)
		}
	})
}

// TestQueryEncoding checks that the decoded query map FC delivers arrives
// intact, whatever characters the values hold.
func TestQueryEncoding(t *testing.T) {
	const (
		state = "Rhein+Main & 100% Süd"
		city  = "Bad Homburg; v.d.H."
	)
	h := newHarness(t)
	query := map[string]string{
		"CommonName": "q.example.com", "SANs": "a.q.example.com,10.1.2.3",
		"State": state, "City": city, "KeyAlgorithm": "EC_prime256v1", "Organization": "A=B&C",
	}
	out, err := h.handle("pid-query", httpEvent("GET", query, "h.example", "", ptr(""), false))
	if err != nil {
		t.Fatal(err)
	}
	h.checkHTTP(asHTTP(t, out), want{
		CN: "q.example.com", SANs: []string{"q.example.com", "a.q.example.com", "10.1.2.3"}, Alg: keys.ECP256,
		Subject: map[string]string{"ST": state, "L": city, "O": "A=B&C"},
	})
}

// ---------------------------------------------------------------------------
// Outcome rules.

// TestHTTPServerError: with a failing store the HTTP trigger still answers
// an HTTP 500 (never a Go error) whose body is Internal.Error without
// internal text; the cause goes to the log only.
func TestHTTPServerError(t *testing.T) {
	for _, format := range []string{"JSON", "XML"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			payload := httpEvent("POST", map[string]string{"Format": format}, "h.example", "application/json",
				ptr(`{"CommonName":"fail.example.com","KeyAlgorithm":"EC_prime256v1"}`), false)
			out, err := h.handle("pid-5xx", payload)
			if err != nil {
				t.Fatalf("Handle returned an error for an HTTP trigger: %v", err)
			}
			res := asHTTP(t, out)
			w := want{Code: apierr.CodeInternal, Msg: apierr.MsgInternal}
			if format == "XML" {
				w.XMLRoot = "Error"
			}
			o := h.checkHTTP(res, w)
			h.noInternals(string(res.Body))
			if o.Csr != "" || o.PubMd5 != "" {
				t.Errorf("a CSR was returned although its key was not stored")
			}
			lines := h.logLines()
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l.str("level") != "ERROR" || l.str("Cause") == "" || l.str("PlatformRequestId") != "pid-5xx" || l.str("RequestId") != o.RequestId {
				t.Errorf("log line %v: want level ERROR, a Cause, PlatformRequestId pid-5xx and RequestId %s", l, o.RequestId)
			}
		})
	}
}

// checkFunctionErrorObject checks a 5xx function error whose message is the
// JSON of an error object with code.
func (h *harness) checkFunctionErrorObject(err error, code string) apiObject {
	h.t.Helper()
	typ, msg := functionError(h.t, err)
	if typ != code {
		h.t.Errorf("error Type %q, want %q", typ, code)
	}
	h.noInternals(msg)
	o := decodeJSONObject(h.t, []byte(msg))
	h.checkObject(o, want{Code: code, Msg: apierr.MsgInternal})
	return o
}

func timerEvent(payload string) string {
	p, _ := json.Marshal(payload)
	return `{"triggerTime":"2026-12-04T20:40:00Z","triggerName":"renewal","payload":` + string(p) + `}`
}

func cloudEvent(data string) string {
	return `{"id":"1","source":"acs.eventbridge","specversion":"1.0","type":"eventbridge:Events:HTTPEvent","datacontenttype":"application/json;charset=utf-8","time":"2026-12-04T20:40:00.000Z","aliyunregionid":"cn-hangzhou","data":` + data + `}`
}

func cloudEventStringData(data string) string {
	d, _ := json.Marshal(data)
	return cloudEvent(string(d))
}

// TestNonHTTPOutcomes: for direct, timer and EventBridge invokes a 4xx is a
// normal result and a 5xx a function error of the SDK's type whose Type is
// the API code and whose Message is the API object's JSON.
func TestNonHTTPOutcomes(t *testing.T) {
	good := `{"CommonName":"five.example.com","KeyAlgorithm":"EC_prime256v1"}`
	bad := `{"CommonName":"*.co.uk","KeyAlgorithm":"EC_prime256v1"}`
	batch := `{"Requests":[` + good + `,` + bad + `]}`
	wraps := []struct {
		name string
		wrap func(string) string
	}{
		{"direct", func(s string) string { return s }},
		{"timer", timerEvent},
		{"CloudEvent", cloudEvent},
		{"CloudEvent string data", cloudEventStringData},
	}
	for _, w := range wraps {
		t.Run("success "+w.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			out, err := h.handle("pid-ok", []byte(w.wrap(good)))
			if err != nil {
				t.Fatal(err)
			}
			o := directObject(t, out)
			h.checkObject(o, want{CN: "five.example.com", SANs: []string{"five.example.com"}, Alg: keys.ECP256})
			h.checkLogs("pid-ok", []apiObject{o}, []int{200})
		})
		t.Run("4xx "+w.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			out, err := h.handle("pid-4xx", []byte(w.wrap(bad)))
			if err != nil {
				t.Fatalf("Handle error for a 4xx: %v", err)
			}
			o := directObject(t, out)
			h.checkObject(o, want{Code: apierr.CodeInvalidParameter})
			h.checkLogs("pid-4xx", []apiObject{o}, []int{400})
		})
		t.Run("5xx "+w.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			_, err := h.handle("pid-5xx", []byte(w.wrap(good)))
			o := h.checkFunctionErrorObject(err, apierr.CodeInternal)
			h.checkLogs("pid-5xx", []apiObject{o}, []int{500})
		})
		t.Run("5xx batch "+w.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			_, err := h.handle("pid-5xx", []byte(w.wrap(batch)))
			typ, msg := functionError(t, err)
			if typ != apierr.CodeInternal {
				t.Errorf("error Type %q, want %s", typ, apierr.CodeInternal)
			}
			h.noInternals(msg)
			_, objs := decodeBatch(t, []byte(msg))
			if len(objs) != 2 {
				t.Fatalf("%d results in the error message, want 2", len(objs))
			}
			h.checkObject(objs[0], want{Code: apierr.CodeInternal, Msg: apierr.MsgInternal})
			h.checkObject(objs[1], want{Code: apierr.CodeInvalidParameter})
			h.checkLogs("pid-5xx", objs, []int{500, 400})
		})
	}
	t.Run("country", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		out, err := h.handle("pid-4xx", []byte(timerEvent(`{"CommonName":"c.example.com","Country":"CHN"}`)))
		if err != nil {
			t.Fatal(err)
		}
		h.checkObject(directObject(t, out), want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength})
	})
}

// ---------------------------------------------------------------------------
// Batches and concurrency.

func requests(items ...string) string { return `{"Requests":[` + strings.Join(items, ",") + `]}` }

// TestBatch checks one result per item in order with each item's code,
// distinct stored keys for the good ones, and the batch-level refusals.
func TestBatch(t *testing.T) {
	t.Run("mixed", func(t *testing.T) {
		t.Parallel()
		items := []struct {
			item string
			w    want
		}{
			{`{"CommonName":"good1.example.com","KeyAlgorithm":"EC_prime256v1"}`, want{CN: "good1.example.com", SANs: []string{"good1.example.com"}, Alg: keys.ECP256}},
			{`{"CommonName":"bad..example.com","KeyAlgorithm":"EC_prime256v1"}`, want{Code: apierr.CodeInvalidParameter}},
			{`{"CommonName":"c.example.com","Country":"CHN","KeyAlgorithm":"EC_prime256v1"}`, want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength}},
			{`{"CommonName":"c.example.com","Country":"C1","KeyAlgorithm":"EC_prime256v1"}`, want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLetters}},
			{`42`, want{Code: apierr.CodeBody}},
			{`["CommonName","x.example.com"]`, want{Code: apierr.CodeBody}},
			{`{"CommonName":"例子.Example.cn","SANs":["x.例子.example.cn","2001:DB8::7"],"KeyAlgorithm":"EC_prime256v1"}`, want{CN: "xn--fsqu00a.example.cn", SANs: []string{"xn--fsqu00a.example.cn", "x.xn--fsqu00a.example.cn", "2001:db8::7"}, Alg: keys.ECP256}},
			{`{"CommonName":""}`, want{Code: apierr.CodeMissingParameter}},
			{`{"CommonName":"g.example.com","KeyAlgorithm":"RSA_1024"}`, want{Code: apierr.CodeInvalidParameter}},
			{`{"CommonName":"good3.example.com","KeyAlgorithm":"EC_prime256v1","Email":"ops@example.com"}`, want{CN: "good3.example.com", Alg: keys.ECP256, Subject: map[string]string{"emailAddress": "ops@example.com"}}},
		}
		var raw []string
		for _, it := range items {
			raw = append(raw, it.item)
		}
		for _, wrap := range []struct{ name, payload string }{
			{"direct", requests(raw...)},
			{"timer", timerEvent(requests(raw...))},
			{"CloudEvent", cloudEvent(requests(raw...))},
		} {
			h := newHarness(t)
			out, err := h.handle("pid-batch", []byte(wrap.payload))
			if err != nil {
				t.Fatalf("%s: Handle error for a batch without 5xx: %v", wrap.name, err)
			}
			_, objs := batchObjects(t, out)
			if len(objs) != len(items) {
				t.Fatalf("%s: %d results, want %d", wrap.name, len(objs), len(items))
			}
			pubs := map[string]bool{}
			for i, o := range objs {
				h.checkObject(o, items[i].w)
				if items[i].w.Code == "" {
					pubs[o.PubMd5] = true
				}
			}
			if len(pubs) != 3 {
				t.Errorf("%s: %d distinct PubMd5s for 3 good items", wrap.name, len(pubs))
			}
			if n := len(h.recordNames()); n != 3 {
				t.Errorf("%s: %d records stored, want 3", wrap.name, n)
			}
			h.checkLogs("pid-batch", objs, statuses(objs))
		}
	})
	item := `{"CommonName":"x.example.com","KeyAlgorithm":"EC_prime256v1"}`
	many := make([]string, invoke.MaxBatch+1)
	for i := range many {
		many[i] = item
	}
	for _, c := range []struct{ name, payload string }{
		{"101 items", requests(many...)},
		{"101 items by timer", timerEvent(requests(many...))},
		{"empty Requests", `{"Requests":[]}`},
		{"null Requests", `{"Requests":null}`},
		{"Requests not an array", `{"Requests":"x.example.com"}`},
		{"Requests and CommonName", `{"Requests":[` + item + `],"CommonName":"y.example.com"}`},
		{"Requests and Country", cloudEvent(`{"Country":"DE","Requests":[` + item + `]}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			out, err := h.handle("pid-batch", []byte(c.payload))
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			h.checkObject(directObject(t, out), want{Code: apierr.CodeBody})
			if n := len(h.recordNames()); n != 0 {
				t.Errorf("%d records stored for a refused batch", n)
			}
		})
	}
}

// TestConcurrentBatch runs a 20-item batch and expects 20 distinct records.
func TestConcurrentBatch(t *testing.T) {
	h := newHarness(t)
	var items []string
	for i := range 20 {
		items = append(items, fmt.Sprintf(`{"CommonName":"n%d.example.com","KeyAlgorithm":"EC_prime256v1"}`, i))
	}
	out, err := h.handle("pid-20", []byte(timerEvent(requests(items...))))
	if err != nil {
		t.Fatal(err)
	}
	_, objs := batchObjects(t, out)
	if len(objs) != 20 {
		t.Fatalf("%d results, want 20", len(objs))
	}
	pubs := map[string]bool{}
	ids := map[string]bool{}
	for i, o := range objs {
		h.checkObject(o, want{CN: fmt.Sprintf("n%d.example.com", i), Alg: keys.ECP256})
		pubs[o.PubMd5] = true
		ids[o.RequestId] = true
	}
	if len(pubs) != 20 || len(ids) != 20 {
		t.Errorf("%d distinct PubMd5s and %d distinct RequestIds, want 20 each", len(pubs), len(ids))
	}
	if n := len(h.recordNames()); n != 20 {
		t.Errorf("%d records stored, want 20", n)
	}
	h.checkLogs("pid-20", objs, statuses(objs))
}
