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
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

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

// handle invokes the handler as the Lambda runtime would, with a platform
// request id in the context. A panic fails the test.
func (h *harness) handle(platformID string, payload []byte) (out any, err error) {
	h.t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID:       platformID,
		InvokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:csrfn",
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

// asHTTP checks that out is the response type of kind and returns its
// status, headers and body. multi says the ALB request used multi-value
// headers, which the response must then use too.
func asHTTP(t *testing.T, kind envelope, out any, multi bool) httpResult {
	t.Helper()
	switch kind {
	case envRESTv1:
		r, ok := out.(events.APIGatewayProxyResponse)
		if !ok {
			t.Fatalf("output is %T, want events.APIGatewayProxyResponse", out)
		}
		if r.IsBase64Encoded || r.MultiValueHeaders != nil {
			t.Errorf("REST response: isBase64Encoded %v, multiValueHeaders %v", r.IsBase64Encoded, r.MultiValueHeaders)
		}
		return httpResult{r.StatusCode, header(r.Headers), []byte(r.Body)}
	case envHTTPv2:
		r, ok := out.(events.APIGatewayV2HTTPResponse)
		if !ok {
			t.Fatalf("output is %T, want events.APIGatewayV2HTTPResponse", out)
		}
		if r.IsBase64Encoded || r.MultiValueHeaders != nil || r.Cookies != nil {
			t.Errorf("v2 response: isBase64Encoded %v, multiValueHeaders %v, cookies %v", r.IsBase64Encoded, r.MultiValueHeaders, r.Cookies)
		}
		return httpResult{r.StatusCode, header(r.Headers), []byte(r.Body)}
	case envALB:
		r, ok := out.(events.ALBTargetGroupResponse)
		if !ok {
			t.Fatalf("output is %T, want events.ALBTargetGroupResponse", out)
		}
		if want := fmt.Sprintf("%d %s", r.StatusCode, http.StatusText(r.StatusCode)); r.StatusDescription != want {
			t.Errorf("statusDescription %q, want %q", r.StatusDescription, want)
		}
		if r.IsBase64Encoded {
			t.Errorf("ALB response is marked base64")
		}
		if multi {
			if len(r.MultiValueHeaders) == 0 || len(r.Headers) != 0 {
				t.Errorf("multi-value request: response headers %v, multiValueHeaders %v; want multiValueHeaders only", r.Headers, r.MultiValueHeaders)
			}
			return httpResult{r.StatusCode, http.Header(r.MultiValueHeaders), []byte(r.Body)}
		}
		if len(r.Headers) == 0 || len(r.MultiValueHeaders) != 0 {
			t.Errorf("single-value request: response headers %v, multiValueHeaders %v; want headers only", r.Headers, r.MultiValueHeaders)
		}
		return httpResult{r.StatusCode, header(r.Headers), []byte(r.Body)}
	}
	t.Fatalf("envelope %d is not an HTTP envelope", kind)
	return httpResult{}
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

const samplesDir = "../../deploy/events/aws-lambda"

// kindByName is the naming rule of the sample files.
func kindByName(name string) (envelope, bool) {
	for _, k := range []struct {
		prefix string
		kind   envelope
	}{
		{"apigw-rest-", envRESTv1},
		{"http-api-v2-", envHTTPv2},
		{"function-url-", envHTTPv2},
		{"alb-", envALB},
		{"sqs-", envSQS},
		{"eventbridge-", envEventBridge},
		{"direct-", envDirect},
		{"scheduled-", envDirect},
	} {
		if strings.HasPrefix(name, k.prefix) {
			return k.kind, true
		}
	}
	return 0, false
}

type sampleWant struct {
	items     []want          // one per request: HTTP and one-request invokes 1, batches n
	batch     bool            // the output is {RequestId, Results}
	sqsFailed []string        // SQS: the batchItemFailures, in order
	sqsStored map[string]want // SQS: the stored records, by CommonName
	sqsCodes  []string        // SQS: the codes of the log lines, sorted
}

var sampleWants = map[string]sampleWant{
	"alb-multivalue-form.json": {items: []want{{
		CN: "vpn.example.com", SANs: []string{"vpn.example.com"}, Alg: keys.RSA3072,
		Subject: map[string]string{"OU": "Network", "O": "Alibaba Inc", "C": "CN", "ST": "Zhejiang", "L": "Hangzhou"},
		XMLRoot: "CreateDcdnCertificateSigningRequestResponse",
	}}},
	"alb-query.json": {items: []want{{
		CN: "intranet.example.com", SANs: []string{"intranet.example.com", "10.0.0.5"}, Alg: keys.RSA2048,
	}}},
	"apigw-rest-form-base64.json": {items: []want{{
		CN: "xn--bcher-kva.example", SANs: []string{"xn--bcher-kva.example", "*.xn--bcher-kva.example"}, Alg: keys.RSA2048,
		XMLRoot: "CreateCdnCertificateSigningRequestResponse",
	}}},
	"apigw-rest-get-query.json": {items: []want{{
		CN: "api.example.com", SANs: []string{"api.example.com", "2001:db8::1"}, Alg: keys.RSA2048,
		Subject: map[string]string{"C": "DE", "emailAddress": "pki@example.com", "CN": "api.example.com"},
	}}},
	"apigw-rest-json.json": {items: []want{{
		CN: "example.com", SANs: []string{"example.com", "www.example.com", "203.0.113.7"}, Alg: keys.ECP256,
	}}},
	"direct-one.json": {items: []want{{
		CN: "renew.example.com", SANs: []string{"renew.example.com", "www.renew.example.com"}, Alg: keys.RSA2048,
	}}},
	"eventbridge-batch.json": {batch: true, items: []want{
		{CN: "one.example.com", SANs: []string{"one.example.com"}, Alg: keys.ECP256},
		{Code: apierr.CodeInvalidParameter},
		{CN: "three.example.com", SANs: []string{"three.example.com"}, Alg: keys.ECP384},
	}},
	"eventbridge-one.json": {items: []want{{
		CN: "mail.example.com", SANs: []string{"mail.example.com", "smtp.example.com"}, Alg: keys.ECP256,
		Subject: map[string]string{"emailAddress": "hostmaster@example.com"},
	}}},
	"function-url-base64-json.json": {items: []want{{
		CN: "*.apps.example.net", SANs: []string{"*.apps.example.net"}, Alg: keys.ECP384,
		Subject: map[string]string{"O": "Example GmbH", "OU": "Aliyun CDN", "C": "DE", "ST": "Berlin", "L": "Berlin"},
	}}},
	"http-api-v2-query.json": {items: []want{{
		CN: "shop.example.org", SANs: []string{"shop.example.org", "www.shop.example.org", "192.0.2.10"}, Alg: keys.RSA2048,
	}}},
	"scheduled-batch.json": {batch: true, items: []want{
		{CN: "a.renew.example.com", SANs: []string{"a.renew.example.com"}, Alg: keys.ECP256},
		{CN: "b.renew.example.com", SANs: []string{"b.renew.example.com"}, Alg: keys.ECP256},
	}},
	"sqs-mixed.json": {
		sqsFailed: []string{"7b0e5b4c-1f2a-4c3d-9e8f-000000000002", "7b0e5b4c-1f2a-4c3d-9e8f-000000000003"},
		sqsStored: map[string]want{
			"a.example.com": {CN: "a.example.com", SANs: []string{"a.example.com"}, Alg: keys.ECP256},
			"d.example.com": {CN: "d.example.com", SANs: []string{"d.example.com", "*.d.example.com"}, Alg: keys.RSA2048},
		},
		sqsCodes: []string{"", "", apierr.CodeBody, apierr.CodeMalformed},
	},
}

// usesMultiValueHeaders reports whether an ALB event asked for multi-value
// headers.
func usesMultiValueHeaders(t *testing.T, payload []byte) bool {
	t.Helper()
	var ev struct {
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	return len(ev.MultiValueHeaders) > 0
}

// TestSampleEvents runs every file of deploy/events/aws-lambda: detected
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
			if got := detect(payload); got != kind {
				t.Errorf("detect = %d, want %d", got, kind)
			}
			sw, ok := sampleWants[name]
			if !ok {
				t.Errorf("sample %s has no entry in sampleWants; checking its form only", name)
				sw = sampleWant{items: []want{{Generic: true}}}
			}
			h := newHarness(t)
			pid := "aws-req-" + strings.TrimSuffix(name, ".json")
			out, err := h.handle(pid, payload)
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			switch kind {
			case envRESTv1, envHTTPv2, envALB:
				res := asHTTP(t, kind, out, kind == envALB && usesMultiValueHeaders(t, payload))
				if len(sw.items) != 1 {
					t.Fatalf("sampleWants[%s]: an HTTP sample has one item", name)
				}
				o := h.checkHTTP(res, sw.items[0])
				h.checkLogs(pid, []apiObject{o}, []int{res.Status})
			case envSQS:
				h.checkSQSSample(pid, out, sw)
			default:
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
			}
		})
	}
	for name := range sampleWants {
		if !seen[name] {
			t.Errorf("sampleWants has %s, which is not in %s", name, samplesDir)
		}
	}
}

func isBatch(out any) bool { _, ok := out.(*invoke.Batch); return ok }

func (h *harness) checkSQSSample(pid string, out any, sw sampleWant) {
	h.t.Helper()
	t := h.t
	failed := sqsFailures(t, out)
	if sw.sqsStored == nil { // a new sample: form only
		return
	}
	if !slices.Equal(failed, sw.sqsFailed) {
		t.Errorf("batchItemFailures %v, want %v", failed, sw.sqsFailed)
	}
	names := h.recordNames()
	if len(names) != len(sw.sqsStored) {
		t.Errorf("%d records stored, want %d: %v", len(names), len(sw.sqsStored), names)
	}
	for _, n := range names {
		r := h.loadRecord(strings.TrimSuffix(n, ".json"))
		if r == nil {
			continue
		}
		w, ok := sw.sqsStored[r.CommonName]
		if !ok {
			t.Errorf("unexpected record for %q", r.CommonName)
			continue
		}
		h.checkCSR(apiObject{RequestId: r.RequestId, PubMd5: r.PubMd5, Csr: r.Csr, CommonName: r.CommonName}, w)
	}
	var codes []string
	for _, l := range h.logLines() {
		if l.str("PlatformRequestId") != pid {
			t.Errorf("log line without the platform request id: %v", l)
		}
		codes = append(codes, l.str("Code"))
	}
	sort.Strings(codes)
	if !slices.Equal(codes, sw.sqsCodes) {
		t.Errorf("log codes %q, want %q", codes, sw.sqsCodes)
	}
}

// sqsFailures checks that out is an SQSEventResponse whose JSON always
// holds a batchItemFailures array, and returns the failed message ids.
func sqsFailures(t *testing.T, out any) []string {
	t.Helper()
	r, ok := out.(events.SQSEventResponse)
	if !ok {
		t.Fatalf("output is %T, want events.SQSEventResponse", out)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if f := m["batchItemFailures"]; len(f) == 0 || f[0] != '[' {
		t.Errorf("SQS response %s has no batchItemFailures array", raw)
	}
	ids := []string{}
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// ---------------------------------------------------------------------------
// Malformed envelopes and non-HTTP payloads.

// TestMalformedEnvelopes feeds broken and foreign payloads: each gives a 4xx
// API object (SQS: a batch item failure), never a panic or function error.
func TestMalformedEnvelopes(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		kind    envelope
		code    string
		sqsFail []string // for envSQS
	}{
		{"httpMethod with string requestContext", `{"httpMethod":"POST","path":"/","requestContext":"oops","body":"CommonName=x.example.com"}`, envDirect, apierr.CodeBody, nil},
		{"httpMethod with array requestContext", `{"httpMethod":"GET","requestContext":[1,2],"queryStringParameters":{"CommonName":"x.example.com"}}`, envDirect, apierr.CodeBody, nil},
		{"ALB with numeric httpMethod", `{"httpMethod":5,"requestContext":{"elb":{"targetGroupArn":"arn"}}}`, envDirect, apierr.CodeBody, nil},
		{"REST with headers as a list", `{"httpMethod":"POST","requestContext":{"stage":"prod"},"headers":["Host: x"],"body":"CommonName=x.example.com"}`, envRESTv1, apierr.CodeBody, nil},
		{"REST with numeric body", `{"httpMethod":"POST","requestContext":{"stage":"prod"},"body":42}`, envRESTv1, apierr.CodeBody, nil},
		{"v2 with object body", `{"version":"2.0","rawPath":"/","rawQueryString":"","requestContext":{"http":{"method":"POST","path":"/"}},"body":{"CommonName":"x.example.com"}}`, envHTTPv2, apierr.CodeBody, nil},
		{"v2 with string isBase64Encoded", `{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},"body":"e30=","isBase64Encoded":"yes"}`, envHTTPv2, apierr.CodeBody, nil},
		{"ALB with object body", `{"httpMethod":"POST","requestContext":{"elb":{"targetGroupArn":"arn"}},"body":{"CommonName":"x.example.com"}}`, envALB, apierr.CodeBody, nil},
		{"SQS record without body", `{"Records":[{"messageId":"m-1","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:eu-west-1:1:q"}]}`, envSQS, apierr.CodeBody, []string{"m-1"}},
		{"SQS record with null body", `{"Records":[{"messageId":"m-2","eventSource":"aws:sqs","body":null}]}`, envSQS, apierr.CodeBody, []string{"m-2"}},
		{"SQS record with array body", `{"Records":[{"messageId":"m-3","eventSource":"aws:sqs","body":"[1,2]"}]}`, envSQS, apierr.CodeBody, []string{"m-3"}},
		{"SQS record with empty object", `{"Records":[{"messageId":"m-4","eventSource":"aws:sqs","body":"{}"}]}`, envSQS, apierr.CodeMissingParameter, []string{"m-4"}},
		{"records of mixed sources", `{"Records":[{"messageId":"m-5","eventSource":"aws:sqs","body":"{}"},{"eventSource":"aws:sns"}]}`, envDirect, apierr.CodeBody, nil},
		{"empty Records", `{"Records":[]}`, envDirect, apierr.CodeBody, nil},
		{"EventBridge with null detail", `{"version":"0","id":"1","detail-type":"csrfn","source":"s","account":"1","detail":null}`, envEventBridge, apierr.CodeBody, nil},
		{"EventBridge with string detail", `{"version":"0","id":"1","detail-type":"csrfn","source":"s","detail":"CommonName=x.example.com"}`, envEventBridge, apierr.CodeBody, nil},
		{"EventBridge with empty detail", `{"version":"0","id":"1","detail-type":"csrfn","source":"s","detail":{}}`, envEventBridge, apierr.CodeBody, nil},
		{"EventBridge with numeric source", `{"detail-type":"csrfn","source":7,"detail":{"CommonName":"x.example.com"}}`, envDirect, apierr.CodeBody, nil},
		{"JSON array", `[{"CommonName":"x.example.com"}]`, envDirect, apierr.CodeBody, nil},
		{"JSON string", `"CommonName=x.example.com"`, envDirect, apierr.CodeBody, nil},
		{"JSON number", `42`, envDirect, apierr.CodeBody, nil},
		{"JSON null", `null`, envDirect, apierr.CodeBody, nil},
		{"JSON true", `true`, envDirect, apierr.CodeBody, nil},
		{"invalid JSON", `{"CommonName": "x.example.com"`, envDirect, apierr.CodeBody, nil},
		{"empty payload", ``, envDirect, apierr.CodeBody, nil},
		{"empty object", `{}`, envDirect, apierr.CodeBody, nil},
		{"object with no known keys", `{"hello":"world","commonname":"x.example.com"}`, envDirect, apierr.CodeBody, nil},
		{"blank CommonName", `{"CommonName":"  "}`, envDirect, apierr.CodeMissingParameter, nil},
		{"null CommonName", `{"CommonName":null,"KeyAlgorithm":"EC_prime256v1"}`, envDirect, apierr.CodeMissingParameter, nil},
		{"numeric CommonName", `{"CommonName":5}`, envDirect, apierr.CodeBody, nil},
		{"trailing data", `{"CommonName":"x.example.com"} {}`, envDirect, apierr.CodeBody, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := detect([]byte(c.payload)); got != c.kind {
				t.Errorf("detect = %d, want %d", got, c.kind)
			}
			h := newHarness(t)
			out, err := h.handle("pid-malformed", []byte(c.payload))
			if err != nil {
				t.Fatalf("Handle returned an error (a function error) for a 4xx: %v", err)
			}
			if c.kind == envSQS {
				if got := sqsFailures(t, out); !slices.Equal(got, c.sqsFail) {
					t.Errorf("batchItemFailures %v, want %v", got, c.sqsFail)
				}
				lines := h.logLines()
				if len(lines) != 1 || lines[0].str("Code") != c.code || lines[0].num("Status") != statusOf(c.code) {
					t.Errorf("log lines %v, want one with Code %s", lines, c.code)
				}
			} else {
				o := directObject(t, out)
				h.checkObject(o, want{Code: c.code})
				if o.HostId != "csrfn" {
					t.Errorf("HostId %q, want csrfn", o.HostId)
				}
				h.checkLogs("pid-malformed", []apiObject{o}, []int{statusOf(c.code)})
			}
			if names := h.recordNames(); len(names) != 0 {
				t.Errorf("records stored for a refused request: %v", names)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// HTTP bodies and query strings.

// httpEvent builds an event of kind (REST v1, v2, ALB; multi: ALB with
// multi-value headers and query) for a POST or GET with the given body.
// Query values are given decoded and encoded as each platform does.
func httpEvent(kind envelope, multi bool, method string, query url.Values, contentType string, body *string, b64 bool) []byte {
	headers := map[string]string{"Host": "h.example", "User-Agent": "test"}
	if contentType != "" {
		headers["Content-Type"] = contentType
	}
	ev := map[string]any{"isBase64Encoded": b64}
	if body != nil {
		ev["body"] = *body
	}
	switch kind {
	case envRESTv1:
		single := map[string]string{}
		for k := range query {
			single[k] = query.Get(k)
		}
		mvh := map[string][]string{}
		for k, v := range headers {
			mvh[k] = []string{v}
		}
		ev["resource"], ev["path"], ev["httpMethod"] = "/", "/", method
		ev["headers"], ev["multiValueHeaders"] = headers, mvh
		ev["queryStringParameters"], ev["multiValueQueryStringParameters"] = single, map[string][]string(query)
		ev["requestContext"] = map[string]any{"httpMethod": method, "stage": "prod", "requestId": "r-1"}
	case envHTTPv2:
		lower := map[string]string{}
		for k, v := range headers {
			lower[strings.ToLower(k)] = v
		}
		single := map[string]string{}
		for k := range query {
			single[k] = strings.Join(query[k], ",")
		}
		ev["version"], ev["routeKey"], ev["rawPath"] = "2.0", "$default", "/"
		ev["rawQueryString"] = query.Encode()
		ev["headers"], ev["queryStringParameters"] = lower, single
		ev["requestContext"] = map[string]any{"http": map[string]any{"method": method, "path": "/"}, "requestId": "r-1"}
	case envALB:
		ev["httpMethod"], ev["path"] = method, "/"
		ev["requestContext"] = map[string]any{"elb": map[string]any{"targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/y"}}
		if multi {
			mvh := map[string][]string{}
			for k, v := range headers {
				mvh[strings.ToLower(k)] = []string{v}
			}
			mvq := map[string][]string{}
			for k, vs := range query {
				for _, v := range vs {
					mvq[url.QueryEscape(k)] = append(mvq[url.QueryEscape(k)], url.QueryEscape(v))
				}
			}
			ev["multiValueHeaders"], ev["multiValueQueryStringParameters"] = mvh, mvq
		} else {
			lower := map[string]string{}
			for k, v := range headers {
				lower[strings.ToLower(k)] = v
			}
			q := map[string]string{}
			for k := range query {
				q[url.QueryEscape(k)] = url.QueryEscape(query.Get(k))
			}
			ev["headers"], ev["queryStringParameters"] = lower, q
		}
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return raw
}

var httpKinds = []struct {
	name  string
	kind  envelope
	multi bool
}{
	{"rest", envRESTv1, false},
	{"v2", envHTTPv2, false},
	{"alb", envALB, false},
	{"alb-multi", envALB, true},
}

func ptr(s string) *string { return &s }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// formOfSize is a valid form body of exactly n bytes.
func formOfSize(n int) string {
	s := "CommonName=limit.example.com&KeyAlgorithm=EC_prime256v1&Pad="
	return s + strings.Repeat("p", n-len(s))
}

// TestHTTPBodies checks base64 bodies, missing bodies and the 64 KiB limit
// in every HTTP envelope.
func TestHTTPBodies(t *testing.T) {
	const limit = apierr.MaxBodyBytes
	tooLarge := strings.Repeat("a", limit+1)
	msgMissing := `The input parameter "CommonName" that is mandatory for processing this request is not supplied.`
	cases := []struct {
		name   string
		method string
		query  url.Values
		ct     string
		body   *string
		b64    bool
		w      want
	}{
		{"base64 JSON", "POST", nil, "application/json", ptr(b64(`{"CommonName":"B64.Example.com.","KeyAlgorithm":"EC_prime256v1"}`)), true,
			want{CN: "b64.example.com", SANs: []string{"b64.example.com"}, Alg: keys.ECP256}},
		{"base64 form", "POST", nil, "application/x-www-form-urlencoded", ptr(b64("CommonName=form.example.com&SANs=a.form.example.com%2C198.51.100.1&KeyAlgorithm=EC_prime256v1")), true,
			want{CN: "form.example.com", SANs: []string{"form.example.com", "a.form.example.com", "198.51.100.1"}, Alg: keys.ECP256}},
		{"base64 XML answer", "POST", url.Values{"Format": {"XML"}}, "application/json", ptr(b64(`{"CommonName":"xml.example.com","KeyAlgorithm":"EC_prime256v1"}`)), true,
			want{CN: "xml.example.com", Alg: keys.ECP256, XMLRoot: "CreateDcdnCertificateSigningRequestResponse"}},
		{"invalid base64", "POST", nil, "application/json", ptr("{not base64!}"), true,
			want{Code: apierr.CodeBody}},
		{"truncated base64", "POST", nil, "application/json", ptr("eyJDb21tb25OYW1lIjoi"[:17]), true,
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
		{"oversize XML error", "POST", url.Values{"Format": {"XML"}}, "", ptr(tooLarge), false,
			want{Code: apierr.CodeTooLarge, XMLRoot: "Error"}},
		{"limit raw", "POST", nil, "application/x-www-form-urlencoded", ptr(formOfSize(limit)), false,
			want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"limit base64", "POST", nil, "application/x-www-form-urlencoded", ptr(b64(formOfSize(limit))), true,
			want{CN: "limit.example.com", Alg: keys.ECP256}},
		{"JSON array body", "POST", nil, "application/json", ptr(`[{"CommonName":"x.example.com"}]`), false,
			want{Code: apierr.CodeBody}},
		{"unsupported content type", "POST", nil, "text/plain", ptr("CommonName=x.example.com"), false,
			want{Code: apierr.CodeBody}},
		{"method not allowed", "DELETE", url.Values{"CommonName": {"x.example.com"}}, "", nil, false,
			want{Code: apierr.CodeUnsupportedHTTPMethod}},
		{"unknown action", "GET", url.Values{"Action": {"DescribeDcdnDomains"}, "CommonName": {"x.example.com"}}, "", nil, false,
			want{Code: apierr.CodeActionNotFound, Msg: apierr.MsgActionNotFound}},
	}
	for _, k := range httpKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					h := *h
					h.t = t
					payload := httpEvent(k.kind, k.multi, c.method, c.query, c.ct, c.body, c.b64)
					if got := detect(payload); got != k.kind {
						t.Fatalf("detect = %d, want %d", got, k.kind)
					}
					out, err := h.handle("pid-body", payload)
					if err != nil {
						t.Fatalf("Handle error: %v", err)
					}
					res := asHTTP(t, k.kind, out, k.multi)
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
		})
	}
}

// TestQueryEncoding checks that percent-encoded query values arrive intact:
// REST hands over decoded values, ALB the raw ones, v2 a rawQueryString.
func TestQueryEncoding(t *testing.T) {
	const (
		state = "Rhein+Main & 100% Süd"
		city  = "Bad Homburg; v.d.H."
	)
	w := want{
		CN: "q.example.com", SANs: []string{"q.example.com", "a.q.example.com", "10.1.2.3"}, Alg: keys.ECP256,
		Subject: map[string]string{"ST": state, "L": city},
	}
	decoded := `{"CommonName":"q.example.com","SANs":"a.q.example.com,10.1.2.3","State":"Rhein+Main & 100% S\u00fcd","City":"Bad Homburg; v.d.H.","KeyAlgorithm":"EC_prime256v1"}`
	decodedMulti := `{"CommonName":["q.example.com"],"SANs":["a.q.example.com,10.1.2.3"],"State":["Rhein+Main & 100% S\u00fcd"],"City":["Bad Homburg; v.d.H."],"KeyAlgorithm":["EC_prime256v1"]}`
	// ALB: as received; '+' is a space in a query string.
	raw := `{"CommonName":"q.example.com","SANs":"a.q.example.com%2C10.1.2.3","State":"Rhein%2BMain+%26+100%25+S%C3%BCd","City":"Bad%20Homburg%3B%20v.d.H.","KeyAlgorithm":"EC_prime256v1"}`
	rawMulti := `{"CommonName":["q.example.com"],"SANs":["a.q.example.com%2C10.1.2.3"],"State":["Rhein%2BMain+%26+100%25+S%C3%BCd"],"City":["Bad%20Homburg%3B%20v.d.H."],"KeyAlgorithm":["EC_prime256v1"]}`
	rawQuery := "CommonName=q.example.com&SANs=a.q.example.com%2C10.1.2.3&State=Rhein%2BMain%20%26%20100%25%20S%C3%BCd&City=Bad%20Homburg%3B%20v.d.H.&KeyAlgorithm=EC_prime256v1"
	cases := []struct {
		name    string
		kind    envelope
		multi   bool
		payload string
	}{
		{"rest single", envRESTv1, false, `{"httpMethod":"GET","path":"/","headers":{"Host":"h"},"queryStringParameters":` + decoded + `,"multiValueQueryStringParameters":null,"requestContext":{"httpMethod":"GET","stage":"prod"},"body":null,"isBase64Encoded":false}`},
		{"rest multi", envRESTv1, false, `{"httpMethod":"GET","path":"/","headers":{"Host":"h"},"queryStringParameters":` + decoded + `,"multiValueQueryStringParameters":` + decodedMulti + `,"requestContext":{"httpMethod":"GET","stage":"prod"},"body":null,"isBase64Encoded":false}`},
		{"alb single", envALB, false, `{"httpMethod":"GET","path":"/","headers":{"host":"h"},"queryStringParameters":` + raw + `,"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}`},
		{"alb multi", envALB, true, `{"httpMethod":"GET","path":"/","multiValueHeaders":{"host":["h"]},"multiValueQueryStringParameters":` + rawMulti + `,"requestContext":{"elb":{"targetGroupArn":"arn"}},"body":"","isBase64Encoded":false}`},
		{"v2", envHTTPv2, false, `{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"` + rawQuery + `","headers":{"host":"h"},"queryStringParameters":` + decoded + `,"requestContext":{"http":{"method":"GET","path":"/"}},"isBase64Encoded":false}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := detect([]byte(c.payload)); got != c.kind {
				t.Fatalf("detect = %d, want %d", got, c.kind)
			}
			h := newHarness(t)
			out, err := h.handle("pid-query", []byte(c.payload))
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			h.checkHTTP(asHTTP(t, c.kind, out, c.multi), w)
		})
	}
}

// ---------------------------------------------------------------------------
// Outcome rules.

// TestHTTPServerError: with a failing store every HTTP envelope still
// answers an HTTP 500 (never a Go error) whose body is Internal.Error
// without internal text; the cause goes to the log only.
func TestHTTPServerError(t *testing.T) {
	for _, k := range httpKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			payload := httpEvent(k.kind, k.multi, "POST", nil, "application/json",
				ptr(`{"CommonName":"fail.example.com","KeyAlgorithm":"EC_prime256v1"}`), false)
			out, err := h.handle("pid-5xx", payload)
			if err != nil {
				t.Fatalf("Handle returned an error for an HTTP envelope: %v", err)
			}
			res := asHTTP(t, k.kind, out, k.multi)
			o := h.checkHTTP(res, want{Code: apierr.CodeInternal, Msg: apierr.MsgInternal})
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

// checkFunctionErrorObject checks a 5xx function error whose message is the JSON
// of an error object with code.
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

// TestNonHTTPOutcomes: for direct and EventBridge invokes a 4xx is a normal
// result and a 5xx a function error of the SDK's type whose Type is the API
// code and whose Message is the API object's JSON.
func TestNonHTTPOutcomes(t *testing.T) {
	oneEB := func(detail string) string {
		return `{"version":"0","id":"1","detail-type":"csrfn","source":"test","account":"1","time":"2026-01-01T00:00:00Z","region":"eu-west-1","resources":[],"detail":` + detail + `}`
	}
	good := `{"CommonName":"five.example.com","KeyAlgorithm":"EC_prime256v1"}`
	bad := `{"CommonName":"*.co.uk","KeyAlgorithm":"EC_prime256v1"}`
	batch := `{"Requests":[` + good + `,` + bad + `]}`

	t.Run("4xx is a result", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{bad, oneEB(bad)} {
			h := newHarness(t)
			out, err := h.handle("pid-4xx", []byte(p))
			if err != nil {
				t.Fatalf("Handle error for a 4xx: %v", err)
			}
			h.checkObject(directObject(t, out), want{Code: apierr.CodeInvalidParameter})
		}
	})
	t.Run("country", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		out, err := h.handle("pid-4xx", []byte(`{"CommonName":"c.example.com","Country":"CHN"}`))
		if err != nil {
			t.Fatal(err)
		}
		h.checkObject(directObject(t, out), want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength})
	})
	for _, c := range []struct{ name, payload string }{
		{"direct one", good},
		{"EventBridge one", oneEB(good)},
	} {
		t.Run("5xx "+c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			_, err := h.handle("pid-5xx", []byte(c.payload))
			o := h.checkFunctionErrorObject(err, apierr.CodeInternal)
			h.checkLogs("pid-5xx", []apiObject{o}, []int{500})
		})
	}
	for _, c := range []struct{ name, payload string }{
		{"direct batch", batch},
		{"EventBridge batch", oneEB(batch)},
	} {
		t.Run("5xx "+c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.breakStore()
			_, err := h.handle("pid-5xx", []byte(c.payload))
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
}

// ---------------------------------------------------------------------------
// Batches, SQS, concurrency.

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
			{`"CommonName=x.example.com"`, want{Code: apierr.CodeBody}},
			{`{"CommonName":"Good2.Example.com","SANs":["x.good2.example.com","2001:DB8::7"],"KeyAlgorithm":"EC_prime256v1"}`, want{CN: "good2.example.com", SANs: []string{"good2.example.com", "x.good2.example.com", "2001:db8::7"}, Alg: keys.ECP256}},
			{`{"CommonName":""}`, want{Code: apierr.CodeMissingParameter}},
			{`{"CommonName":"g.example.com","KeyAlgorithm":"DSA_1024"}`, want{Code: apierr.CodeInvalidParameter}},
			{`{"CommonName":"good3.example.com","KeyAlgorithm":"EC_prime256v1","Format":"XML"}`, want{CN: "good3.example.com", Alg: keys.ECP256}},
		}
		var raw []string
		for _, it := range items {
			raw = append(raw, it.item)
		}
		for _, wrap := range []struct{ name, payload string }{
			{"direct", requests(raw...)},
			{"EventBridge", `{"detail-type":"csrfn","source":"test","detail":` + requests(raw...) + `}`},
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
		{"empty Requests", `{"Requests":[]}`},
		{"null Requests", `{"Requests":null}`},
		{"Requests not an array", `{"Requests":{"CommonName":"x.example.com"}}`},
		{"Requests and CommonName", `{"Requests":[` + item + `],"CommonName":"y.example.com"}`},
		{"Requests and KeyAlgorithm", `{"KeyAlgorithm":"EC_prime256v1","Requests":[` + item + `]}`},
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

func sqsEvent(records ...[2]string) string {
	var rs []string
	for _, r := range records {
		body, _ := json.Marshal(r[1])
		rs = append(rs, `{"messageId":"`+r[0]+`","receiptHandle":"rh","body":`+string(body)+
			`,"attributes":{"ApproximateReceiveCount":"1"},"messageAttributes":{},"md5OfBody":"0","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:eu-west-1:1:q","awsRegion":"eu-west-1"}`)
	}
	return `{"Records":[` + strings.Join(rs, ",") + `]}`
}

// TestSQS covers duplicated message ids and a failing store.
func TestSQS(t *testing.T) {
	t.Run("duplicate messageId", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		dup := `{"CommonName":"dup.example.com","KeyAlgorithm":"EC_prime256v1"}`
		p := sqsEvent([2]string{"m-1", dup}, [2]string{"m-2", `{"CommonName":"other.example.com","KeyAlgorithm":"EC_prime256v1"}`}, [2]string{"m-1", dup})
		out, err := h.handle("pid-sqs", []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		if got := sqsFailures(t, out); len(got) != 0 {
			t.Errorf("batchItemFailures %v, want none", got)
		}
		var cns []string
		for _, n := range h.recordNames() {
			if r := h.loadRecord(strings.TrimSuffix(n, ".json")); r != nil {
				cns = append(cns, r.CommonName)
			}
		}
		sort.Strings(cns)
		if !slices.Equal(cns, []string{"dup.example.com", "other.example.com"}) {
			t.Errorf("stored %v, want one record each for dup.example.com and other.example.com", cns)
		}
		if n := len(h.logLines()); n != 2 {
			t.Errorf("%d log lines, want 2", n)
		}
	})
	t.Run("failing store", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.breakStore()
		p := sqsEvent(
			[2]string{"m-1", `{"CommonName":"a.example.com","KeyAlgorithm":"EC_prime256v1"}`},
			[2]string{"m-2", `{"CommonName":"b.example.com","KeyAlgorithm":"EC_prime256v1"}`},
			[2]string{"m-3", `{"CommonName":"c.example.com","KeyAlgorithm":"EC_prime256v1"}`},
		)
		out, err := h.handle("pid-sqs", []byte(p))
		if err != nil {
			t.Fatalf("Handle error: %v", err)
		}
		if got := sqsFailures(t, out); !slices.Equal(got, []string{"m-1", "m-2", "m-3"}) {
			t.Errorf("batchItemFailures %v, want every record", got)
		}
		for _, l := range h.logLines() {
			if l.str("Code") != apierr.CodeInternal || l.str("PlatformRequestId") != "pid-sqs" {
				t.Errorf("log line %v: want Code %s and the platform request id", l, apierr.CodeInternal)
			}
		}
	})
}

// TestConcurrentBatch runs a 20-item batch and expects 20 distinct records.
func TestConcurrentBatch(t *testing.T) {
	h := newHarness(t)
	var items []string
	for i := range 20 {
		items = append(items, fmt.Sprintf(`{"CommonName":"n%d.example.com","KeyAlgorithm":"EC_prime256v1"}`, i))
	}
	out, err := h.handle("pid-20", []byte(requests(items...)))
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
