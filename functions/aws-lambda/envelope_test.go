package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/internal/adaptertest"
)

// ---------------------------------------------------------------------------
// Harness: the shared adaptertest harness on the Lambda adapter.

// lambdaAdapter builds the adapter with newAdapter, its log going through
// the logOutput seam, and invokes it as the Lambda runtime does.
var lambdaAdapter = adaptertest.Adapter{
	LogOutput: &logOutput,
	New:       adaptertest.Constructor(newAdapter),
	Context: func(platformID string) context.Context {
		return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
			AwsRequestID:       platformID,
			InvokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:csrfn",
		})
	},
	// The SDK's own error type, which the runtime reports as is.
	FunctionError: adaptertest.FunctionErrorAs(func(e messages.InvokeResponse_Error) (string, string) {
		return e.Type, e.Message
	}),
}

func newHarness(t *testing.T) *adaptertest.Harness { return adaptertest.New(t, lambdaAdapter) }

// want is the expected outcome of one request.
type want = adaptertest.Want

// ---------------------------------------------------------------------------
// Outputs.

// asHTTP checks that out is the response type of kind and returns its
// status, headers and body. multi says the ALB request used multi-value
// headers, which the response must then use too.
func asHTTP(t *testing.T, kind envelope, out any, multi bool) adaptertest.HTTPResult {
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
		return adaptertest.HTTPResult{Status: r.StatusCode, Header: adaptertest.Header(r.Headers), Body: []byte(r.Body)}
	case envHTTPv2:
		r, ok := out.(events.APIGatewayV2HTTPResponse)
		if !ok {
			t.Fatalf("output is %T, want events.APIGatewayV2HTTPResponse", out)
		}
		if r.IsBase64Encoded || r.MultiValueHeaders != nil || r.Cookies != nil {
			t.Errorf("v2 response: isBase64Encoded %v, multiValueHeaders %v, cookies %v", r.IsBase64Encoded, r.MultiValueHeaders, r.Cookies)
		}
		return adaptertest.HTTPResult{Status: r.StatusCode, Header: adaptertest.Header(r.Headers), Body: []byte(r.Body)}
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
			return adaptertest.HTTPResult{Status: r.StatusCode, Header: http.Header(r.MultiValueHeaders), Body: []byte(r.Body)}
		}
		if len(r.Headers) == 0 || len(r.MultiValueHeaders) != 0 {
			t.Errorf("single-value request: response headers %v, multiValueHeaders %v; want headers only", r.Headers, r.MultiValueHeaders)
		}
		return adaptertest.HTTPResult{Status: r.StatusCode, Header: adaptertest.Header(r.Headers), Body: []byte(r.Body)}
	}
	t.Fatalf("envelope %d is not an HTTP envelope", kind)
	return adaptertest.HTTPResult{}
}

// ---------------------------------------------------------------------------
// Sample events.

const samplesDir = "../../deploy/events/aws-lambda"

// sampleKinds is the naming rule of the sample files.
var sampleKinds = []adaptertest.Prefix[envelope]{
	{Prefix: "apigw-rest-", Kind: envRESTv1},
	{Prefix: "http-api-v2-", Kind: envHTTPv2},
	{Prefix: "function-url-", Kind: envHTTPv2},
	{Prefix: "alb-", Kind: envALB},
	{Prefix: "sqs-", Kind: envSQS},
	{Prefix: "eventbridge-", Kind: envEventBridge},
	{Prefix: "direct-", Kind: envDirect},
	{Prefix: "scheduled-", Kind: envDirect},
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
	adaptertest.ForEachSample(t, samplesDir, sampleWants, func(t *testing.T, name string, payload []byte) {
		kind, ok := adaptertest.KindByPrefix(name, sampleKinds)
		if !ok {
			t.Fatalf("sample %s does not follow the naming rule of sampleKinds", name)
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
		out := h.HandleOK(pid, payload)
		switch kind {
		case envRESTv1, envHTTPv2, envALB:
			res := asHTTP(t, kind, out, kind == envALB && usesMultiValueHeaders(t, payload))
			h.CheckHTTPSample(pid, res, sw.items)
		case envSQS:
			checkSQSSample(h, pid, out, sw)
		default:
			h.CheckInvokeSample(pid, out, sw.items, sw.batch)
		}
	})
}

// checkSQSSample checks the answer to an SQS sample: the failed messages,
// the stored records and their CSRs, and the codes of the log lines.
func checkSQSSample(h *adaptertest.Harness, pid string, out any, sw sampleWant) {
	h.T.Helper()
	t := h.T
	failed := sqsFailures(t, out)
	if sw.sqsStored == nil { // a new sample: form only
		return
	}
	if !slices.Equal(failed, sw.sqsFailed) {
		t.Errorf("batchItemFailures %v, want %v", failed, sw.sqsFailed)
	}
	names := h.RecordNames()
	if len(names) != len(sw.sqsStored) {
		t.Errorf("%d records stored, want %d: %v", len(names), len(sw.sqsStored), names)
	}
	for _, n := range names {
		r := h.LoadRecord(strings.TrimSuffix(n, ".json"))
		if r == nil {
			continue
		}
		w, ok := sw.sqsStored[r.CommonName]
		if !ok {
			t.Errorf("unexpected record for %q", r.CommonName)
			continue
		}
		h.CheckCSR(adaptertest.Object{RequestId: r.RequestId, PubMd5: r.PubMd5, Csr: r.Csr, CommonName: r.CommonName}, w)
	}
	var codes []string
	for _, l := range h.LogLines() {
		if l.Str("PlatformRequestId") != pid {
			t.Errorf("log line without the platform request id: %v", l)
		}
		codes = append(codes, l.Str("Code"))
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
	raw, m := adaptertest.JSONFields(t, r)
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
			out := h.HandleOK("pid-malformed", []byte(c.payload))
			if c.kind == envSQS {
				if got := sqsFailures(t, out); !slices.Equal(got, c.sqsFail) {
					t.Errorf("batchItemFailures %v, want %v", got, c.sqsFail)
				}
				lines := h.LogLines()
				if len(lines) != 1 || lines[0].Str("Code") != c.code || lines[0].Num("Status") != adaptertest.StatusOf(c.code) {
					t.Errorf("log lines %v, want one with Code %s", lines, c.code)
				}
				h.CheckNothingStored()
				return
			}
			h.CheckRefused("pid-malformed", out, c.code)
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

// TestHTTPBodies checks base64 bodies, missing bodies and the 64 KiB limit
// in every HTTP envelope, and the refusals of methods and actions.
func TestHTTPBodies(t *testing.T) {
	cases := append(adaptertest.HTTPBodyCases(),
		adaptertest.HTTPCase{Name: "method not allowed", Method: "DELETE", Query: url.Values{"CommonName": {"x.example.com"}},
			Want: want{Code: apierr.CodeUnsupportedHTTPMethod}},
		adaptertest.HTTPCase{Name: "unknown action", Method: "GET", Query: url.Values{"Action": {"DescribeDcdnDomains"}, "CommonName": {"x.example.com"}},
			Want: want{Code: apierr.CodeActionNotFound, Msg: apierr.MsgActionNotFound}},
	)
	for _, k := range httpKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					h := h.WithT(t)
					payload := httpEvent(k.kind, k.multi, c.Method, c.Query, c.ContentType, c.Body, c.Base64)
					if got := detect(payload); got != k.kind {
						t.Fatalf("detect = %d, want %d", got, k.kind)
					}
					out := h.HandleOK("pid-body", payload)
					h.CheckHTTPCase(asHTTP(t, k.kind, out, k.multi), c.Want, "h.example")
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
			out := h.HandleOK("pid-query", []byte(c.payload))
			h.CheckHTTP(asHTTP(t, c.kind, out, c.multi), w)
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
			h.BreakStore()
			payload := httpEvent(k.kind, k.multi, "POST", nil, "application/json",
				adaptertest.Ptr(`{"CommonName":"fail.example.com","KeyAlgorithm":"EC_prime256v1"}`), false)
			out := h.HandleOK("pid-5xx", payload)
			h.CheckHTTPServerError("pid-5xx", asHTTP(t, k.kind, out, k.multi), want{Code: apierr.CodeInternal, Msg: apierr.MsgInternal})
		})
	}
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
			out := h.HandleOK("pid-4xx", []byte(p))
			h.CheckObject(adaptertest.DirectObject(t, out), want{Code: apierr.CodeInvalidParameter})
		}
	})
	t.Run("country", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		out := h.HandleOK("pid-4xx", []byte(`{"CommonName":"c.example.com","Country":"CHN"}`))
		h.CheckObject(adaptertest.DirectObject(t, out), want{Code: apierr.CodeMalformed, Msg: apierr.MsgCountryLength})
	})
	for _, c := range []struct{ name, payload string }{
		{"direct one", good},
		{"EventBridge one", oneEB(good)},
	} {
		t.Run("5xx "+c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.BreakStore()
			_, err := h.Handle("pid-5xx", []byte(c.payload))
			o := h.CheckFunctionErrorObject(err, apierr.CodeInternal)
			h.CheckLogs("pid-5xx", []adaptertest.Object{o}, []int{500})
		})
	}
	for _, c := range []struct{ name, payload string }{
		{"direct batch", batch},
		{"EventBridge batch", oneEB(batch)},
	} {
		t.Run("5xx "+c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.BreakStore()
			_, err := h.Handle("pid-5xx", []byte(c.payload))
			h.CheckFunctionErrorBatch("pid-5xx", err, []want{
				{Code: apierr.CodeInternal, Msg: apierr.MsgInternal},
				{Code: apierr.CodeInvalidParameter},
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Batches, SQS, concurrency.

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
			{Payload: `"CommonName=x.example.com"`, Want: want{Code: apierr.CodeBody}},
			{Payload: `{"CommonName":"Good2.Example.com","SANs":["x.good2.example.com","2001:DB8::7"],"KeyAlgorithm":"EC_prime256v1"}`, Want: want{CN: "good2.example.com", SANs: []string{"good2.example.com", "x.good2.example.com", "2001:db8::7"}, Alg: keys.ECP256}},
			{Payload: `{"CommonName":""}`, Want: want{Code: apierr.CodeMissingParameter}},
			{Payload: `{"CommonName":"g.example.com","KeyAlgorithm":"DSA_1024"}`, Want: want{Code: apierr.CodeInvalidParameter}},
			{Payload: `{"CommonName":"good3.example.com","KeyAlgorithm":"EC_prime256v1","Format":"XML"}`, Want: want{CN: "good3.example.com", Alg: keys.ECP256}},
		}
		lambdaAdapter.CheckBatches(t, []adaptertest.Wrap{
			{Name: "direct", Wrap: adaptertest.Direct},
			{Name: "EventBridge", Wrap: func(p string) string { return `{"detail-type":"csrfn","source":"test","detail":` + p + `}` }},
		}, items)
	})
	lambdaAdapter.CheckRefusedBatches(t,
		adaptertest.RefusedBatch{Name: "Requests not an array", Payload: `{"Requests":{"CommonName":"x.example.com"}}`},
		adaptertest.RefusedBatch{Name: "Requests and KeyAlgorithm", Payload: `{"KeyAlgorithm":"EC_prime256v1","Requests":[` + adaptertest.BatchItem + `]}`},
	)
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
		out := h.HandleOK("pid-sqs", []byte(p))
		if got := sqsFailures(t, out); len(got) != 0 {
			t.Errorf("batchItemFailures %v, want none", got)
		}
		var cns []string
		for _, n := range h.RecordNames() {
			if r := h.LoadRecord(strings.TrimSuffix(n, ".json")); r != nil {
				cns = append(cns, r.CommonName)
			}
		}
		sort.Strings(cns)
		if !slices.Equal(cns, []string{"dup.example.com", "other.example.com"}) {
			t.Errorf("stored %v, want one record each for dup.example.com and other.example.com", cns)
		}
		if n := len(h.LogLines()); n != 2 {
			t.Errorf("%d log lines, want 2", n)
		}
	})
	t.Run("failing store", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.BreakStore()
		p := sqsEvent(
			[2]string{"m-1", `{"CommonName":"a.example.com","KeyAlgorithm":"EC_prime256v1"}`},
			[2]string{"m-2", `{"CommonName":"b.example.com","KeyAlgorithm":"EC_prime256v1"}`},
			[2]string{"m-3", `{"CommonName":"c.example.com","KeyAlgorithm":"EC_prime256v1"}`},
		)
		out := h.HandleOK("pid-sqs", []byte(p))
		if got := sqsFailures(t, out); !slices.Equal(got, []string{"m-1", "m-2", "m-3"}) {
			t.Errorf("batchItemFailures %v, want every record", got)
		}
		for _, l := range h.LogLines() {
			if l.Str("Code") != apierr.CodeInternal || l.Str("PlatformRequestId") != "pid-sqs" {
				t.Errorf("log line %v: want Code %s and the platform request id", l, apierr.CodeInternal)
			}
		}
	})
}

// TestConcurrentBatch runs a 20-item batch and expects 20 distinct records.
func TestConcurrentBatch(t *testing.T) {
	lambdaAdapter.CheckConcurrentBatch(t, adaptertest.Direct)
}
