package adaptertest

import (
	"bytes"
	"crypto/md5"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keys"
)

// Want is the expected outcome of one request.
type Want struct {
	Code    string            // "" for a success
	CN      string            // normalised CommonName; "" = not checked
	SANs    []string          // exact SANs in order (DNS names and IPs); nil = not checked
	Alg     keys.Algorithm    // "" = not checked
	Subject map[string]string // C, ST, L, O, OU, emailAddress
	XMLRoot string            // XML body expected, with this root ("Error" for errors)
	Msg     string            // exact error message; "" = not checked
	Generic bool              // accept whatever outcome, check its form only
}

var (
	successKeys = []string{"CommonName", "Csr", "PubMd5", "RequestId"}
	errorKeys   = []string{"Code", "HostId", "Message", "RequestId"}
)

// CheckObject checks an API object against w: a success is verified down
// to its CSR and its stored record.
func (h *Harness) CheckObject(o Object, w Want) {
	h.T.Helper()
	t := h.T
	if !requestIDRE.MatchString(o.RequestId) {
		t.Errorf("RequestId %q is not an upper-case UUID v4", o.RequestId)
	}
	if w.Generic {
		w = Want{Code: o.Code}
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
	h.CheckCSR(o, w)
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

// CheckCSR parses the CSR, checks its signature, PubMd5, names, key and
// subject, and that its record is in the store, matches and opens.
func (h *Harness) CheckCSR(o Object, w Want) *x509.CertificateRequest {
	h.T.Helper()
	t := h.T
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
	if r := h.LoadRecord(o.PubMd5); r != nil {
		if r.PubMd5 != o.PubMd5 || r.Csr != o.Csr || r.RequestId != o.RequestId || r.CommonName != o.CommonName {
			t.Errorf("record %s does not match the response: record {%s %s %s}, response {%s %s %s}",
				o.PubMd5, r.PubMd5, r.RequestId, r.CommonName, o.PubMd5, o.RequestId, o.CommonName)
		}
	}
	return cr
}

// CheckHTTP checks status, headers and body against w and returns the
// body's object.
func (h *Harness) CheckHTTP(res HTTPResult, w Want) Object {
	h.T.Helper()
	t := h.T
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
	var o Object
	if isXML {
		o = DecodeXMLObject(t, res.Body)
	} else {
		o = DecodeJSONObject(t, res.Body)
	}
	if got := res.Header.Get("X-Acs-Request-Id"); got != o.RequestId {
		t.Errorf("X-Acs-Request-Id %q, body RequestId %q", got, o.RequestId)
	}
	if w.Generic {
		if res.Status != StatusOf(o.Code) {
			t.Errorf("status %d for Code %q", res.Status, o.Code)
		}
	} else if want := StatusOf(w.Code); res.Status != want {
		t.Errorf("status %d, want %d (body %.300s)", res.Status, want, res.Body)
	}
	if isXML && !w.Generic {
		if o.Root != w.XMLRoot {
			t.Errorf("XML root %q, want %q", o.Root, w.XMLRoot)
		}
	}
	h.CheckObject(o, w)
	return o
}

// CheckHTTPCase checks the answer to one HTTPCase sent with Host host: as
// CheckHTTP, and an error names host as its HostId, a 413 states the
// limit, and a 405 lists the allowed methods.
func (h *Harness) CheckHTTPCase(res HTTPResult, w Want, host string) Object {
	h.T.Helper()
	t := h.T
	o := h.CheckHTTP(res, w)
	if w.Code != "" && o.HostId != host {
		t.Errorf("HostId %q, want the request's Host %s", o.HostId, host)
	}
	if w.Code == apierr.CodeTooLarge && !strings.Contains(o.Message, "64 KiB") {
		t.Errorf("413 message %q does not state the limit", o.Message)
	}
	if w.Code == apierr.CodeUnsupportedHTTPMethod && res.Header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow %q, want GET, POST", res.Header.Get("Allow"))
	}
	return o
}

// CheckHTTPSample checks the HTTP answer to a sample event, of which items
// holds the one expected outcome, and its log line.
func (h *Harness) CheckHTTPSample(platformID string, res HTTPResult, items []Want) {
	h.T.Helper()
	if len(items) != 1 {
		h.T.Fatalf("an HTTP sample has one expected item, not %d", len(items))
	}
	o := h.CheckHTTP(res, items[0])
	h.CheckLogs(platformID, []Object{o}, []int{res.Status})
}

// CheckInvokeSample checks the answer to a non-HTTP sample event and its
// log lines: a batch (batch, or a Generic item and a batch output) with
// one result per item, or one API object.
func (h *Harness) CheckInvokeSample(platformID string, out any, items []Want, batch bool) {
	h.T.Helper()
	t := h.T
	if batch || (items[0].Generic && IsBatch(out)) {
		_, objs := BatchObjects(t, out)
		if !items[0].Generic {
			if len(objs) != len(items) {
				t.Fatalf("%d results, want %d", len(objs), len(items))
			}
			for i, o := range objs {
				h.CheckObject(o, items[i])
			}
		}
		h.CheckLogs(platformID, objs, Statuses(objs))
		return
	}
	o := DirectObject(t, out)
	h.CheckObject(o, items[0])
	h.CheckLogs(platformID, []Object{o}, Statuses([]Object{o}))
}

// CheckRefused checks that out is the error object with code of a refused
// non-HTTP invocation (HostId csrfn), that it was logged, and that nothing
// was stored.
func (h *Harness) CheckRefused(platformID string, out any, code string) {
	h.T.Helper()
	o := DirectObject(h.T, out)
	h.CheckObject(o, Want{Code: code})
	if o.HostId != "csrfn" {
		h.T.Errorf("HostId %q, want csrfn", o.HostId)
	}
	h.CheckLogs(platformID, []Object{o}, []int{StatusOf(code)})
	h.CheckNothingStored()
}

// CheckRefusedBatch checks that out is the InvalidParameter.Body error of
// a batch refused as a whole, and that none of its items was stored.
func (h *Harness) CheckRefusedBatch(out any) {
	h.T.Helper()
	h.CheckObject(DirectObject(h.T, out), Want{Code: apierr.CodeBody})
	if n := len(h.RecordNames()); n != 0 {
		h.T.Errorf("%d records stored for a refused batch", n)
	}
}

// CheckBatch checks that out is a batch with one result per item, in
// order, each as its Want says; that the successes have distinct keys, each
// stored; and the log lines. It returns the results.
func (h *Harness) CheckBatch(platformID string, out any, items []Want) []Object {
	h.T.Helper()
	t := h.T
	_, objs := BatchObjects(t, out)
	if len(objs) != len(items) {
		t.Fatalf("%d results, want %d", len(objs), len(items))
	}
	good := 0
	pubs := map[string]bool{}
	for i, o := range objs {
		h.CheckObject(o, items[i])
		if items[i].Code == "" {
			good++
			pubs[o.PubMd5] = true
		}
	}
	if len(pubs) != good {
		t.Errorf("%d distinct PubMd5s for %d good items", len(pubs), good)
	}
	if n := len(h.RecordNames()); n != good {
		t.Errorf("%d records stored, want %d", n, good)
	}
	h.CheckLogs(platformID, objs, Statuses(objs))
	return objs
}

// CheckHTTPServerError checks the HTTP 500 of a failing store: the body is
// the Internal.Error object w without internal text and without a CSR, and
// the cause goes to the one log line only.
func (h *Harness) CheckHTTPServerError(platformID string, res HTTPResult, w Want) {
	h.T.Helper()
	t := h.T
	o := h.CheckHTTP(res, w)
	h.NoInternals(string(res.Body))
	if o.Csr != "" || o.PubMd5 != "" {
		t.Errorf("a CSR was returned although its key was not stored")
	}
	lines := h.LogLines()
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1", len(lines))
	}
	l := lines[0]
	if l.Str("level") != "ERROR" || l.Str("Cause") == "" || l.Str("PlatformRequestId") != platformID || l.Str("RequestId") != o.RequestId {
		t.Errorf("log line %v: want level ERROR, a Cause, PlatformRequestId %s and RequestId %s", l, platformID, o.RequestId)
	}
}

// CheckFunctionErrorObject checks a 5xx function error whose Type is code
// and whose Message is the JSON of the error object with code.
func (h *Harness) CheckFunctionErrorObject(err error, code string) Object {
	h.T.Helper()
	typ, msg := h.FunctionError(err)
	if typ != code {
		h.T.Errorf("error Type %q, want %q", typ, code)
	}
	h.NoInternals(msg)
	o := DecodeJSONObject(h.T, []byte(msg))
	h.CheckObject(o, Want{Code: code, Msg: apierr.MsgInternal})
	return o
}

// CheckFunctionErrorBatch checks the function error of a batch with a 5xx
// item: its Type is Internal.Error and its Message the JSON of the batch,
// whose results are as items say, each logged.
func (h *Harness) CheckFunctionErrorBatch(platformID string, err error, items []Want) {
	h.T.Helper()
	t := h.T
	typ, msg := h.FunctionError(err)
	if typ != apierr.CodeInternal {
		t.Errorf("error Type %q, want %s", typ, apierr.CodeInternal)
	}
	h.NoInternals(msg)
	_, objs := DecodeBatch(t, []byte(msg))
	if len(objs) != len(items) {
		t.Fatalf("%d results in the error message, want %d", len(objs), len(items))
	}
	statuses := make([]int, len(items))
	for i, o := range objs {
		h.CheckObject(o, items[i])
		statuses[i] = StatusOf(items[i].Code)
	}
	h.CheckLogs(platformID, objs, statuses)
}

// CheckConcurrentBatch checks the answer to a batch of ConcurrentItems(n):
// n results in order, each a CSR for its name, with n distinct keys, n
// records stored and n distinct RequestIds.
func (h *Harness) CheckConcurrentBatch(platformID string, out any, n int) {
	h.T.Helper()
	wants := make([]Want, n)
	for i := range wants {
		wants[i] = Want{CN: fmt.Sprintf("n%d.example.com", i), Alg: keys.ECP256}
	}
	objs := h.CheckBatch(platformID, out, wants)
	ids := map[string]bool{}
	for _, o := range objs {
		ids[o.RequestId] = true
	}
	if len(ids) != n {
		h.T.Errorf("%d distinct RequestIds, want %d", len(ids), n)
	}
}
