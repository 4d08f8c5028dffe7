package lambdarie

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/internal/toolbin"
)

// echoBootstrap is the testdata/echofn function built as a Lambda bootstrap.
var echoBootstrap struct {
	once sync.Once
	path string
	err  error
}

var bootstrapDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if bootstrapDir != "" {
		os.RemoveAll(bootstrapDir)
	}
	os.Exit(code)
}

// bootstrap builds testdata/echofn once per test binary, the way a
// provided.al2023 function is built (static, lambda.norpc), for the host.
func bootstrap(t *testing.T) string {
	t.Helper()
	if !supported {
		t.Skip("the AWS Lambda RIE only runs on Linux")
	}
	echoBootstrap.once.Do(func() {
		dir, err := os.MkdirTemp("", "lambdarie-echofn-")
		if err != nil {
			echoBootstrap.err = err
			return
		}
		bootstrapDir = dir
		out := filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, "./testdata/echofn")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		if b, err := cmd.CombinedOutput(); err != nil {
			echoBootstrap.err = fmt.Errorf("building testdata/echofn: %v\n%s", err, b)
			return
		}
		echoBootstrap.path = out
	})
	if echoBootstrap.err != nil {
		t.Fatal(echoBootstrap.err)
	}
	return echoBootstrap.path
}

// echoResponse mirrors testdata/echofn's response.
type echoResponse struct {
	Action  string `json:"action"`
	Message string `json:"message"`
	Seq     int64  `json:"seq"`
	PID     int    `json:"pid"`
}

func invoke(t *testing.T, e *Emulator, req map[string]any) Result {
	t.Helper()
	payload, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	return res
}

func invokeOK(t *testing.T, e *Emulator, req map[string]any) (Result, echoResponse) {
	t.Helper()
	res := invoke(t, e, req)
	var out echoResponse
	if err := res.Decode(&out); err != nil {
		t.Fatalf("invoke %v: %v", req, err)
	}
	return res, out
}

// waitLogs waits until the emulator's output holds at least n copies of s.
// (Result.Logs is exact only for HTTP 200 answers, which the RIE follows with
// a REPORT line; for others it is best effort.)
func waitLogs(t *testing.T, e *Emulator, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(e.Logs(), s) < n {
		if time.Now().After(deadline) {
			t.Errorf("the RIE's output does not hold %d × %q:\n%s", n, s, e.Logs())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEchoRoundTrip(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), []string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256"})

	if _, ok := e.ColdStart(); ok {
		t.Error("ColdStart reported before the first invocation")
	}

	res, out := invokeOK(t, e, map[string]any{"action": "echo", "message": "hello, lambda"})
	if res.Status != http.StatusOK || res.IsFunctionError || res.TimedOut {
		t.Fatalf("first invoke: status %d, function error %v, timed out %v", res.Status, res.IsFunctionError, res.TimedOut)
	}
	if out.Action != "echo" || out.Message != "hello, lambda" || out.Seq != 1 {
		t.Errorf("first invoke returned %+v", out)
	}
	if !res.Cold || res.InitDuration <= 0 {
		t.Errorf("first invoke: Cold=%v InitDuration=%v, want a cold start with an init duration", res.Cold, res.InitDuration)
	}
	if res.Report == nil {
		t.Fatalf("first invoke: no REPORT line; logs:\n%s", res.Logs)
	}
	r := *res.Report
	if r.RequestID != res.RequestID || r.Duration <= 0 || r.BilledDuration < r.Duration || r.MemorySizeMB != 256 || !r.HasInitDuration {
		t.Errorf("first REPORT: %+v (request %s)", r, res.RequestID)
	}
	if !strings.Contains(res.Logs, "echofn: action=echo seq=1") {
		t.Errorf("first invocation's logs lack the handler's line:\n%s", res.Logs)
	}

	// Warm: same runtime process, no init, no Init Duration.
	res2, out2 := invokeOK(t, e, map[string]any{"action": "echo", "message": "again"})
	if out2.PID != out.PID || out2.Seq != 2 {
		t.Errorf("second invoke ran in pid %d seq %d, want pid %d seq 2", out2.PID, out2.Seq, out.PID)
	}
	if res2.Cold || res2.InitDuration != 0 {
		t.Errorf("second invoke: Cold=%v InitDuration=%v, want warm", res2.Cold, res2.InitDuration)
	}
	if res2.Report == nil || res2.Report.HasInitDuration || res2.Report.RequestID != res2.RequestID {
		t.Errorf("second REPORT: %+v", res2.Report)
	}

	cs, ok := e.ColdStart()
	if !ok {
		t.Fatal("no ColdStart after an invocation")
	}
	if cs.FirstStatus != http.StatusOK || cs.Ready <= 0 || cs.FirstInvoke <= 0 ||
		cs.ToFirstResponse < cs.Ready+cs.FirstInvoke || cs.RuntimeInit != res.InitDuration ||
		cs.RuntimeInit > cs.FirstInvoke || cs.ReportInitDuration != r.InitDuration {
		t.Errorf("ColdStart = %+v (first invoke %+v)", cs, r)
	}
	t.Logf("cold start: ready %v, first response %v after process start, first invoke %v, runtime init %v, REPORT Init Duration %v",
		cs.Ready, cs.ToFirstResponse, cs.FirstInvoke, cs.RuntimeInit, cs.ReportInitDuration)

	if got := len(e.Reports()); got != 2 {
		t.Errorf("Reports() has %d entries, want 2", got)
	}
	if logs := e.Logs(); !strings.Contains(logs, "echofn: action=echo seq=2") ||
		!strings.Contains(logs, "REPORT RequestId: "+res2.RequestID) {
		t.Errorf("Logs() lacks the handler's or the RIE's lines:\n%s", logs)
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("LAMBDARIE_HOST_ONLY", "leaked") // must not reach the function
	e := Start(t, bootstrap(t), []string{"CSRFN_CUSTOM=custom value=with equals", "AWS_EC2_METADATA_DISABLED"})
	for name, want := range map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        DefaultFunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_REGION":                      "us-east-1",
		"LAMBDA_TASK_ROOT":                filepath.Dir(bootstrap(t)),
		"CSRFN_CUSTOM":                    "custom value=with equals",
		"LAMBDARIE_HOST_ONLY":             "",
		"AWS_EC2_METADATA_DISABLED":       "",
		"AWS_LAMBDA_RUNTIME_API":          e.RuntimeAPIAddr(),
	} {
		_, out := invokeOK(t, e, map[string]any{"action": "env", "message": name})
		if out.Message != want {
			t.Errorf("function sees %s=%q, want %q", name, out.Message, want)
		}
	}
}

func TestHandlerError(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	_, before := invokeOK(t, e, map[string]any{"action": "echo"})

	res := invoke(t, e, map[string]any{"action": "error", "message": "boom: bad input"})
	if res.Status != http.StatusOK {
		t.Errorf("handler error: HTTP %d, want 200 (the RIE reports handler errors in the body)", res.Status)
	}
	if !res.IsFunctionError || res.ErrorMessage != "boom: bad input" || res.ErrorType != "errorString" || res.TimedOut {
		t.Errorf("handler error: IsFunctionError=%v ErrorMessage=%q ErrorType=%q TimedOut=%v; body %s",
			res.IsFunctionError, res.ErrorMessage, res.ErrorType, res.TimedOut, res.Payload)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "boom: bad input") {
		t.Errorf("Err() = %v", err)
	}
	if res.Report == nil || res.Report.RequestID != res.RequestID {
		t.Errorf("handler error: REPORT %+v", res.Report)
	}

	// The runtime survives a handler error.
	res, after := invokeOK(t, e, map[string]any{"action": "echo"})
	if after.PID != before.PID || after.Seq != 3 || res.Cold {
		t.Errorf("after a handler error: pid %d seq %d cold %v, want pid %d seq 3 warm", after.PID, after.Seq, res.Cold, before.PID)
	}
}

func TestPanic(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	_, before := invokeOK(t, e, map[string]any{"action": "echo"})

	// aws-lambda-go reports the panic, then exits the process; the RIE
	// answers 502 with the panic as the error document, and prints no REPORT.
	res := invoke(t, e, map[string]any{"action": "panic", "message": "kaboom"})
	if res.Status != http.StatusBadGateway {
		t.Errorf("panic: HTTP %d, want 502", res.Status)
	}
	if !res.IsFunctionError || res.ErrorMessage != "kaboom" || res.ErrorType != "string" {
		t.Errorf("panic: IsFunctionError=%v ErrorMessage=%q ErrorType=%q; body %.300s", res.IsFunctionError, res.ErrorMessage, res.ErrorType, res.Payload)
	}
	if !strings.Contains(string(res.Payload), `"stackTrace"`) {
		t.Errorf("panic: no stack trace in %.300s", res.Payload)
	}
	if res.Report != nil {
		t.Errorf("panic: unexpected REPORT %+v", res.Report)
	}
	if res.Err() == nil {
		t.Error("panic: Err() is nil")
	}
	waitLogs(t, e, "Runtime exited with error", 1)

	// The next invocation starts a fresh runtime process and succeeds.
	res, after := invokeOK(t, e, map[string]any{"action": "echo", "message": "still alive"})
	if after.PID == before.PID || after.Seq != 1 || after.Message != "still alive" {
		t.Errorf("after a panic: pid %d seq %d message %q, want a new process (not %d) at seq 1", after.PID, after.Seq, after.Message, before.PID)
	}
	if !res.Cold || res.InitDuration <= 0 {
		t.Errorf("after a panic: Cold=%v InitDuration=%v, want a re-init", res.Cold, res.InitDuration)
	}
	if res.Report == nil || res.Report.HasInitDuration {
		t.Errorf("after a panic: REPORT %+v, want one without Init Duration (the RIE prints it once per process)", res.Report)
	}
	if processAlive(before.PID) {
		t.Errorf("the runtime process %d that panicked is still alive", before.PID)
	}
}

func TestSequence(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	var pid int
	ids := map[string]bool{}
	for i := 1; i <= 10; i++ {
		msg := fmt.Sprintf("message %d", i)
		res, out := invokeOK(t, e, map[string]any{"action": "echo", "message": msg})
		if out.Seq != int64(i) || out.Message != msg {
			t.Errorf("invoke %d returned %+v", i, out)
		}
		if i == 1 {
			pid = out.PID
		} else if out.PID != pid {
			t.Errorf("invoke %d ran in pid %d, want %d", i, out.PID, pid)
		}
		if res.Report == nil || res.Report.RequestID != res.RequestID {
			t.Errorf("invoke %d: REPORT %+v for request %s", i, res.Report, res.RequestID)
		}
		if ids[res.RequestID] {
			t.Errorf("invoke %d: request id %s reused", i, res.RequestID)
		}
		ids[res.RequestID] = true
		if want := fmt.Sprintf("echofn: action=echo seq=%d\n", i); !strings.Contains(res.Logs, want) {
			t.Errorf("invoke %d: logs lack %q:\n%s", i, want, res.Logs)
		}
	}
	if got := len(e.Reports()); got != 10 {
		t.Errorf("%d REPORT lines, want 10", got)
	}
}

func TestConcurrentInvokesAreSerialised(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	const n = 8
	var wg sync.WaitGroup
	seqs := make(chan int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := e.Invoke(ctx, fmt.Appendf(nil, `{"action":"sleep","ms":20,"message":"%d"}`, i))
			if err != nil {
				t.Errorf("invoke %d: %v", i, err)
				return
			}
			var out echoResponse
			if err := res.Decode(&out); err != nil {
				t.Errorf("invoke %d: %v", i, err)
				return
			}
			seqs <- out.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		seen[s] = true
	}
	if len(seen) != n {
		t.Errorf("saw sequence numbers %v, want 1..%d", seen, n)
	}
	if e.Exited() {
		t.Error("the RIE exited")
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=1"})
	_, before := invokeOK(t, e, map[string]any{"action": "echo"})

	res := invoke(t, e, map[string]any{"action": "sleep", "ms": 10000})
	if res.Status != http.StatusOK || !res.TimedOut || !res.IsFunctionError ||
		res.ErrorMessage != "Task timed out after 1.00 seconds" {
		t.Errorf("timeout: HTTP %d TimedOut=%v IsFunctionError=%v ErrorMessage=%q body %q",
			res.Status, res.TimedOut, res.IsFunctionError, res.ErrorMessage, res.Payload)
	}
	if res.Duration < time.Second || res.Duration > 5*time.Second {
		t.Errorf("timeout took %v", res.Duration)
	}
	if res.Report == nil || res.Report.Duration != time.Second {
		t.Errorf("timeout: REPORT %+v, want Duration 1000 ms", res.Report)
	}

	// The RIE kills the timed-out runtime; the next invocation starts a new one.
	res, after := invokeOK(t, e, map[string]any{"action": "echo"})
	if after.PID == before.PID || after.Seq != 1 || !res.Cold {
		t.Errorf("after a timeout: pid %d seq %d cold %v (before: pid %d)", after.PID, after.Seq, res.Cold, before.PID)
	}
}

func TestInitFailure(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), []string{"ECHOFN_INIT_FAIL=1"})
	for i := range 2 { // the RIE retries the init on every invocation
		res := invoke(t, e, map[string]any{"action": "echo"})
		if res.Status != http.StatusBadGateway || len(res.Payload) != 0 || res.IsFunctionError || res.Report != nil {
			t.Errorf("init failure %d: HTTP %d IsFunctionError=%v Report=%v body %q", i, res.Status, res.IsFunctionError, res.Report, res.Payload)
		}
		if res.Err() == nil {
			t.Errorf("init failure %d: Err() is nil", i)
		}
		waitLogs(t, e, "echofn: init failing on purpose", i+1)
		waitLogs(t, e, "INIT RTDONE(status: error)", i+1)
	}
}

func TestInvokeContextCancelled(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := e.Invoke(ctx, []byte(`{"action":"sleep","ms":2000}`))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 1500*time.Millisecond {
		t.Fatalf("Invoke with an expiring context: %v after %v", err, time.Since(t0))
	}
	// The next invocation waits for the abandoned one, then works.
	_, out := invokeOK(t, e, map[string]any{"action": "echo"})
	if out.Seq != 2 {
		t.Errorf("after an abandoned invocation: seq %d, want 2", out.Seq)
	}
}

func TestStopKillsEverything(t *testing.T) {
	t.Parallel()
	e := Start(t, bootstrap(t), nil)
	_, out := invokeOK(t, e, map[string]any{"action": "echo"})
	riePid := e.Pid()
	e.Stop()
	e.Stop() // idempotent
	if !e.Exited() || processAlive(riePid) {
		t.Errorf("the RIE (pid %d) is still running after Stop", riePid)
	}
	deadline := time.Now().Add(2 * time.Second)
	for processAlive(out.PID) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if processAlive(out.PID) {
		t.Errorf("the runtime process %d is still running after Stop", out.PID)
	}
	if _, err := e.Invoke(context.Background(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Stop succeeded")
	}
}

func TestRIEPathUsesToolsBin(t *testing.T) {
	if !supported {
		t.Skip("the AWS Lambda RIE only runs on Linux")
	}
	p := RIEPath(t)
	if !toolbin.IsExecutable(p) || filepath.Base(p) != "aws-lambda-rie" {
		t.Errorf("RIEPath = %s", p)
	}
	if dir := os.Getenv(ToolsBinEnv); dir != "" {
		abs, _ := filepath.Abs(dir)
		if filepath.Dir(p) != abs {
			t.Errorf("RIEPath = %s, want it in %s=%s", p, ToolsBinEnv, dir)
		}
	}
}

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Report
	}{{
		// As printed by the RIE (note the trailing tab).
		line: "REPORT RequestId: 5a5fc8ed-f968-4837-9428-995182d7ed09\tInit Duration: 0.16 ms\tDuration: 4.10 ms\tBilled Duration: 5 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t\n",
		want: Report{RequestID: "5a5fc8ed-f968-4837-9428-995182d7ed09", InitDuration: 160 * time.Microsecond, HasInitDuration: true,
			Duration: 4100 * time.Microsecond, BilledDuration: 5 * time.Millisecond, MemorySizeMB: 3008, MaxMemoryUsedMB: 3008},
	}, {
		// As printed by Lambda (CloudWatch), without Init Duration.
		line: "REPORT RequestId: abc\tDuration: 1.59 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 19 MB",
		want: Report{RequestID: "abc", Duration: 1590 * time.Microsecond, BilledDuration: 2 * time.Millisecond, MemorySizeMB: 128, MaxMemoryUsedMB: 19},
	}} {
		got, ok := ParseReport(tc.line)
		tc.want.Raw = got.Raw
		if !ok || got != tc.want {
			t.Errorf("ParseReport(%q) = %+v, %v; want %+v", tc.line, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "START RequestId: x Version: $LATEST", "REPORT RequestId: \tDuration: 1 ms"} {
		if r, ok := ParseReport(bad); ok {
			t.Errorf("ParseReport(%q) = %+v, true", bad, r)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status       int
		body         string
		fnErr, timed bool
		msg, typ     string
	}{
		{200, `{"errorMessage":"boom","errorType":"errorString"}`, true, false, "boom", "errorString"},
		{502, `{"errorMessage":"kaboom","errorType":"string","stackTrace":[]}`, true, false, "kaboom", "string"},
		{200, `{"errorType":"Runtime.Unknown"}`, true, false, "", "Runtime.Unknown"},
		{200, `{"errorMessage":"not an error","statusCode":200}`, false, false, "", ""},
		{200, `{"errorMessage":42}`, false, false, "", ""},
		{200, `"errorMessage"`, false, false, "", ""},
		{200, `Task timed out after 3.00 seconds`, true, true, "Task timed out after 3.00 seconds", ""},
		{502, ``, false, false, "", ""},
	} {
		r := Result{Status: tc.status, Payload: []byte(tc.body)}
		classify(&r)
		if r.IsFunctionError != tc.fnErr || r.TimedOut != tc.timed || r.ErrorMessage != tc.msg || r.ErrorType != tc.typ {
			t.Errorf("classify(%d %s) = fnErr %v timed %v msg %q type %q", tc.status, tc.body, r.IsFunctionError, r.TimedOut, r.ErrorMessage, r.ErrorType)
		}
	}
}

func TestBuildEnv(t *testing.T) {
	env, err := buildEnv("/task/bootstrap", "/tmp/x", []string{"A=1", "AWS_REGION=eu-west-1", "TZ", "A=2"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("duplicate %s", k)
		}
		got[k] = v
	}
	if got["A"] != "2" || got["AWS_REGION"] != "eu-west-1" || got["LAMBDA_TASK_ROOT"] != "/task" || got["TMPDIR"] != "/tmp/x" {
		t.Errorf("env = %v", env)
	}
	if _, ok := got["TZ"]; ok {
		t.Errorf("TZ not removed: %v", env)
	}
	if _, err := buildEnv("/b", "/t", []string{"AWS_LAMBDA_MAX_CONCURRENCY=4"}); err == nil {
		t.Error("AWS_LAMBDA_MAX_CONCURRENCY accepted")
	}
	for _, v := range []string{"0", "1.5", "x"} {
		if _, err := functionTimeout([]string{"AWS_LAMBDA_FUNCTION_TIMEOUT=" + v}); err == nil {
			t.Errorf("AWS_LAMBDA_FUNCTION_TIMEOUT=%s accepted", v)
		}
	}
}
