package main

// End-to-end tests of the real `main` binary under internal/fcemu, a test
// emulator of Function Compute's runtime API written from the protocol of
// fc-runtime-go-sdk v0.3.1 (Alibaba publishes no official emulator). Every
// sample event in deploy/events/alibaba-fc goes through it, and every CSR
// that comes back is checked with openssl and found sealed in the store.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/internal/fcemu"
	"github.com/csrfn/csrfn/internal/testkit"
)

const eventsDir = "../../deploy/events/alibaba-fc"

// mainBuild is the function for the host with the test hook that lets a
// request force a panic (build tag csrfn_testhooks).
var mainBuild = testkit.GoBuild{Name: "main", Tags: "csrfn_testhooks"}

// fcMain returns the path of mainBuild, built on first use.
func fcMain(t testing.TB) string {
	t.Helper()
	return mainBuild.Path(t)
}

func TestMain(m *testing.M) { mainBuild.TestMain(m) }

type e2eOutcome struct {
	status int      // HTTP trigger status
	xml    bool     //
	cn     []string // CommonNames of the returned CSRs, in order
	batch  []string // codes of a batch's items
}

var fcOutcomes = map[string]e2eOutcome{
	"http-json.json":        {status: 200, cn: []string{"xn--fsqu00a.example.cn"}},
	"http-form-base64.json": {status: 200, xml: true, cn: []string{"cdn.example.com"}},
	"http-get-query.json":   {status: 200, cn: []string{"get.example.com"}},
	"timer-one.json":        {cn: []string{"timer.example.com"}},
	"timer-batch.json":      {cn: []string{"t1.example.com", "t2.example.com"}, batch: []string{"", ""}},
	"eventbridge.json":      {cn: []string{"eb.example.com"}},
	"direct-one.json":       {cn: []string{"direct.example.com"}},
	"direct-batch.json":     {cn: []string{"d1.example.com"}, batch: []string{"", "MissingParameter"}},
}

type fcHTTP struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Body            string            `json:"body"`
}

func startFC(t *testing.T) (emu *fcemu.Emulator, store string, key []byte) {
	store, key, env := testkit.FileStoreEnv(t)
	return fcemu.Start(t, fcMain(t), env), store, key
}

func TestFCEverySampleEvent(t *testing.T) {
	emu, store, key := startFC(t)
	for _, f := range testkit.SampleEvents(t, eventsDir) {
		name := filepath.Base(f)
		want, ok := fcOutcomes[name]
		if !ok {
			t.Errorf("%s: no expected outcome; add it to fcOutcomes", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			payload := testkit.ReadFile(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := emu.Invoke(ctx, payload, fcemu.WithTimeout(50*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError {
				t.Fatalf("function error: %+v", res.Error)
			}
			body := res.Payload
			if want.status != 0 {
				var h fcHTTP
				if err := json.Unmarshal(res.Payload, &h); err != nil {
					t.Fatalf("not an HTTP trigger response: %v\n%s", err, res.Payload)
				}
				if h.StatusCode != want.status || h.IsBase64Encoded {
					t.Fatalf("statusCode %d base64 %v, want %d: %s", h.StatusCode, h.IsBase64Encoded, want.status, h.Body)
				}
				if ct := h.Headers["Content-Type"]; want.xml != strings.HasPrefix(ct, "application/xml") {
					t.Errorf("Content-Type %q (xml=%v)", ct, want.xml)
				}
				if h.Headers["Cache-Control"] != "no-store" || h.Headers["X-Acs-Request-Id"] == "" {
					t.Errorf("headers %v", h.Headers)
				}
				body = []byte(h.Body)
			}
			testkit.CheckIssued(t, store, key, body, want.cn, want.batch)
		})
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("runtime protocol violations: %v", v)
	}
	if !strings.Contains(emu.Stdout(), `"PlatformRequestId":"`) {
		t.Error("the function's log lines do not carry the FC request id")
	}
}

// TestFCConcurrentAndPanic: several invocations in flight at once (the SDK
// keeps several `next` calls outstanding), then a handler panic, after
// which the same process must keep serving.
func TestFCConcurrentAndPanic(t *testing.T) {
	emu, store, key := startFC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	const n = 12
	var wg sync.WaitGroup
	results := make([]fcemu.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf(`{"CommonName":"c%d.example.com","KeyAlgorithm":"EC_prime256v1"}`, i)
			results[i], errs[i] = emu.Invoke(ctx, []byte(p), fcemu.WithTimeout(60*time.Second))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || results[i].IsError {
			t.Fatalf("invocation %d: %v %+v", i, errs[i], results[i].Error)
		}
		is := testkit.IssuedIn(t, results[i].Payload)
		if len(is) != 1 || is[0].CommonName != fmt.Sprintf("c%d.example.com", i) {
			t.Fatalf("invocation %d answered %s", i, results[i].Payload)
		}
		seen[is[0].PubMd5] = true
		testkit.CheckStored(t, store, key, is[0].PubMd5, is[0].Csr)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct keys for %d requests", len(seen), n)
	}

	res, err := emu.Invoke(ctx, []byte(`{"CommonName":"csrfn-test-panic.example"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !res.Error.ShouldExit {
		t.Fatalf("forced panic: %+v", res)
	}
	if exited, _ := emu.Exited(); exited {
		t.Fatal("the process exited after a handler panic")
	}
	res, err = emu.Invoke(ctx, []byte(`{"CommonName":"after-panic.example","KeyAlgorithm":"EC_prime256v1"}`))
	if err != nil || res.IsError {
		t.Fatalf("after the panic: %v %+v", err, res.Error)
	}
	if is := testkit.IssuedIn(t, res.Payload); len(is) != 1 {
		t.Fatalf("after the panic: %s", res.Payload)
	}
}

// TestFCOutcomeRules: a 4xx is a normal result; a 5xx is a function error
// whose type is the API code and whose message is the API error object; an
// HTTP trigger still gets an HTTP response.
func TestFCOutcomeRules(t *testing.T) {
	emu, store, _ := startFC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tc := range []struct{ payload, code string }{
		{`{"CommonName":"*.com"}`, "InvalidParameter"},
		{`{"triggerTime":"2026-12-04T00:00:00Z","triggerName":"t","payload":"not json"}`, "InvalidParameter.Body"},
		{`{"specversion":"1.0","id":"x","source":"s","type":"t","data":{}}`, "InvalidParameter.Body"},
		{`42`, "InvalidParameter.Body"},
		{`hello`, "InvalidParameter.Body"}, // not JSON: the SDK must hand it over untouched
		{``, "InvalidParameter.Body"},
	} {
		res, err := emu.Invoke(ctx, []byte(tc.payload))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Code, RequestId string }
		if res.IsError || json.Unmarshal(res.Payload, &e) != nil || e.Code != tc.code || e.RequestId == "" {
			t.Errorf("%s: error %+v payload %s; want a normal result with Code %s", tc.payload, res.Error, res.Payload, tc.code)
		}
	}

	testkit.BreakStore(t, store)
	res, err := emu.Invoke(ctx, []byte(`{"Requests":[{"CommonName":"x.example","KeyAlgorithm":"EC_prime256v1"},{"CommonName":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || res.Error.Type != "Internal.Error" || res.Error.ShouldExit {
		t.Fatalf("batch on a broken store: %+v %s", res.Error, res.Payload)
	}
	if got := testkit.Codes(t, []byte(res.Error.Message)); !slices.Equal(got, []string{"Internal.Error", "MissingParameter"}) {
		t.Fatalf("function error message holds codes %q", got)
	}
	if strings.Contains(res.Error.Message, store) {
		t.Fatalf("function error leaks an internal cause: %s", res.Error.Message)
	}
	res, err = emu.Invoke(ctx, testkit.ReadFile(t, filepath.Join(eventsDir, "http-get-query.json")))
	if err != nil {
		t.Fatal(err)
	}
	var h fcHTTP
	if res.IsError || json.Unmarshal(res.Payload, &h) != nil || h.StatusCode != 500 || !strings.Contains(h.Body, `"Code":"Internal.Error"`) {
		t.Fatalf("HTTP trigger on a broken store: %+v %s", res.Error, res.Payload)
	}
}

// TestInvokeEvent runs one sample event through the real binary under the
// emulator: direct-one.json by default, or the file named by CSRFN_EVENT,
// whose response it prints (`make invoke-fc EVENT=…`).
func TestInvokeEvent(t *testing.T) {
	event, show := testkit.EventFromEnv(t, filepath.Join(eventsDir, "direct-one.json"))
	payload := testkit.ReadFile(t, event)
	emu, store, key := startFC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	res, err := emu.Invoke(ctx, payload, fcemu.WithTimeout(100*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if show {
		if res.IsError {
			fmt.Printf("function error (type %s):\n", res.Error.Type)
			testkit.PrintResponse([]byte(res.Error.Message))
		} else {
			testkit.PrintResponse(res.Payload)
		}
	}
	testkit.CheckInvokedEvent(t, store, key, res.Payload, show)
}

// BenchmarkColdStart starts the real binary under the emulator b.N times
// and reports, as medians: the time from process start to its first `next`
// call (init done, ready for an event), to the first result of an RSA_2048
// request, and the peak RSS of the process after that invocation.
func BenchmarkColdStart(b *testing.B) {
	bin := fcMain(b)
	testkit.BenchColdStarts(b, func(env []string) (testkit.ColdStart, func()) {
		emu := fcemu.Start(b, bin, env)
		res, err := emu.Invoke(context.Background(), testkit.ColdStartPayload, fcemu.WithTimeout(60*time.Second))
		if err != nil || res.IsError {
			b.Fatalf("invoke: %v %+v", err, res.Error)
		}
		next, ok1 := emu.FirstNextAt()
		first, ok2 := emu.FirstResultAt()
		if !ok1 || !ok2 {
			b.Fatal("no cold start figures")
		}
		return testkit.ColdStart{Init: next, FirstResponse: first, Pid: emu.Pid()}, func() {
			if err := emu.Kill(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
