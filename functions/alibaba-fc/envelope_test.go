package main

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aliyun/fc-runtime-go-sdk/events"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/internal/adaptertest"
)

// ---------------------------------------------------------------------------
// Harness: the shared adaptertest harness on the FC adapter.

// fcAdapter builds the adapter with newAdapter, its log going through the
// logOutput seam, and invokes it as the FC runtime does.
var fcAdapter = adaptertest.Adapter{
	LogOutput: &logOutput,
	New:       adaptertest.Constructor(newAdapter),
	Context: func(platformID string) context.Context {
		return fccontext.NewContext(context.Background(), &fccontext.FcContext{
			RequestID: platformID,
			Region:    "cn-hangzhou",
			AccountId: "1234567890123456",
		})
	},
	// The SDK's own error type, which the runtime reports as is.
	FunctionError: adaptertest.FunctionErrorAs(func(e messages.InvokeResponse_Error) (string, string) {
		return e.Type, e.Message
	}),
}

func newHarness(t *testing.T) *adaptertest.Harness { return adaptertest.New(t, fcAdapter) }

// want is the expected outcome of one request.
type want = adaptertest.Want

// ---------------------------------------------------------------------------
// Outputs.

// asHTTP checks that out is an HTTP trigger response, and that it encodes
// to exactly {statusCode, headers, isBase64Encoded, body}.
func asHTTP(t *testing.T, out any) adaptertest.HTTPResult {
	t.Helper()
	r, ok := out.(events.HTTPTriggerResponse)
	if !ok {
		t.Fatalf("output is %T, want events.HTTPTriggerResponse", out)
	}
	_, m := adaptertest.JSONFields(t, r)
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
	return adaptertest.HTTPResult{Status: r.StatusCode, Header: adaptertest.Header(r.Headers), Body: []byte(r.Body)}
}

// ---------------------------------------------------------------------------
// Sample events.

const samplesDir = "../../deploy/events/alibaba-fc"

// sampleKinds is the naming rule of the sample files.
var sampleKinds = []adaptertest.Prefix[envelope]{
	{Prefix: "http-", Kind: envHTTP},
	{Prefix: "timer-", Kind: envTimer},
	{Prefix: "eventbridge", Kind: envCloudEvent},
	{Prefix: "direct-", Kind: envDirect},
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

// TestSampleEvents runs every file of deploy/events/alibaba-fc: detected
// envelope, output type, status and body, CSR, stored record and log line.
func TestSampleEvents(t *testing.T) {
	adaptertest.ForEachSample(t, samplesDir, sampleWants, func(t *testing.T, name string, payload []byte) {
		kind, ok := adaptertest.KindByPrefix(name, sampleKinds)
		if !ok {
			t.Fatalf("sample %s does not follow the naming rule of sampleKinds", name)
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
		out := h.HandleOK(pid, payload)
		if kind == envHTTP {
			h.CheckHTTPSample(pid, asHTTP(t, out), sw.items)
			return
		}
		h.CheckInvokeSample(pid, out, sw.items, sw.batch)
	})
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
			out := h.HandleOK("pid-malformed", []byte(c.payload))
			h.CheckRefused("pid-malformed", out, c.code)
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

// singleValues is q as FC delivers a query: one decoded value per name.
func singleValues(q url.Values) map[string]string {
	m := map[string]string{}
	for k := range q {
		m[k] = q.Get(k)
	}
	return m
}

// TestHTTPBodies checks base64 bodies, missing bodies, the 64 KiB limit and
// the other HTTP refusals of the HTTP trigger.
func TestHTTPBodies(t *testing.T) {
	cases := append(adaptertest.HTTPBodyCases(),
		adaptertest.HTTPCase{Name: "plain JSON", Method: "POST", ContentType: "application/json; charset=utf-8",
			Body: adaptertest.Ptr(`{"CommonName":"plain.example.com","SANs":["198.51.100.2"],"KeyAlgorithm":"EC_prime256v1"}`),
			Want: want{CN: "plain.example.com", SANs: []string{"plain.example.com", "198.51.100.2"}, Alg: keys.ECP256}},
		adaptertest.HTTPCase{Name: "method not allowed", Method: "PUT", Query: url.Values{"CommonName": {"x.example.com"}},
			Want: want{Code: apierr.CodeUnsupportedHTTPMethod}},
		adaptertest.HTTPCase{Name: "unknown action", Method: "GET", Query: url.Values{"Action": {"DescribeCdnDomain"}, "CommonName": {"x.example.com"}},
			Want: want{Code: apierr.CodeActionNotFound, Msg: apierr.MsgActionNotFound}},
	)
	h := newHarness(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			h := h.WithT(t)
			payload := httpEvent(c.Method, singleValues(c.Query), "h.example", c.ContentType, c.Body, c.Base64)
			if got, _ := detect(payload); got != envHTTP {
				t.Fatalf("detect = %d, want %d", got, envHTTP)
			}
			out := h.HandleOK("pid-body", payload)
			h.CheckHTTPCase(asHTTP(t, out), c.Want, "h.example")
		})
	}
	t.Run("no Host header", func(t *testing.T) {
		h := h.WithT(t)
		out := h.HandleOK("pid-body", httpEvent("GET", nil, "", "", nil, false))
		o := h.CheckHTTP(asHTTP(t, out), want{Code: apierr.CodeMissingParameter})
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
	out := h.HandleOK("pid-query", httpEvent("GET", query, "h.example", "", adaptertest.Ptr(""), false))
	h.CheckHTTP(asHTTP(t, out), want{
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
			h.BreakStore()
			payload := httpEvent("POST", map[string]string{"Format": format}, "h.example", "application/json",
				adaptertest.Ptr(`{"CommonName":"fail.example.com","KeyAlgorithm":"EC_prime256v1"}`), false)
			out := h.HandleOK("pid-5xx", payload)
			w := want{Code: apierr.CodeInternal, Msg: apierr.MsgInternal}
			if format == "XML" {
				w.XMLRoot = "Error"
			}
			h.CheckHTTPServerError("pid-5xx", asHTTP(t, out), w)
		})
	}
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
	wraps := []adaptertest.Wrap{
		{Name: "direct", Wrap: adaptertest.Direct},
		{Name: "timer", Wrap: timerEvent},
		{Name: "CloudEvent", Wrap: cloudEvent},
		{Name: "CloudEvent string data", Wrap: cloudEventStringData},
	}
	for _, w := range wraps {
		t.Run("success "+w.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			out := h.HandleOK("pid-ok", []byte(w.Wrap(good)))
			o := adaptertest.DirectObject(t, out)
			h.CheckObject(o, want{CN: "five.example.com", SANs: []string{"five.example.com"}, Alg: keys.ECP256})
			h.CheckLogs("pid-ok", []adaptertest.Object{o}, []int{200})
		})
		t.Run("4xx "+w.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			out := h.HandleOK("pid-4xx", []byte(w.Wrap(bad)))
			o := adaptertest.DirectObject(t, out)
			h.CheckObject(o, want{Code: apierr.CodeInvalidParameter})
			h.CheckLogs("pid-4xx", []adaptertest.Object{o}, []int{400})
		})
		t.Run("5xx "+w.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.BreakStore()
			_, err := h.Handle("pid-5xx", []byte(w.Wrap(good)))
			o := h.CheckFunctionErrorObject(err, apierr.CodeInternal)
			h.CheckLogs("pid-5xx", []adaptertest.Object{o}, []int{500})
		})
		t.Run("5xx batch "+w.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.BreakStore()
			_, err := h.Handle("pid-5xx", []byte(w.Wrap(batch)))
			h.CheckFunctionErrorBatch("pid-5xx", err, []want{
				{Code: apierr.CodeInternal, Msg: apierr.MsgInternal},
				{Code: apierr.CodeInvalidParameter},
			})
		})
	}
	t.Run("country", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		out := h.HandleOK("pid-4xx", []byte(timerEvent(`{"CommonName":"c.example.com","Country":"CHN"}`)))
		h.CheckObject(adaptertest.DirectObject(t, out), want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength})
	})
}

// ---------------------------------------------------------------------------
// Batches and concurrency.

// TestBatch checks one result per item in order with each item's code,
// distinct stored keys for the good ones, and the batch-level refusals.
func TestBatch(t *testing.T) {
	t.Run("mixed", func(t *testing.T) {
		t.Parallel()
		items := []adaptertest.Item{
			{Payload: `{"CommonName":"good1.example.com","KeyAlgorithm":"EC_prime256v1"}`, Want: want{CN: "good1.example.com", SANs: []string{"good1.example.com"}, Alg: keys.ECP256}},
			{Payload: `{"CommonName":"bad..example.com","KeyAlgorithm":"EC_prime256v1"}`, Want: want{Code: apierr.CodeInvalidParameter}},
			{Payload: `{"CommonName":"c.example.com","Country":"CHN","KeyAlgorithm":"EC_prime256v1"}`, Want: want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength}},
			{Payload: `{"CommonName":"c.example.com","Country":"C1","KeyAlgorithm":"EC_prime256v1"}`, Want: want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLetters}},
			{Payload: `42`, Want: want{Code: apierr.CodeBody}},
			{Payload: `["CommonName","x.example.com"]`, Want: want{Code: apierr.CodeBody}},
			{Payload: `{"CommonName":"例子.Example.cn","SANs":["x.例子.example.cn","2001:DB8::7"],"KeyAlgorithm":"EC_prime256v1"}`, Want: want{CN: "xn--fsqu00a.example.cn", SANs: []string{"xn--fsqu00a.example.cn", "x.xn--fsqu00a.example.cn", "2001:db8::7"}, Alg: keys.ECP256}},
			{Payload: `{"CommonName":""}`, Want: want{Code: apierr.CodeMissingParameter}},
			{Payload: `{"CommonName":"g.example.com","KeyAlgorithm":"RSA_1024"}`, Want: want{Code: apierr.CodeInvalidParameter}},
			{Payload: `{"CommonName":"good3.example.com","KeyAlgorithm":"EC_prime256v1","Email":"ops@example.com"}`, Want: want{CN: "good3.example.com", Alg: keys.ECP256, Subject: map[string]string{"emailAddress": "ops@example.com"}}},
		}
		fcAdapter.CheckBatches(t, []adaptertest.Wrap{
			{Name: "direct", Wrap: adaptertest.Direct},
			{Name: "timer", Wrap: timerEvent},
			{Name: "CloudEvent", Wrap: cloudEvent},
		}, items)
	})
	fcAdapter.CheckRefusedBatches(t,
		adaptertest.RefusedBatch{Name: "101 items by timer", Payload: timerEvent(adaptertest.TooManyItems())},
		adaptertest.RefusedBatch{Name: "Requests not an array", Payload: `{"Requests":"x.example.com"}`},
		adaptertest.RefusedBatch{Name: "Requests and Country", Payload: cloudEvent(`{"Country":"DE","Requests":[` + adaptertest.BatchItem + `]}`)},
	)
}

// TestConcurrentBatch runs a 20-item batch and expects 20 distinct records.
func TestConcurrentBatch(t *testing.T) {
	fcAdapter.CheckConcurrentBatch(t, timerEvent)
}
