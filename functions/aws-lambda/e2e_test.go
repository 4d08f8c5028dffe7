package main

// End-to-end tests of the real bootstrap under the official AWS Lambda
// Runtime Interface Emulator: every sample event in deploy/events/aws-lambda
// goes through the real runtime protocol, and every CSR that comes back is
// checked with openssl and found sealed in the store.

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/csrfn/csrfn/cloud/awskms"
	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/internal/kmsfake"
	"github.com/csrfn/csrfn/internal/lambdarie"
	"github.com/csrfn/csrfn/internal/testkit"
	"github.com/csrfn/csrfn/internal/versitygw"
)

const eventsDir = "../../deploy/events/aws-lambda"

// bootBuild is the function for the host, as `make build` builds it for
// arm64: static, with the lambda.norpc tag.
var bootBuild = testkit.GoBuild{Name: "bootstrap", Tags: "lambda.norpc"}

// bootstrap returns the path of bootBuild, built on first use; the
// emulator runs on Linux only.
func bootstrap(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the Runtime Interface Emulator runs on Linux only")
	}
	return bootBuild.Path(t)
}

func TestMain(m *testing.M) { bootBuild.TestMain(m) }

// e2eOutcome is what a sample event must produce.
type e2eOutcome struct {
	status    int      // HTTP status (HTTP envelopes)
	cn        []string // CommonNames of the CSRs returned, in order
	xml       bool     // the HTTP body is XML
	batch     []string // codes of a batch's items ("" = success)
	sqsFailed []string // messageIds reported in batchItemFailures
	stored    int      // records stored (SQS, where no CSR comes back)
}

var lambdaOutcomes = map[string]e2eOutcome{
	"apigw-rest-json.json":          {status: 200, cn: []string{"example.com"}},
	"apigw-rest-form-base64.json":   {status: 200, cn: []string{"xn--bcher-kva.example"}, xml: true},
	"apigw-rest-get-query.json":     {status: 200, cn: []string{"api.example.com"}},
	"http-api-v2-query.json":        {status: 200, cn: []string{"shop.example.org"}},
	"function-url-base64-json.json": {status: 200, cn: []string{"*.apps.example.net"}},
	"alb-query.json":                {status: 200, cn: []string{"intranet.example.com"}},
	"alb-multivalue-form.json":      {status: 200, cn: []string{"vpn.example.com"}, xml: true},
	"sqs-mixed.json": {sqsFailed: []string{"7b0e5b4c-1f2a-4c3d-9e8f-000000000002", "7b0e5b4c-1f2a-4c3d-9e8f-000000000003"},
		stored: 2},
	"eventbridge-one.json":   {cn: []string{"mail.example.com"}},
	"eventbridge-batch.json": {cn: []string{"one.example.com", "three.example.com"}, batch: []string{"", "InvalidParameter", ""}},
	"direct-one.json":        {cn: []string{"renew.example.com"}},
	"scheduled-batch.json":   {cn: []string{"a.renew.example.com", "b.renew.example.com"}, batch: []string{"", ""}},
}

// e2eHTTP is the part of any HTTP envelope response we check.
type e2eHTTP struct {
	StatusCode        int                 `json:"statusCode"`
	StatusDescription string              `json:"statusDescription"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

func (h e2eHTTP) header(name string) string {
	for k, v := range h.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range h.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func TestRIEEverySampleEvent(t *testing.T) {
	store, key, env := testkit.FileStoreEnv(t)
	emu := lambdarie.Start(t, bootstrap(t), env)

	for _, f := range testkit.SampleEvents(t, eventsDir) {
		name := filepath.Base(f)
		want, ok := lambdaOutcomes[name]
		if !ok {
			t.Errorf("%s: no expected e2eOutcome; add it to lambdaOutcomes", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			payload := testkit.ReadFile(t, f)
			before := e2eRecords(t, store)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := emu.Invoke(ctx, payload)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != 200 || res.IsFunctionError {
				t.Fatalf("invoke: status %d, function error %v: %s", res.Status, res.IsFunctionError, res.Payload)
			}
			var body []byte
			switch {
			case want.status != 0:
				var h e2eHTTP
				if err := json.Unmarshal(res.Payload, &h); err != nil {
					t.Fatalf("not an HTTP response: %v\n%s", err, res.Payload)
				}
				if h.StatusCode != want.status {
					t.Fatalf("statusCode %d, want %d: %s", h.StatusCode, want.status, h.Body)
				}
				ct := h.header("Content-Type")
				if want.xml != strings.HasPrefix(ct, "application/xml") {
					t.Errorf("Content-Type %q (xml=%v)", ct, want.xml)
				}
				if h.header("Cache-Control") != "no-store" || h.header("X-Acs-Request-Id") == "" {
					t.Errorf("headers %v %v", h.Headers, h.MultiValueHeaders)
				}
				body = []byte(h.Body)
			case want.sqsFailed != nil:
				var r struct {
					BatchItemFailures []struct{ ItemIdentifier string } `json:"batchItemFailures"`
				}
				if err := json.Unmarshal(res.Payload, &r); err != nil {
					t.Fatalf("not an SQS batch response: %v\n%s", err, res.Payload)
				}
				var got []string
				for _, f := range r.BatchItemFailures {
					got = append(got, f.ItemIdentifier)
				}
				slices.Sort(got)
				if !slices.Equal(got, want.sqsFailed) {
					t.Fatalf("batchItemFailures %v, want %v", got, want.sqsFailed)
				}
				body = res.Payload
			default:
				body = res.Payload
			}
			testkit.CheckIssued(t, store, key, body, want.cn, want.batch)
			added := e2eRecords(t, store) - before
			if wantAdded := len(want.cn) + want.stored; added != wantAdded {
				t.Fatalf("%d records added, want %d", added, wantAdded)
			}
		})
	}
	if !strings.Contains(emu.Logs(), `"PlatformRequestId":"`) {
		t.Error("the function's log lines do not carry the Lambda request id")
	}
}

// TestRIEOutcomeRules checks, through the real runtime, that a 4xx of a
// direct invoke is a normal result, an unrecognisable payload is a 4xx-style
// result and not a crash, and a 5xx is a function error whose type is the
// API code and whose message is the API error object.
func TestRIEOutcomeRules(t *testing.T) {
	store, _, env := testkit.FileStoreEnv(t)
	emu := lambdarie.Start(t, bootstrap(t), env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, tc := range []struct{ payload, code string }{
		{`{"CommonName":"*.co.uk","KeyAlgorithm":"EC_prime256v1"}`, "InvalidParameter"},
		{`{"CommonName":"a.example","Country":"CHN"}`, "InvalidValue.Malformed"},
		{`"hello"`, "InvalidParameter.Body"},
		{`[1,2,3]`, "InvalidParameter.Body"},
		{`{"unrelated":true}`, "InvalidParameter.Body"},
	} {
		res, err := emu.Invoke(ctx, []byte(tc.payload))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Code, Message, RequestId string }
		if res.IsFunctionError || json.Unmarshal(res.Payload, &e) != nil || e.Code != tc.code || e.RequestId == "" {
			t.Errorf("%s: function error %v, payload %s; want a normal result with Code %s", tc.payload, res.IsFunctionError, res.Payload, tc.code)
		}
	}

	// Break the store: its directory becomes a file.
	testkit.BreakStore(t, store)
	res, err := emu.Invoke(ctx, []byte(`{"CommonName":"broken.example","KeyAlgorithm":"EC_prime256v1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsFunctionError || res.ErrorType != "Internal.Error" {
		t.Fatalf("store failure: function error %v type %q, want Internal.Error: %s", res.IsFunctionError, res.ErrorType, res.Payload)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(res.ErrorMessage), &e); err != nil || e.Code != "Internal.Error" ||
		e.Message != "The request processing has failed due to backend service exception." {
		t.Fatalf("errorMessage is not the API error object: %q", res.ErrorMessage)
	}
	if strings.Contains(res.ErrorMessage, store) {
		t.Fatalf("errorMessage leaks an internal cause: %q", res.ErrorMessage)
	}

	// An HTTP envelope still gets an HTTP response with the 500.
	res, err = emu.Invoke(ctx, testkit.ReadFile(t, filepath.Join(eventsDir, "http-api-v2-query.json")))
	if err != nil {
		t.Fatal(err)
	}
	var h e2eHTTP
	if res.IsFunctionError || json.Unmarshal(res.Payload, &h) != nil || h.StatusCode != 500 || !strings.Contains(h.Body, `"Code":"Internal.Error"`) {
		t.Fatalf("HTTP envelope on a broken store: %s", res.Payload)
	}
}

func e2eRecords(t testing.TB, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// TestInvokeEvent runs one sample event through the real bootstrap under the
// emulator: direct-one.json by default, or the file named by CSRFN_EVENT,
// whose response it prints (`make invoke-lambda EVENT=…`).
func TestInvokeEvent(t *testing.T) {
	event, show := testkit.EventFromEnv(t, filepath.Join(eventsDir, "direct-one.json"))
	payload := testkit.ReadFile(t, event)
	store, key, env := testkit.FileStoreEnv(t)
	emu := lambdarie.Start(t, bootstrap(t), env)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := emu.Invoke(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	if show {
		testkit.PrintResponse(res.Payload)
	}
	if res.Status != 200 {
		t.Fatalf("emulator status %d: %s", res.Status, res.Payload)
	}
	testkit.CheckInvokedEvent(t, store, key, res.Payload, show)
}

// BenchmarkColdStart starts the real bootstrap under the emulator b.N times
// and reports, as medians: the runtime's init (process start to ready for
// the first event, as the emulator's INIT REPORT gives it), the time from
// starting the emulator to the first response, and the peak RSS of the
// function process after one RSA_2048 invocation.
func BenchmarkColdStart(b *testing.B) {
	boot := bootstrap(b)
	testkit.BenchColdStarts(b, func(env []string) (testkit.ColdStart, func()) {
		emu := lambdarie.Start(b, boot, env)
		res, err := emu.Invoke(context.Background(), testkit.ColdStartPayload)
		if err != nil || res.IsFunctionError {
			b.Fatalf("invoke: %v %s", err, res.Payload)
		}
		cs, ok := emu.ColdStart()
		if !ok {
			b.Fatal("no cold start figures")
		}
		pid, err := testkit.PidOf(boot)
		if err != nil {
			b.Fatal(err)
		}
		return testkit.ColdStart{Init: cs.RuntimeInit, FirstResponse: cs.ToFirstResponse, Pid: pid}, emu.Stop
	})
}

// TestRIEWithS3AndKMS runs the whole Lambda path as deployed, under the
// emulator: CSRFN_STORE=s3://… on versitygw (a real S3 server that checks
// signatures) and envelope sealing under a fake of AWS KMS's JSON protocol
// that checks SigV4, both reached with the one set of role credentials a
// function has. Every returned CSR verifies with openssl, and its record,
// read back from S3, unseals through KMS to the matching key.
func TestRIEWithS3AndKMS(t *testing.T) {
	kms := kmsfake.NewAWS(t)
	keyARN := kms.CreateKey("alias/csrfn")
	role := kms.NewCredentials(false)
	s3srv := versitygw.StartWith(t, role.AccessKeyID, role.AccessKeySecret)
	const bucket, prefix = "csrfn-keys", "prod"
	s3srv.CreateBucket(t, bucket)

	emu := lambdarie.Start(t, bootstrap(t), []string{
		"AWS_REGION=" + kms.Region(),
		"AWS_ACCESS_KEY_ID=" + role.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + role.AccessKeySecret,
		"AWS_ENDPOINT_URL_KMS=" + kms.URL(),
		"CSRFN_STORE=s3://" + bucket + "/" + prefix,
		"CSRFN_S3_ENDPOINT=" + s3srv.Endpoint,
		"CSRFN_KMS_KEY_ID=" + keyARN,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	opener, err := awskms.New(ctx, keyARN, awskms.Options{Endpoint: kms.URL(), Region: kms.Region(),
		Credentials: credentials.NewStaticCredentialsProvider(role.AccessKeyID, role.AccessKeySecret, "")})
	if err != nil {
		t.Fatal(err)
	}
	s3c := s3srv.Client(s3srv.Credentials())

	for _, name := range []string{"apigw-rest-json.json", "http-api-v2-query.json", "scheduled-batch.json"} {
		payload, err := os.ReadFile(filepath.Join(eventsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		res, err := emu.Invoke(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		if res.IsFunctionError {
			t.Fatalf("%s: function error %s: %s", name, res.ErrorType, res.ErrorMessage)
		}
		body := res.Payload
		var h e2eHTTP
		if json.Unmarshal(res.Payload, &h) == nil && h.StatusCode != 0 {
			if h.StatusCode != 200 {
				t.Fatalf("%s: status %d: %s", name, h.StatusCode, h.Body)
			}
			body = []byte(h.Body)
		}
		issued := testkit.IssuedIn(t, body)
		if len(issued) != len(lambdaOutcomes[name].cn) {
			t.Fatalf("%s: %d CSRs: %s", name, len(issued), body)
		}
		for _, is := range issued {
			testkit.VerifyCSR(t, is.Csr)
			if got := testkit.PubMd5(t, is.Csr); got != is.PubMd5 {
				t.Fatalf("PubMd5 %s, openssl computes %s", is.PubMd5, got)
			}
			obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(prefix + "/" + record.Name(is.PubMd5))})
			if err != nil {
				t.Fatalf("record of %s in S3: %v", is.PubMd5, err)
			}
			data, err := io.ReadAll(obj.Body)
			obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := record.Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Csr != is.Csr || rec.SealedKey.Scheme != awskms.Scheme || rec.SealedKey.KeyID != keyARN || len(rec.SealedKey.WrappedKey) == 0 {
				t.Fatalf("record %s: scheme %q key %q", is.PubMd5, rec.SealedKey.Scheme, rec.SealedKey.KeyID)
			}
			if _, err := record.OpenKey(ctx, rec, awskms.Sealer(opener, nil)); err != nil {
				t.Fatalf("record %s does not unseal through KMS to the CSR's key: %v", is.PubMd5, err)
			}
		}
	}
	if kms.Calls("GenerateDataKey") < 4 {
		t.Fatalf("KMS saw %d GenerateDataKey calls for 4 keys", kms.Calls("GenerateDataKey"))
	}
	if strings.Contains(emu.Logs(), role.AccessKeySecret) {
		t.Fatal("the function logged the role's secret key")
	}

	// A KMS outage: a 5xx function error for a direct invoke, nothing stored.
	kms.SetOutage(kmsfake.Unavailable)
	before := listKeys(t, s3c, bucket)
	res, err := emu.Invoke(ctx, []byte(`{"CommonName":"outage.example.com","KeyAlgorithm":"EC_prime256v1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsFunctionError || res.ErrorType != "Internal.Error" {
		t.Fatalf("KMS outage: function error %v type %q: %s", res.IsFunctionError, res.ErrorType, res.Payload)
	}
	if after := listKeys(t, s3c, bucket); after != before {
		t.Fatalf("KMS outage stored something: %d objects, had %d", after, before)
	}
}

func listKeys(t *testing.T, c *s3.Client, bucket string) int {
	t.Helper()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}
