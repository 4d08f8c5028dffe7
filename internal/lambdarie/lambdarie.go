// Package lambdarie runs a real AWS Lambda "bootstrap" binary (a custom
// runtime such as an aws-lambda-go program built for provided.al2023) under
// the official AWS Lambda Runtime Interface Emulator (RIE), for end-to-end
// tests. It is test support only.
//
// The RIE is the binary built from
// github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie,
// pinned as a tool in tools/go.mod. [RIEPath] finds it in $CSRFN_TOOLS_BIN
// (the Makefile exports the repository's bin/) or in <repo>/bin, and builds it
// there from tools/go.mod when it is missing.
//
// Behaviour of the RIE (at the pinned version) that shapes this package:
//
//   - It starts the bootstrap lazily, on the first invocation, and re-starts it
//     on the next invocation after the runtime process died (a panic in an
//     aws-lambda-go handler makes the process exit) or after a timeout.
//   - A handler error is returned as HTTP 200 with a JSON body
//     {"errorMessage":…,"errorType":…}; there is no X-Amz-Function-Error header.
//     A panic comes back as HTTP 502 with the same JSON shape (plus
//     "stackTrace"). A failed init comes back as HTTP 502 with an empty body.
//     A timeout comes back as HTTP 200 with the plain-text body
//     "Task timed out after N.00 seconds".
//   - It prints "START", "END" and "REPORT RequestId: …" lines on stdout for
//     successful invocations, handler errors and timeouts, but none for panics
//     or init failures. Its own log lines ("… [INFO] (rapid) …") and the
//     function's stdout/stderr are interleaved on the same output.
//   - It is not safe for concurrent invocations, so [Emulator.Invoke]
//     serialises them.
//   - It forwards its whole environment to the function, so [Start] gives it a
//     small, explicit environment instead of the test process's.
//
// The RIE runs on Linux only; elsewhere [RIEPath] and [Start] skip the test.
package lambdarie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csrfn/csrfn/internal/toolbin"
)

const (
	// InvokePath is the RIE's invoke endpoint.
	InvokePath = "/2015-03-31/functions/function/invocations"

	// RIEPackage is the Go package of the emulator's main program.
	RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

	// ToolsBinEnv names the directory where test tools live (and where a
	// missing RIE is built).
	ToolsBinEnv = toolbin.Env

	rieName = "aws-lambda-rie"

	// DefaultFunctionName is the AWS_LAMBDA_FUNCTION_NAME [Start] sets.
	DefaultFunctionName = "csrfn-test"
	// DefaultTimeoutSeconds is the AWS_LAMBDA_FUNCTION_TIMEOUT [Start] sets
	// (the RIE's own default is 300).
	DefaultTimeoutSeconds = 30
	// DefaultMemorySizeMB is the AWS_LAMBDA_FUNCTION_MEMORY_SIZE [Start] sets
	// (the RIE's own default is 3008).
	DefaultMemorySizeMB = 128

	startAttempts  = 3
	readyTimeout   = 15 * time.Second
	reportWait     = 2 * time.Second
	stopGrace      = 3 * time.Second
	maxDumpedBytes = 64 << 10
)

// ---------------------------------------------------------------------------
// Locating and building the emulator

// RIEPath returns the path of the aws-lambda-rie binary, built from
// tools/go.mod into the tools directory when missing (see internal/toolbin).
func RIEPath(t testing.TB) string {
	t.Helper()
	if !supported {
		t.Skipf("lambdarie: the AWS Lambda Runtime Interface Emulator only runs on Linux (this is %s)", runtime.GOOS)
	}
	return toolbin.Path(t, rieName, RIEPackage)
}

// ---------------------------------------------------------------------------
// The emulator process

// Emulator is a running aws-lambda-rie process serving one function.
type Emulator struct {
	bootstrap string
	env       []string
	addr      string // invoke endpoint host:port
	apiAddr   string // Runtime API host:port
	timeout   time.Duration
	client    *http.Client

	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd.Wait returned
	waitErr  error         // valid after exited is closed
	readDone chan struct{} // closed when the output pipe hit EOF
	out      *os.File      // read end of the output pipe
	logs     *logSink

	stopCtx  context.Context
	stopFn   context.CancelFunc
	stopOnce sync.Once

	sem chan struct{} // one invocation at a time

	mu      sync.Mutex
	started time.Time
	ready   time.Time
	first   *firstInvoke
}

type firstInvoke struct {
	end      time.Time
	duration time.Duration
	result   Result
}

// Start starts the RIE serving the bootstrap executable and waits until it
// accepts connections. Both of its listeners are on 127.0.0.1 ports picked at
// random. The emulator is stopped, together with the runtime processes it
// started, when the test finishes; if the test failed, the emulator's output
// is logged then.
//
// The RIE (and through it the function) gets a small environment, not the
// test process's: PATH, TZ=:UTC, AWS_REGION and AWS_DEFAULT_REGION=us-east-1,
// AWS_LAMBDA_FUNCTION_NAME=csrfn-test, AWS_LAMBDA_FUNCTION_VERSION=$LATEST,
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128, AWS_LAMBDA_FUNCTION_TIMEOUT=30 (whole
// seconds), AWS_LAMBDA_LOG_GROUP_NAME, LAMBDA_TASK_ROOT (the bootstrap's
// directory, also its working directory), _HANDLER=bootstrap, TMPDIR (a fresh
// temporary directory) and AWS_EC2_METADATA_DISABLED=true (so that an AWS SDK
// without credentials fails fast instead of probing IMDS). No AWS credentials
// are set. Each "KEY=VALUE" entry of env overrides or adds a variable; a bare
// "KEY" removes one.
func Start(t testing.TB, bootstrap string, env []string) *Emulator {
	t.Helper()
	rie := RIEPath(t)

	bootstrap, err := filepath.Abs(bootstrap)
	if err != nil {
		t.Fatalf("lambdarie: %v", err)
	}
	if !toolbin.IsExecutable(bootstrap) {
		t.Fatalf("lambdarie: bootstrap %s is not an executable file", bootstrap)
	}

	fullEnv, err := buildEnv(bootstrap, t.TempDir(), env)
	if err != nil {
		t.Fatalf("lambdarie: %v", err)
	}
	timeout, err := functionTimeout(fullEnv)
	if err != nil {
		t.Fatalf("lambdarie: %v", err)
	}

	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		e, err := start(rie, bootstrap, fullEnv, timeout)
		if err == nil {
			t.Cleanup(func() {
				e.Stop()
				if t.Failed() {
					t.Logf("lambdarie: output of %s (%s):\n%s", rieName, e.addr, tail(e.Logs(), maxDumpedBytes))
				}
			})
			return e
		}
		lastErr = err
		// Most likely one of the ports we picked was taken in the meantime:
		// pick new ones.
	}
	t.Fatalf("lambdarie: starting %s: %v", rieName, lastErr)
	return nil
}

func start(rie, bootstrap string, env []string, timeout time.Duration) (*Emulator, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		bootstrap: bootstrap,
		env:       env,
		addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		apiAddr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		timeout:   timeout,
		exited:    make(chan struct{}),
		readDone:  make(chan struct{}),
		logs:      newLogSink(),
		sem:       make(chan struct{}, 1),
	}
	e.stopCtx, e.stopFn = context.WithCancel(context.Background())
	e.client = &http.Client{Transport: &http.Transport{
		Proxy:               nil, // never send loopback traffic through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}}

	// One pipe for stdout and stderr keeps the RIE's report lines and the
	// function's output in order. We own the pipe (rather than letting exec
	// copy it) so that cmd.Wait does not wait for a runtime process that
	// outlived the RIE.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	e.out = pr
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", e.addr,
		"--runtime-api-address", e.apiAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = sysProcAttr()
	e.cmd = cmd

	e.started = time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	pw.Close()
	go func() {
		_, _ = io.Copy(e.logs, pr)
		e.logs.flush()
		close(e.readDone)
	}()
	go func() {
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()

	if err := e.waitReady(); err != nil {
		e.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(e.Logs(), maxDumpedBytes))
	}
	e.mu.Lock()
	e.ready = time.Now()
	e.mu.Unlock()
	return e, nil
}

func dialBoth(addrs ...string) error {
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

func (e *Emulator) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-e.exited:
			return fmt.Errorf("%s exited before accepting connections: %v", rieName, e.waitErr)
		default:
		}
		// Both listeners: the runtime started on the first invoke dials the
		// runtime API at once and exits if it is not there yet.
		err := dialBoth(e.addr, e.apiAddr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not accept connections on %s within %v: %v", rieName, e.addr, readyTimeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop stops the emulator: it sends SIGTERM to the RIE (which then kills the
// runtime), SIGKILLs whatever is left of the RIE's process group and of the
// processes it started, and waits for it to exit. It is safe to call more than
// once; Start arranges for it to be called when the test finishes.
func (e *Emulator) Stop() {
	e.stopOnce.Do(func() {
		e.stopFn()
		pid := e.cmd.Process.Pid
		kids := descendants(pid)
		select {
		case <-e.exited:
		default:
			_ = signalTerm(pid)
			select {
			case <-e.exited:
			case <-time.After(stopGrace):
			}
		}
		killGroup(pid) // the RIE leads its own process group
		select {
		case <-e.exited:
		case <-time.After(stopGrace):
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
		for _, k := range kids {
			k.kill() // runtime processes, each in its own process group
		}
		select {
		case <-e.readDone:
		case <-time.After(stopGrace):
		}
		e.out.Close()
		e.client.CloseIdleConnections()
	})
}

// Exited reports whether the RIE process has exited.
func (e *Emulator) Exited() bool {
	select {
	case <-e.exited:
		return true
	default:
		return false
	}
}

// Addr is the host:port of the invoke endpoint.
func (e *Emulator) Addr() string { return e.addr }

// URL is the full URL of the invoke endpoint.
func (e *Emulator) URL() string { return "http://" + e.addr + InvokePath }

// RuntimeAPIAddr is the host:port of the Runtime API the function talks to.
func (e *Emulator) RuntimeAPIAddr() string { return e.apiAddr }

// Pid is the process id of the RIE.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Env is the environment the RIE (and so the function) was started with.
func (e *Emulator) Env() []string { return append([]string(nil), e.env...) }

// Timeout is the function timeout (AWS_LAMBDA_FUNCTION_TIMEOUT).
func (e *Emulator) Timeout() time.Duration { return e.timeout }

// Logs returns everything the RIE and the function wrote to stdout and
// stderr so far.
func (e *Emulator) Logs() string { return e.logs.String() }

// Reports returns the REPORT lines the RIE printed so far, in order.
func (e *Emulator) Reports() []Report { return e.logs.allReports() }

// ---------------------------------------------------------------------------
// Invoking

// Result is the outcome of one invocation.
type Result struct {
	// RequestID is the request id sent in X-Amzn-RequestId (and echoed by the
	// RIE in its START/END/REPORT lines and to the function).
	RequestID string
	// Status is the HTTP status of the RIE's response: 200 for success, a
	// handler error or a timeout; 502 for a panic (the runtime exited) or a
	// failed init.
	Status int
	// Payload is the response body.
	Payload []byte
	// IsFunctionError is set when the body is the runtime's error document:
	// a JSON object with a string "errorMessage" or "errorType" and no keys
	// other than errorMessage, errorType, stackTrace and cause. It is also set
	// for a timeout.
	IsFunctionError bool
	ErrorMessage    string
	ErrorType       string
	// TimedOut is set when the RIE answered "Task timed out after N.00
	// seconds" (then ErrorMessage holds that text and ErrorType is empty).
	TimedOut bool
	// Duration is the client-side round trip of the invocation (for the first
	// one, and after a runtime restart, it includes starting the runtime).
	Duration time.Duration
	// Report is the RIE's REPORT line for this request, nil if it printed
	// none (it prints none for panics and failed inits).
	Report *Report
	// Cold is set when the runtime process was (re)started during this
	// invocation, and InitDuration is the RIE's measure of that init phase
	// (its "INIT REPORT(durationMs: …)" log line), from starting the
	// bootstrap to the runtime asking for its first event.
	Cold         bool
	InitDuration time.Duration
	// Logs is the output captured while this invocation ran (the RIE's lines
	// and the function's), up to and including the REPORT line. It is exact
	// when there is a REPORT line; otherwise (panic, failed init) it is what
	// arrived until the output was quiet for 50 ms, and may miss late lines:
	// poll [Emulator.Logs] to be sure.
	Logs string
}

// Err is nil for a successful invocation (HTTP 200 and not a function error)
// and describes the failure otherwise.
func (r Result) Err() error {
	switch {
	case r.TimedOut:
		return fmt.Errorf("lambda invocation %s timed out: %s", r.RequestID, r.ErrorMessage)
	case r.IsFunctionError:
		return fmt.Errorf("lambda invocation %s failed (HTTP %d): %s: %s", r.RequestID, r.Status, r.ErrorType, r.ErrorMessage)
	case r.Status != http.StatusOK:
		return fmt.Errorf("lambda invocation %s failed: HTTP %d %q", r.RequestID, r.Status, truncate(r.Payload, 512))
	}
	return nil
}

// Decode unmarshals the payload of a successful invocation into v.
func (r Result) Decode(v any) error {
	if err := r.Err(); err != nil {
		return err
	}
	return json.Unmarshal(r.Payload, v)
}

// Invoke sends one event to the function and waits for the response.
// Invocations on one Emulator are serialised (the RIE does not survive
// concurrent ones). The returned error is for transport problems only (the
// RIE is gone, ctx ended); function failures are reported in the Result.
//
// If ctx ends while the RIE is still busy, Invoke returns ctx.Err() at once,
// but the next invocation waits until the RIE has answered this one.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) (Result, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if e.stopCtx.Err() != nil {
		<-e.sem
		return Result{}, errors.New("lambdarie: emulator stopped")
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() { <-e.sem }()
		res, err := e.invoke(payload)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

var timedOutRE = regexp.MustCompile(`^Task timed out after [0-9]+(\.[0-9]+)? seconds$`)

func (e *Emulator) invoke(payload []byte) (Result, error) {
	id := newRequestID()
	res := Result{RequestID: id}
	// The request gets the function timeout plus time for a runtime restart;
	// the RIE always answers within its own timeout, so hitting this means the
	// RIE is wedged.
	ctx, cancel := context.WithTimeout(e.stopCtx, e.timeout+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL(), bytes.NewReader(payload))
	if err != nil {
		return res, err
	}
	req.Header.Set("X-Amzn-RequestId", id)
	req.Header.Set("Content-Type", "application/json")

	from := e.logs.offset()
	t0 := time.Now()
	resp, err := e.client.Do(req)
	if err == nil {
		res.Payload, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		res.Status = resp.StatusCode
	}
	res.Duration = time.Since(t0)
	end := time.Now()
	if err != nil {
		if e.Exited() {
			err = fmt.Errorf("%w (%s exited: %v)", err, rieName, e.waitErr)
		}
		return res, fmt.Errorf("lambdarie: invoke %s: %w", id, err)
	}
	classify(&res)

	// For a 200 (success, handler error or timeout) the RIE prints END and
	// REPORT before it writes the response, but our pipe reader may lag
	// behind a little. For anything else it prints no REPORT: just let the
	// output settle.
	wait := reportWait
	if res.Status != http.StatusOK {
		e.logs.settle(50*time.Millisecond, 500*time.Millisecond)
		wait = 0
	}
	if rep, ok := e.logs.waitReport(id, wait); ok {
		res.Report = &rep
	}
	to := e.logs.offset()
	res.Logs = e.logs.slice(from, to)
	if d, ok := e.logs.initBetween(from, to); ok {
		res.Cold = true
		res.InitDuration = d
	}

	e.mu.Lock()
	if e.first == nil {
		e.first = &firstInvoke{end: end, duration: res.Duration, result: res}
	}
	e.mu.Unlock()
	return res, nil
}

// classify fills the error fields of res from its status and payload.
func classify(res *Result) {
	body := bytes.TrimSpace(res.Payload)
	if res.Status == http.StatusOK && timedOutRE.Match(body) {
		res.TimedOut = true
		res.IsFunctionError = true
		res.ErrorMessage = string(body)
		return
	}
	if len(body) == 0 || body[0] != '{' {
		return
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return
	}
	var msg, typ string
	msgOK := json.Unmarshal(doc["errorMessage"], &msg) == nil && doc["errorMessage"] != nil
	typOK := json.Unmarshal(doc["errorType"], &typ) == nil && doc["errorType"] != nil
	if !msgOK && !typOK {
		return
	}
	for k := range doc {
		switch k {
		case "errorMessage", "errorType", "stackTrace", "cause":
		default:
			return // an ordinary response that happens to have such a field
		}
	}
	res.IsFunctionError = true
	res.ErrorMessage = msg
	res.ErrorType = typ
}

// ---------------------------------------------------------------------------
// Cold start

// ColdStart describes the emulator's first invocation.
type ColdStart struct {
	// Ready is the time from starting the RIE process to it accepting
	// connections.
	Ready time.Duration
	// ToFirstResponse is the time from starting the RIE process to the end
	// of the first invocation (the response fully read). The RIE starts the
	// bootstrap only when the first event arrives, so this covers RIE
	// start-up, runtime start-up and the first handler call.
	ToFirstResponse time.Duration
	// FirstInvoke is the client-side round trip of the first invocation.
	FirstInvoke time.Duration
	// RuntimeInit is the RIE's "INIT REPORT(durationMs: …)" for the first
	// init: from starting the bootstrap to its first request for an event.
	// Zero if the RIE did not log it.
	RuntimeInit time.Duration
	// ReportInitDuration is the "Init Duration" of the first REPORT line, zero
	// if there was none. Beware: at the pinned RIE version it only times the
	// RIE handing the init request to its sandbox, which is asynchronous, so
	// it is a fraction of a millisecond whatever the function does; use
	// RuntimeInit instead.
	ReportInitDuration time.Duration
	// FirstStatus is the HTTP status of the first invocation.
	FirstStatus int
}

// ColdStart returns the cold-start measurements, and false if nothing was
// invoked yet.
func (e *Emulator) ColdStart() (ColdStart, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.first == nil {
		return ColdStart{}, false
	}
	cs := ColdStart{
		Ready:           e.ready.Sub(e.started),
		ToFirstResponse: e.first.end.Sub(e.started),
		FirstInvoke:     e.first.duration,
		RuntimeInit:     e.first.result.InitDuration,
		FirstStatus:     e.first.result.Status,
	}
	if r := e.first.result.Report; r != nil && r.HasInitDuration {
		cs.ReportInitDuration = r.InitDuration
	}
	return cs, true
}

// ---------------------------------------------------------------------------
// REPORT lines

// Report is a parsed REPORT line, as printed by the RIE (and by Lambda):
//
//	REPORT RequestId: <id>\tInit Duration: 0.16 ms\tDuration: 4.10 ms\tBilled Duration: 5 ms\tMemory Size: 3008 MB\tMax Memory Used: 3008 MB\t
//
// The RIE prints Init Duration only on the first REPORT of its lifetime, and
// sets Max Memory Used to Memory Size (it does not measure memory).
type Report struct {
	RequestID       string
	Duration        time.Duration
	BilledDuration  time.Duration
	MemorySizeMB    int
	MaxMemoryUsedMB int
	InitDuration    time.Duration
	HasInitDuration bool
	Raw             string
}

// ParseReport parses a REPORT line. Unknown fields are ignored.
func ParseReport(line string) (Report, bool) {
	line = strings.TrimRight(line, "\r\n")
	i := strings.Index(line, "REPORT RequestId:")
	if i < 0 {
		return Report{}, false
	}
	r := Report{Raw: line[i:]}
	for _, field := range strings.Split(line[i+len("REPORT "):], "\t") {
		key, val, ok := strings.Cut(strings.TrimSpace(field), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "RequestId":
			r.RequestID = val
		case "Duration":
			r.Duration, _ = parseMillis(val)
		case "Billed Duration":
			r.BilledDuration, _ = parseMillis(val)
		case "Init Duration":
			r.InitDuration, r.HasInitDuration = parseMillis(val)
		case "Memory Size":
			r.MemorySizeMB, _ = strconv.Atoi(strings.TrimSuffix(val, " MB"))
		case "Max Memory Used":
			r.MaxMemoryUsedMB, _ = strconv.Atoi(strings.TrimSuffix(val, " MB"))
		}
	}
	return r, r.RequestID != ""
}

func parseMillis(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "ms")), 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(math.Round(f * float64(time.Millisecond))), true
}

// initReportRE matches the RIE's log line at the end of a runtime init, e.g.
// "04 Dec 2026 20:36:46,685 [INFO] (rapid) INIT REPORT(durationMs: 3.010000)".
var initReportRE = regexp.MustCompile(`\(rapid\) INIT REPORT\(durationMs: ([0-9.]+)\)`)

// ---------------------------------------------------------------------------
// Output capture

type initEvent struct {
	offset   int // buffer offset of the line
	duration time.Duration
}

// logSink collects the RIE's output and indexes REPORT and INIT REPORT lines.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	lineAt  int // offset of the start of the current (incomplete) line
	reports []Report
	byID    map[string]Report
	inits   []initEvent
	changed chan struct{} // closed and replaced whenever output arrives
}

func newLogSink() *logSink {
	return &logSink{byID: map[string]Report{}, changed: make(chan struct{})}
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	for {
		b := s.buf.Bytes()[s.lineAt:]
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			break
		}
		s.line(s.lineAt, string(b[:nl]))
		s.lineAt += nl + 1
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// flush processes a final line without a newline.
func (s *logSink) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lineAt < s.buf.Len() {
		s.line(s.lineAt, string(s.buf.Bytes()[s.lineAt:]))
		s.lineAt = s.buf.Len()
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *logSink) line(offset int, line string) {
	if r, ok := ParseReport(line); ok {
		s.reports = append(s.reports, r)
		s.byID[r.RequestID] = r
		return
	}
	if m := initReportRE.FindStringSubmatch(line); m != nil {
		if d, ok := parseMillis(m[1]); ok {
			s.inits = append(s.inits, initEvent{offset: offset, duration: d})
		}
	}
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) offset() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Len()
}

func (s *logSink) slice(from, to int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf.Bytes()[from:to])
}

func (s *logSink) allReports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Report(nil), s.reports...)
}

// initBetween returns the duration of the last runtime init logged in
// [from, to).
func (s *logSink) initBetween(from, to int) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.inits) - 1; i >= 0; i-- {
		if ev := s.inits[i]; ev.offset >= from && ev.offset < to {
			return ev.duration, true
		}
	}
	return 0, false
}

// waitReport waits up to d for the REPORT line of request id.
func (s *logSink) waitReport(id string, d time.Duration) (Report, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		s.mu.Lock()
		r, ok := s.byID[id]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return r, true
		}
		select {
		case <-ch:
		case <-timer.C:
			return Report{}, false
		}
	}
}

// settle waits until no output arrived for quiet, or max elapsed.
func (s *logSink) settle(quiet, max time.Duration) {
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		q := time.NewTimer(quiet)
		select {
		case <-ch:
			q.Stop()
		case <-q.C:
			return
		case <-deadline.C:
			q.Stop()
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Helpers

// buildEnv returns the RIE's environment: the defaults described at Start,
// then the caller's entries.
func buildEnv(bootstrap, tmpDir string, extra []string) ([]string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	taskRoot := filepath.Dir(bootstrap)
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	set("PATH", path)
	set("TZ", ":UTC")
	set("AWS_REGION", "us-east-1")
	set("AWS_DEFAULT_REGION", "us-east-1")
	set("AWS_LAMBDA_FUNCTION_NAME", DefaultFunctionName)
	set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
	set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(DefaultMemorySizeMB))
	set("AWS_LAMBDA_FUNCTION_TIMEOUT", strconv.Itoa(DefaultTimeoutSeconds))
	set("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/"+DefaultFunctionName)
	set("LAMBDA_TASK_ROOT", taskRoot)
	set("_HANDLER", filepath.Base(bootstrap))
	set("TMPDIR", tmpDir)
	set("AWS_EC2_METADATA_DISABLED", "true")
	for _, kv := range extra {
		k, v, hasValue := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("bad environment entry %q", kv)
		}
		if !hasValue {
			delete(vals, k)
			continue
		}
		set(k, v)
	}
	if _, ok := vals["AWS_LAMBDA_MAX_CONCURRENCY"]; ok {
		// With this variable the RIE switches to its "managed instances"
		// mode, a different program with different flags and behaviour.
		return nil, errors.New("AWS_LAMBDA_MAX_CONCURRENCY is not supported (it switches the RIE to managed-instances mode)")
	}
	out := make([]string, 0, len(vals))
	for _, k := range keys {
		if v, ok := vals[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out, nil
}

// functionTimeout reads AWS_LAMBDA_FUNCTION_TIMEOUT the way the RIE does (a
// whole number of seconds; it panics on anything else).
func functionTimeout(env []string) (time.Duration, error) {
	v := ""
	for _, kv := range env {
		if s, ok := strings.CutPrefix(kv, "AWS_LAMBDA_FUNCTION_TIMEOUT="); ok {
			v = s
		}
	}
	if v == "" {
		return 300 * time.Second, nil // the RIE's default
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("AWS_LAMBDA_FUNCTION_TIMEOUT=%q: want a positive whole number of seconds", v)
	}
	return time.Duration(n) * time.Second, nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
