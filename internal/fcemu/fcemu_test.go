package fcemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoReply mirrors testdata/echofn's reply.
type echoReply struct {
	Echo        json.RawMessage `json:"echo"`
	RequestID   string          `json:"requestId"`
	Function    string          `json:"function"`
	Handler     string          `json:"handler"`
	Memory      string          `json:"memory"`
	Timeout     int             `json:"timeout"`
	Region      string          `json:"region"`
	AccountID   string          `json:"accountId"`
	RetryCount  int             `json:"retryCount"`
	AccessKeyID string          `json:"accessKeyId"`
	SecretSet   bool            `json:"secretSet"`
	Token       string          `json:"securityToken"`
	DeadlineMs  int64           `json:"deadlineMs"`
	EnvValue    *string         `json:"envValue"`
	Initialized bool            `json:"initialized"`
}

// echofn is built once per test binary run (TestMain owns the directory).
var (
	echofnDir  string
	echofnOnce sync.Once
	echofnPath string
	echofnErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fcemu-echofn-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	echofnDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildEchofn compiles testdata/echofn against the real fc-runtime-go-sdk
// with `go build` (once) and returns the binary's path.
func buildEchofn(t *testing.T) string {
	t.Helper()
	echofnOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			echofnErr = fmt.Errorf("go tool not found: %v", err)
			return
		}
		out := filepath.Join(echofnDir, "echofn")
		cmd := exec.Command(gobin, "build", "-o", out, "./testdata/echofn")
		if b, err := cmd.CombinedOutput(); err != nil {
			echofnErr = fmt.Errorf("go build echofn: %v\n%s", err, b)
			return
		}
		echofnPath = out
	})
	if echofnErr != nil {
		t.Fatal(echofnErr)
	}
	return echofnPath
}

func startEcho(t *testing.T, env ...string) *Emulator {
	t.Helper()
	return Start(t, buildEchofn(t), env)
}

// startIdle starts echofn without the SDK loop: the test is the runtime.
func startIdle(t *testing.T) *Emulator {
	t.Helper()
	return startEcho(t, "ECHOFN_IDLE=1")
}

func decode(t *testing.T, res Result) echoReply {
	t.Helper()
	if res.IsError {
		t.Fatalf("request %s: unexpected error result: %s", res.RequestID, res.Payload)
	}
	var r echoReply
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("request %s: bad reply %q: %v", res.RequestID, res.Payload, err)
	}
	return r
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func assertNoViolations(t *testing.T, e *Emulator) {
	t.Helper()
	if v := e.Violations(); len(v) > 0 {
		t.Errorf("protocol violations: %q", v)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	e := startEcho(t)
	payload := []byte(`{"hello":"world","n":1,"nested":{"a":[1,2,3]}}`)
	res, err := e.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	r := decode(t, res)
	if !jsonEqual(t, r.Echo, payload) {
		t.Errorf("echo = %s, want %s", r.Echo, payload)
	}
	if r.RequestID != res.RequestID || res.RequestID == "" {
		t.Errorf("reply request id %q, result request id %q", r.RequestID, res.RequestID)
	}
	if res.ContentType != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (what the SDK sends)", res.ContentType)
	}
	if res.HTTPParams != "" {
		t.Errorf("HTTPParams = %q, want none for an event function", res.HTTPParams)
	}
	if res.Duration <= 0 || res.Duration > 5*time.Second {
		t.Errorf("Duration = %v", res.Duration)
	}
	if exited, err := e.Exited(); exited {
		t.Errorf("process exited: %v", err)
	}
	assertNoViolations(t, e)
}

// The fccontext the handler sees is built from the headers we send.
func TestContextMatchesHeaders(t *testing.T) {
	e := startEcho(t, "MY_SETTING=42")
	res, err := e.Invoke(context.Background(), []byte(`{"env":"FC_RUNTIME_API"}`),
		WithTimeout(5*time.Second),
		WithCredentials("AKID-test", "secret-test", "token-test"),
		WithRetryCount(2),
		WithRequestID("my-request-0001"),
	)
	if err != nil {
		t.Fatal(err)
	}
	r := decode(t, res)
	deadline, _ := strconv.ParseInt(res.Headers.Get(HeaderDeadline), 10, 64)
	checks := []struct {
		name      string
		got, want any
	}{
		{"RequestID (fccontext)", r.RequestID, "my-request-0001"},
		{"RequestID (result)", res.RequestID, "my-request-0001"},
		{"RequestID (header)", res.Headers.Get(HeaderRequestID), "my-request-0001"},
		{"Function.Name", r.Function, DefaultFunctionName},
		{"Function.Handler", r.Handler, "main"},
		{"Function.Memory", r.Memory, strconv.Itoa(DefaultMemoryMB)},
		{"Function.Timeout", r.Timeout, 5},
		{"Region", r.Region, DefaultRegion},
		{"AccountId", r.AccountID, DefaultAccountID},
		{"RetryCount", r.RetryCount, 2},
		{"AccessKeyId", r.AccessKeyID, "AKID-test"},
		{"AccessKeySecret set", r.SecretSet, true},
		{"SecurityToken", r.Token, "token-test"},
		{"ctx deadline", r.DeadlineMs, deadline},
		{"FC_RUNTIME_API", *r.EnvValue, e.Addr()},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// A fresh id per invocation by default, and the environment we promise.
	env := func(name string) string {
		res, err := e.Invoke(context.Background(), []byte(`{"env":"`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		r := decode(t, res)
		if r.RequestID != res.RequestID || r.RequestID == "my-request-0001" {
			t.Errorf("request id: reply %q, result %q", r.RequestID, res.RequestID)
		}
		return *r.EnvValue
	}
	for name, want := range map[string]string{
		"MY_SETTING":       "42",
		"FC_FUNCTION_NAME": DefaultFunctionName,
		"FC_REGION":        DefaultRegion,
		"FC_ACCOUNT_ID":    DefaultAccountID,
		"HOME":             "", // host environment is not inherited
	} {
		if got := env(name); got != want {
			t.Errorf("env %s = %q, want %q", name, got, want)
		}
	}
	assertNoViolations(t, e)
}

func TestFunctionError(t *testing.T) {
	e := startEcho(t)
	res, err := e.Invoke(context.Background(), []byte(`{"fail":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || res.Error == nil {
		t.Fatalf("want error result, got %+v (%s)", res, res.Payload)
	}
	if res.Error.Message != "requested failure" {
		t.Errorf("errorMessage = %q", res.Error.Message)
	}
	if res.Error.Type != "errorString" { // reflect name of *errors.errorString
		t.Errorf("errorType = %q", res.Error.Type)
	}
	if res.Error.ShouldExit || len(res.Error.StackTrace) != 0 {
		t.Errorf("returned error must not look like a panic: %+v", res.Error)
	}
	assertNoViolations(t, e)
}

func TestPanicReportedAndProcessKeepsServing(t *testing.T) {
	e := startEcho(t)
	res, err := e.Invoke(context.Background(), []byte(`{"panic":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || res.Error == nil {
		t.Fatalf("want error result, got %+v (%s)", res, res.Payload)
	}
	if res.Error.Message != "requested panic" || res.Error.Type != "string" {
		t.Errorf("error = %q / %q", res.Error.Message, res.Error.Type)
	}
	if !res.Error.ShouldExit || len(res.Error.StackTrace) == 0 {
		t.Errorf("panic must come back with shouldExit and a stack trace: %+v", res.Error)
	}
	if exited, err := e.Exited(); exited {
		t.Fatalf("process exited after a panic: %v", err)
	}
	res, err = e.Invoke(context.Background(), []byte(`{"after":"panic"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := decode(t, res); !jsonEqual(t, r.Echo, []byte(`{"after":"panic"}`)) {
		t.Errorf("echo after panic = %s", r.Echo)
	}
	assertNoViolations(t, e)
}

func TestConcurrentInvocations(t *testing.T) {
	e := startEcho(t)
	const n, sleep = 20, 300
	var wg sync.WaitGroup
	results := make([]Result, n)
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := fmt.Sprintf(`{"sleepMs":%d,"n":%d}`, sleep, i)
			results[i], errs[i] = e.Invoke(context.Background(), []byte(payload), WithTimeout(5*time.Second))
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("invocation %d: %v", i, errs[i])
			continue
		}
		r := decode(t, results[i])
		var echo struct{ N int }
		if err := json.Unmarshal(r.Echo, &echo); err != nil || echo.N != i {
			t.Errorf("invocation %d got the reply for %s", i, r.Echo)
		}
		if r.RequestID != results[i].RequestID {
			t.Errorf("invocation %d: reply id %q != result id %q", i, r.RequestID, results[i].RequestID)
		}
		if seen[r.RequestID] {
			t.Errorf("request id %q used twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
	// The SDK handles each invocation in its own goroutine: 20 × 300 ms in
	// far less than 6 s means they really overlapped.
	if elapsed > n*sleep*time.Millisecond/4 {
		t.Errorf("20 concurrent invocations took %v; not concurrent?", elapsed)
	}
	if got := e.NextCalls(); got < n+1 {
		t.Errorf("NextCalls = %d, want ≥ %d", got, n+1)
	}
	t.Logf("20 × %d ms concurrently in %v", sleep, elapsed)
	assertNoViolations(t, e)
}

// Without x-fc-function-deadline the SDK's convertInvokeRequest fails and it
// never answers; the emulator must turn that into a timeout, not a hang.
func TestMissingDeadlineDetectedAsHang(t *testing.T) {
	e := startEcho(t)
	const timeout = time.Second
	start := time.Now()
	res, err := e.Invoke(context.Background(), []byte(`{"x":1}`),
		WithTimeout(timeout), WithoutHeader(HeaderDeadline))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("Invoke returned after %v, want about %v", elapsed, timeout)
	}
	if res.RequestID == "" || res.Headers.Get(HeaderDeadline) != "" {
		t.Errorf("result: id %q, deadline header %q", res.RequestID, res.Headers.Get(HeaderDeadline))
	}
	// The SDK logged why; the emulator surfaces it in the error.
	if !strings.Contains(err.Error(), "received it") || !strings.Contains(err.Error(), HeaderDeadline) {
		t.Errorf("error lacks the diagnosis: %v", err)
	}
	t.Logf("detected: %v", err)
	// The SDK carries on with other invocations.
	if _, err := e.Invoke(context.Background(), []byte(`{"y":2}`)); err != nil {
		t.Fatal(err)
	}
	assertNoViolations(t, e)
}

func TestTimeoutThenLateResult(t *testing.T) {
	e := startEcho(t)
	res, err := e.Invoke(context.Background(), []byte(`{"sleepMs":1200}`), WithTimeout(500*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if got := res.Headers.Get(HeaderFunctionTimeout); got != "1" {
		t.Errorf("x-fc-function-timeout = %q, want 1 (rounded up)", got)
	}
	waitFor(t, "the late result", func() bool {
		late := e.LateResults()
		return len(late) == 1 && late[0] == res.RequestID+" response"
	})
	assertNoViolations(t, e)
}

func TestProcessExitMidInvocation(t *testing.T) {
	e := startEcho(t)
	start := time.Now()
	_, err := e.Invoke(context.Background(), []byte(`{"exitCode":3}`), WithTimeout(10*time.Second))
	if !errors.Is(err, ErrProcessExited) {
		t.Fatalf("err = %v, want ErrProcessExited", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exit noticed after %v", d)
	}
	exited, exitErr := e.Exited()
	var ee *exec.ExitError
	if !exited || !errors.As(exitErr, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Exited() = %v, %v; want true, exit status 3", exited, exitErr)
	}
	start = time.Now()
	if _, err := e.Invoke(context.Background(), []byte(`{}`)); !errors.Is(err, ErrProcessExited) || time.Since(start) > time.Second {
		t.Errorf("Invoke on a dead process: %v after %v", err, time.Since(start))
	}
	assertNoViolations(t, e)
}

func TestColdStart(t *testing.T) {
	e := startEcho(t)
	if err := e.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	firstNext, ok := e.FirstNextAt()
	if !ok || firstNext <= 0 || firstNext > 5*time.Second {
		t.Fatalf("FirstNextAt = %v, %v", firstNext, ok)
	}
	if _, ok := e.FirstResultAt(); ok {
		t.Error("FirstResultAt set before any invocation")
	}
	// Idle, the SDK keeps exactly one next long poll open.
	waitFor(t, "one outstanding next", func() bool { return e.OutstandingNext() == 1 })
	if _, err := e.Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	firstResult, ok := e.FirstResultAt()
	if !ok || firstResult < firstNext {
		t.Errorf("FirstResultAt = %v, %v (first next at %v)", firstResult, ok, firstNext)
	}
	t.Logf("cold start: first next after %v, first result after %v", firstNext, firstResult)
	assertNoViolations(t, e)
}

func TestInitializerLifecycle(t *testing.T) {
	e := startEcho(t)
	res, err := e.Invoke(context.Background(), nil, WithFunctionType(FunctionInitializer))
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || len(res.Payload) != 0 {
		t.Fatalf("initializer result: error %v, payload %q", res.IsError, res.Payload)
	}
	res, err = e.Invoke(context.Background(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !decode(t, res).Initialized {
		t.Error("initializer did not run")
	}
	assertNoViolations(t, e)
}

// ---- the test acts as the runtime (no SDK) ----

type rawInvocation struct {
	id      string
	header  http.Header
	payload string
	err     error
}

func rawNext(addr string) rawInvocation {
	resp, err := http.Get("http://" + addr + basePath + "next")
	if err != nil {
		return rawInvocation{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("next: status %d", resp.StatusCode)
	}
	return rawInvocation{id: resp.Header.Get(HeaderRequestID), header: resp.Header, payload: string(b), err: err}
}

func rawPost(t *testing.T, addr, path, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type invokeOutcome struct {
	res Result
	err error
}

func invokeAsync(e *Emulator, payload string, opts ...Option) <-chan invokeOutcome {
	ch := make(chan invokeOutcome, 1)
	go func() {
		res, err := e.Invoke(context.Background(), []byte(payload), opts...)
		ch <- invokeOutcome{res, err}
	}()
	return ch
}

// Outstanding next long polls are served first come, first served, and
// results are matched by id whatever order they come back in.
func TestRawNextFIFOAndHeaders(t *testing.T) {
	e := startIdle(t)
	polls := make([]chan rawInvocation, 3)
	for i := range polls {
		polls[i] = make(chan rawInvocation, 1)
		go func(ch chan rawInvocation) { ch <- rawNext(e.Addr()) }(polls[i])
		waitFor(t, "long poll registered", func() bool { return e.OutstandingNext() == i+1 })
	}
	outcomes := make([]<-chan invokeOutcome, 3)
	before := time.Now()
	for i, p := range []string{"A", "B", "C"} {
		outcomes[i] = invokeAsync(e, p, WithTimeout(1500*time.Millisecond), WithHeader("x-fc-qualifier", "LATEST"))
		waitFor(t, "dispatch", func() bool { return e.OutstandingNext() == 2-i })
	}
	got := make([]rawInvocation, 3)
	for i, p := range []string{"A", "B", "C"} {
		got[i] = <-polls[i]
		if got[i].err != nil || got[i].payload != p {
			t.Fatalf("poll %d got %q (%v), want %q", i, got[i].payload, got[i].err, p)
		}
		h := got[i].header
		deadline, err := strconv.ParseInt(h.Get(HeaderDeadline), 10, 64)
		if err != nil || deadline < before.Add(1500*time.Millisecond).UnixMilli()-1 || deadline > time.Now().Add(1500*time.Millisecond).UnixMilli() {
			t.Errorf("deadline header %q not now+timeout", h.Get(HeaderDeadline))
		}
		for name, want := range map[string]string{
			HeaderFunctionTimeout: "2", HeaderFunctionName: DefaultFunctionName, HeaderFunctionHandler: "main",
			HeaderFunctionMemory: "512", HeaderRegion: DefaultRegion, HeaderAccountID: DefaultAccountID,
			HeaderAccessKeyID: DefaultAccessKeyID, HeaderAccessKeySecret: DefaultAccessKeySecret,
			HeaderSecurityToken: DefaultSecurityToken, HeaderRetryCount: "0", "x-fc-qualifier": "LATEST",
		} {
			if h.Get(name) != want {
				t.Errorf("%s = %q, want %q", name, h.Get(name), want)
			}
		}
		if got[i].id == "" {
			t.Errorf("no request id")
		}
	}
	// Answer in reverse order.
	for i := 2; i >= 0; i-- {
		if code := rawPost(t, e.Addr(), basePath+got[i].id+"/response", "out-"+got[i].payload); code != 200 {
			t.Fatalf("response status %d", code)
		}
	}
	for i, p := range []string{"A", "B", "C"} {
		o := <-outcomes[i]
		if o.err != nil || string(o.res.Payload) != "out-"+p || o.res.RequestID != got[i].id {
			t.Errorf("invocation %s: %+v, %v", p, o.res, o.err)
		}
	}
	assertNoViolations(t, e)
}

// Invocations queued while no next is waiting are delivered in order.
func TestRawQueueFIFO(t *testing.T) {
	e := startIdle(t)
	var outcomes []<-chan invokeOutcome
	for i, p := range []string{"1", "2", "3"} {
		outcomes = append(outcomes, invokeAsync(e, p))
		waitFor(t, "queued", func() bool { return e.Pending() == i+1 })
	}
	for _, p := range []string{"1", "2", "3"} {
		inv := rawNext(e.Addr())
		if inv.err != nil || inv.payload != p {
			t.Fatalf("next got %q (%v), want %q", inv.payload, inv.err, p)
		}
		if code := rawPost(t, e.Addr(), basePath+inv.id+"/error", `{"errorMessage":"m`+p+`","errorType":"T"}`); code != 200 {
			t.Fatalf("error post status %d", code)
		}
	}
	for i, ch := range outcomes {
		o := <-ch
		if o.err != nil || !o.res.IsError || o.res.Error.Message != "m"+strconv.Itoa(i+1) || o.res.Error.ShouldExit {
			t.Errorf("invocation %d: %+v, %v", i+1, o.res, o.err)
		}
	}
	assertNoViolations(t, e)
}

func TestRawProtocolStrictness(t *testing.T) {
	e := startIdle(t)
	e.AllowViolations()
	addr := e.Addr()

	if code := rawPost(t, addr, basePath+"no-such-id/response", "x"); code != http.StatusNotFound {
		t.Errorf("unknown id: status %d, want 404", code)
	}
	if code := rawPost(t, addr, basePath+"no-such-id/error", `{"errorMessage":"","errorType":""}`); code != http.StatusNotFound {
		t.Errorf("unknown id on /error: status %d, want 404", code)
	}
	if code := rawPost(t, addr, "/2020-11-11/runtime/other", ""); code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", code)
	}
	if code := rawPost(t, addr, basePath+"next", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST next: status %d, want 405", code)
	}

	// An in-flight invocation: malformed error bodies are refused with 400
	// and leave it pending; a valid one completes it; a second result is 409.
	out := invokeAsync(e, "p", WithTimeout(5*time.Second))
	inv := rawNext(addr)
	if inv.err != nil {
		t.Fatal(inv.err)
	}
	for _, bad := range []string{`not json`, `["x"]`, `null`, `{"errorMessage":"no type"}`, `{"errorMessage":1,"errorType":"T"}`} {
		if code := rawPost(t, addr, basePath+inv.id+"/error", bad); code != http.StatusBadRequest {
			t.Errorf("malformed %q: status %d, want 400", bad, code)
		}
	}
	select {
	case o := <-out:
		t.Fatalf("invocation completed by a malformed body: %+v %v", o.res, o.err)
	default:
	}
	if code := rawPost(t, addr, basePath+inv.id+"/error", `{"errorMessage":"boom","errorType":"E","shouldExit":true}`); code != 200 {
		t.Fatalf("valid error: status %d", code)
	}
	o := <-out
	if o.err != nil || !o.res.IsError || o.res.Error.Message != "boom" || !o.res.Error.ShouldExit {
		t.Errorf("result %+v, %v", o.res, o.err)
	}
	if code := rawPost(t, addr, basePath+inv.id+"/response", "again"); code != http.StatusConflict {
		t.Errorf("second result: status %d, want 409", code)
	}

	v := e.Violations()
	if len(v) != 10 {
		t.Errorf("want 10 violations, got %d:\n%s", len(v), strings.Join(v, "\n"))
	}
	for _, want := range []string{"unknown request id", "unknown path", "method not allowed", "malformed error document", "second result"} {
		if !strings.Contains(strings.Join(v, "\n"), want) {
			t.Errorf("no violation mentions %q", want)
		}
	}
}

// A cancelled Invoke withdraws its queued invocation; nobody receives it.
func TestRawCancelWithdrawsQueued(t *testing.T) {
	e := startIdle(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.Invoke(ctx, []byte("gone")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if e.Pending() != 0 {
		t.Fatalf("Pending = %d after cancel", e.Pending())
	}
	out := invokeAsync(e, "kept")
	inv := rawNext(e.Addr())
	if inv.payload != "kept" {
		t.Fatalf("next got %q", inv.payload)
	}
	rawPost(t, e.Addr(), basePath+inv.id+"/response", "ok")
	if o := <-out; o.err != nil || string(o.res.Payload) != "ok" {
		t.Errorf("%+v %v", o.res, o.err)
	}
	assertNoViolations(t, e)
}

// recordingTB captures what the emulator's cleanup reports.
type recordingTB struct {
	*testing.T
	mu       sync.Mutex
	cleanups []func()
	errors   []string
	logs     []string
}

func (r *recordingTB) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errors) > 0
}
func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// Unless allowed, a violation fails the test at cleanup, and a failed test
// gets the function's output in its log; the process is gone afterwards.
func TestCleanupReportsViolationsAndOutput(t *testing.T) {
	rec := &recordingTB{T: t}
	e := Start(rec, buildEchofn(t), nil)
	if _, err := e.Invoke(context.Background(), []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	rawPost(t, e.Addr(), basePath+"bogus/response", "")
	rec.runCleanups()
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], `unknown request id "bogus"`) {
		t.Errorf("cleanup errors = %q", rec.errors)
	}
	logs := strings.Join(rec.logs, "\n")
	if !strings.Contains(logs, "FC Invoke Start RequestId") { // the SDK's stdout line
		t.Errorf("function output not logged on failure: %q", logs)
	}
	if exited, _ := e.Exited(); !exited {
		t.Error("process still running after cleanup")
	}
	if _, err := e.Invoke(context.Background(), []byte(`{}`)); err == nil {
		t.Error("Invoke after cleanup succeeded")
	}
	if _, err := http.Get("http://" + e.Addr() + basePath + "next"); err == nil {
		t.Error("server still answering after cleanup")
	}
}
