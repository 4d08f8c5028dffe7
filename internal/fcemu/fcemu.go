// Package fcemu is a test emulator of Alibaba Cloud Function Compute's
// runtime API, the HTTP interface a Go function built with
// github.com/aliyun/fc-runtime-go-sdk (runtime "go1") talks to from inside an
// FC instance. It lets tests start a real compiled function binary and drive
// it end to end: Start runs the binary with FC_RUNTIME_API pointing at a
// loopback server, Invoke hands it invocations and waits for the result.
//
// Alibaba publishes no official emulator for this API, so this one is written
// from the protocol as implemented by fc-runtime-go-sdk v0.3.1 (fc/entry.go,
// fc/runtime_api_client.go, fc/invoke_loop.go, fc/function.go, fc/errors.go,
// fc/panic.go, fc/messages) plus Alibaba's public list of the common
// x-fc-* headers and FC_* environment variables. Where the real service's
// behaviour is not visible from the SDK the choice made here is documented on
// the type or function concerned; treat those as educated guesses.
//
// The protocol, as the SDK uses it (API version 2020-11-11):
//
//	GET  /2020-11-11/runtime/invocation/next            long poll; 200, body = payload,
//	                                                     headers x-fc-request-id, x-fc-function-deadline
//	                                                     (epoch ms), x-fc-function-timeout (s), ...
//	POST /2020-11-11/runtime/invocation/{id}/response   body = result, optional x-fc-http-params
//	POST /2020-11-11/runtime/invocation/{id}/error      body = {"errorMessage","errorType","stackTrace"}
//
// The SDK calls next again as soon as one returns and handles every
// invocation in its own goroutine, so several next long polls are normally
// outstanding; they are served in FIFO order. Any status other than 200 on a
// result is only logged by the SDK, and a next that fails makes it retry at
// once, so the emulator never fails a well-formed next.
//
// The package is meant for tests of this module only (it depends on package
// testing). It uses the standard library only and listens on 127.0.0.1.
package fcemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
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

// APIVersion is the runtime API version the SDK puts in every path.
const APIVersion = "2020-11-11"

const basePath = "/" + APIVersion + "/runtime/invocation/"

// Values the emulator uses for the function's configuration, both in the
// FC_* environment and in the per-invocation x-fc-* headers. They are dummies.
const (
	DefaultFunctionName    = "fcemu-function"
	DefaultHandler         = "main"
	DefaultMemoryMB        = 512
	DefaultRegion          = "cn-hangzhou"
	DefaultAccountID       = "1234567890123456"
	DefaultAccessKeyID     = "fcemu-dummy-access-key-id"
	DefaultAccessKeySecret = "fcemu-dummy-access-key-secret"
	DefaultSecurityToken   = "fcemu-dummy-security-token"

	// DefaultTimeout is the function timeout used when WithTimeout is not
	// given. It is the emulator's choice (short, so that hangs fail tests
	// quickly), not FC's console default.
	DefaultTimeout = 10 * time.Second
)

// Header names of the runtime API (as spelled in fc/runtime_api_client.go).
const (
	HeaderRequestID       = "x-fc-request-id"
	HeaderDeadline        = "x-fc-function-deadline"
	HeaderFunctionTimeout = "x-fc-function-timeout"
	HeaderFunctionName    = "x-fc-function-name"
	HeaderFunctionHandler = "x-fc-function-handler"
	HeaderFunctionMemory  = "x-fc-function-memory"
	HeaderFunctionType    = "x-fc-function-type"
	HeaderRegion          = "x-fc-region"
	HeaderAccountID       = "x-fc-account-id"
	HeaderAccessKeyID     = "x-fc-access-key-id"
	HeaderAccessKeySecret = "x-fc-access-key-secret"
	HeaderSecurityToken   = "x-fc-security-token"
	HeaderRetryCount      = "x-fc-retry-count"
	HeaderHTTPParams      = "x-fc-http-params"
)

// FunctionType is the value of the x-fc-function-type header, which makes
// the SDK run a lifecycle hook instead of the handler (fc/function.go).
type FunctionType int

// Function types understood by SDK v0.3.1.
const (
	FunctionHandler     FunctionType = 0
	FunctionInitializer FunctionType = 1
	FunctionPreStop     FunctionType = 2
	FunctionPreFreeze   FunctionType = 3
)

// Errors returned (wrapped) by Invoke. Use errors.Is.
var (
	// ErrTimeout: no result arrived before the invocation's deadline.
	ErrTimeout = errors.New("fcemu: function timed out")
	// ErrProcessExited: the function process is not running (it exited
	// before or during the invocation).
	ErrProcessExited = errors.New("fcemu: function process exited")
	// ErrClosed: the emulator was shut down (test cleanup) while waiting.
	ErrClosed = errors.New("fcemu: emulator closed")
)

// maxCapture bounds each of the captured stdout/stderr buffers.
const maxCapture = 16 << 20

// Result is the outcome of one invocation.
type Result struct {
	// RequestID is the x-fc-request-id the invocation was sent with.
	RequestID string
	// Payload is the body the runtime POSTed: the function's result for
	// /response, the raw JSON error document for /error.
	Payload []byte
	// IsError reports that the runtime answered on /error.
	IsError bool
	// Error is the decoded error document when IsError is set.
	Error *FunctionError
	// HTTPParams is the x-fc-http-params header of the /response POST
	// (set by the SDK for HTTP functions started with fc.StartHttp).
	HTTPParams string
	// ContentType is the Content-Type of the result POST.
	ContentType string
	// Duration is the time from the Invoke call to the result's arrival.
	Duration time.Duration
	// Headers are the headers the invocation was delivered with.
	Headers http.Header
}

// FunctionError is the error document of POST …/{id}/error, i.e.
// messages.InvokeResponse_Error of the SDK.
type FunctionError struct {
	Message    string       `json:"errorMessage"`
	Type       string       `json:"errorType"`
	StackTrace []StackFrame `json:"stackTrace,omitempty"`
	// ShouldExit reports a panic. SDK v0.3.1 does not put shouldExit on the
	// wire (the field is tagged json:"-"), so it is derived: true when the
	// body carries a "shouldExit": true key, or when it carries a non-empty
	// stackTrace, which the SDK attaches only to recovered panics
	// (fcPanicResponse, the only place that sets ShouldExit).
	ShouldExit bool `json:"shouldExit,omitempty"`
}

// StackFrame is one frame of a panic's stack trace.
type StackFrame struct {
	Path  string `json:"path"`
	Line  int32  `json:"line"`
	Label string `json:"label"`
}

// Option configures one invocation.
type Option func(*invokeConfig)

type invokeConfig struct {
	timeout      time.Duration
	requestID    string
	akID, akSec  string
	token        string
	retryCount   int
	funcType     *FunctionType
	httpParams   string
	headerChange []func(http.Header)
}

// WithTimeout sets the function timeout: x-fc-function-deadline is
// Invoke time + d, x-fc-function-timeout is d rounded up to whole seconds,
// and Invoke gives up with ErrTimeout at the deadline. Sub-second values are
// accepted so tests stay fast (real FC's minimum is 1 s).
func WithTimeout(d time.Duration) Option { return func(c *invokeConfig) { c.timeout = d } }

// WithCredentials sets the x-fc-access-key-id, x-fc-access-key-secret and
// x-fc-security-token headers (dummies by default).
func WithCredentials(accessKeyID, accessKeySecret, securityToken string) Option {
	return func(c *invokeConfig) { c.akID, c.akSec, c.token = accessKeyID, accessKeySecret, securityToken }
}

// WithRequestID uses id instead of a fresh random request id. Invoke fails if
// the id was already used on this emulator or contains a '/'.
func WithRequestID(id string) Option { return func(c *invokeConfig) { c.requestID = id } }

// WithRetryCount sets x-fc-retry-count (0 by default).
func WithRetryCount(n int) Option { return func(c *invokeConfig) { c.retryCount = n } }

// WithFunctionType sets x-fc-function-type, which makes the SDK run the
// registered initializer / pre-stop / pre-freeze hook. Without it the header
// is not sent and the SDK runs the handler.
func WithFunctionType(ft FunctionType) Option { return func(c *invokeConfig) { c.funcType = &ft } }

// WithHTTPParams sets the request's x-fc-http-params header (the base64 JSON
// request line/headers FC 2.0 sends to HTTP functions).
func WithHTTPParams(s string) Option { return func(c *invokeConfig) { c.httpParams = s } }

// WithHeader sets (adds or overrides) a header of the delivered invocation.
// It is applied after the emulator's own headers, in option order.
func WithHeader(name, value string) Option {
	return func(c *invokeConfig) {
		c.headerChange = append(c.headerChange, func(h http.Header) { h.Set(name, value) })
	}
}

// WithoutHeader removes a header from the delivered invocation, e.g. a
// required one to check that the resulting hang is detected.
func WithoutHeader(name string) Option {
	return func(c *invokeConfig) {
		c.headerChange = append(c.headerChange, func(h http.Header) { h.Del(name) })
	}
}

type invState int

const (
	stQueued     invState = iota // waiting for a next call
	stDispatched                 // handed to the runtime, no result yet
	stCompleted                  // result received in time
	stTimedOut                   // Invoke gave up at the deadline
	stCanceled                   // Invoke's context ended first
	stLost                       // process exited / emulator closed first
)

type invocation struct {
	id           string
	payload      []byte
	header       http.Header
	invokedAt    time.Time
	dispatchedAt time.Time
	stderrMark   int
	state        invState
	results      int // result POSTs accepted (completed or late)
	result       Result
	done         chan struct{}
}

type waiter struct{ ch chan *invocation }

// Emulator is a running function process plus the runtime API it talks to.
type Emulator struct {
	t       testing.TB
	binary  string
	ln      net.Listener
	srv     *http.Server
	cmd     *exec.Cmd
	stdout  capBuffer
	stderr  capBuffer
	started time.Time

	exited    chan struct{} // closed when the process has exited
	closing   chan struct{} // closed at cleanup
	firstNext chan struct{} // closed at the first next call
	closeOnce sync.Once

	mu              sync.Mutex
	exitErr         error
	exitedAt        time.Time
	queue           []*invocation
	waiters         []*waiter
	byID            map[string]*invocation
	violations      []string
	late            []string
	nextCalls       int
	firstNextAt     time.Time
	firstResultAt   time.Time
	allowViolations bool
}

// Start listens on 127.0.0.1:0, starts binary with FC_RUNTIME_API set to
// that address and returns the running emulator. The child's environment is
// minimal, like an FC instance's and so that no host credentials leak into
// it: PATH, TMPDIR and the Go debugging/coverage variables (GOCOVERDIR,
// GORACE, GOTRACEBACK, GODEBUG) from the host, then the FC_* system variables
// FC documents (FC_RUNTIME_API, FC_FUNC_CODE_PATH = the binary's directory,
// which is also the working directory, FC_FUNCTION_NAME,
// FC_FUNCTION_HANDLER, FC_FUNCTION_MEMORY_SIZE, FC_REGION, FC_ACCOUNT_ID,
// FC_INSTANCE_ID), then env ("KEY=value"; later entries win, so env can
// override any of them). ALIBABA_CLOUD_* credentials are not set unless env
// sets them.
//
// Stdout and stderr are captured (Stdout, Stderr) and logged via t.Log only
// if the test failed. t.Cleanup kills the process, closes the server and,
// unless AllowViolations was called, fails the test if any protocol
// violation was recorded.
func Start(t testing.TB, binary string, env []string) *Emulator {
	t.Helper()
	abs, err := filepath.Abs(binary)
	if err != nil {
		t.Fatalf("fcemu: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fcemu: listen: %v", err)
	}
	e := &Emulator{
		t:         t,
		binary:    abs,
		ln:        ln,
		exited:    make(chan struct{}),
		closing:   make(chan struct{}),
		firstNext: make(chan struct{}),
		byID:      make(map[string]*invocation),
	}
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() { _ = e.srv.Serve(ln) }() // ErrServerClosed at cleanup

	cmd := exec.Command(abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.Env = e.childEnv(env)
	cmd.Stdout = &e.stdout
	cmd.Stderr = &e.stderr
	cmd.WaitDelay = 2 * time.Second
	e.cmd = cmd
	e.started = time.Now()
	if err := cmd.Start(); err != nil {
		e.srv.Close()
		t.Fatalf("fcemu: start %s: %v", binary, err)
	}
	go func() {
		err := cmd.Wait()
		e.mu.Lock()
		e.exitErr = err
		e.exitedAt = time.Now()
		e.mu.Unlock()
		close(e.exited)
	}()
	t.Cleanup(e.close)
	return e
}

func (e *Emulator) childEnv(extra []string) []string {
	var env []string
	for _, k := range []string{"PATH", "TMPDIR", "GOCOVERDIR", "GORACE", "GOTRACEBACK", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env,
		"FC_RUNTIME_API="+e.Addr(),
		"FC_FUNC_CODE_PATH="+filepath.Dir(e.binary),
		"FC_FUNCTION_NAME="+DefaultFunctionName,
		"FC_FUNCTION_HANDLER="+DefaultHandler,
		"FC_FUNCTION_MEMORY_SIZE="+strconv.Itoa(DefaultMemoryMB),
		"FC_REGION="+DefaultRegion,
		"FC_ACCOUNT_ID="+DefaultAccountID,
		"FC_INSTANCE_ID=fcemu-"+randomHex(8),
	)
	return append(env, extra...)
}

// close is the t.Cleanup hook.
func (e *Emulator) close() {
	e.closeOnce.Do(func() {
		close(e.closing)
		select {
		case <-e.exited:
		default:
			_ = e.cmd.Process.Kill()
			select {
			case <-e.exited:
			case <-time.After(5 * time.Second):
				e.t.Errorf("fcemu: process %d did not exit after kill", e.cmd.Process.Pid)
			}
		}
		e.srv.Close()
		e.mu.Lock()
		violations := append([]string(nil), e.violations...)
		allow := e.allowViolations
		e.mu.Unlock()
		if len(violations) > 0 && !allow {
			e.t.Errorf("fcemu: %d runtime API protocol violation(s):\n  %s",
				len(violations), strings.Join(violations, "\n  "))
		}
		if e.t.Failed() {
			e.t.Logf("fcemu: function stdout:\n%s", e.stdout.String())
			e.t.Logf("fcemu: function stderr:\n%s", e.stderr.String())
		}
	})
}

// Addr is the runtime API address given to the function (FC_RUNTIME_API).
func (e *Emulator) Addr() string { return e.ln.Addr().String() }

// Stdout returns what the function wrote to stdout so far.
func (e *Emulator) Stdout() string { return e.stdout.String() }

// Stderr returns what the function wrote to stderr so far (the SDK logs
// there with package log).
func (e *Emulator) Stderr() string { return e.stderr.String() }

// StartedAt is when the process was started.
func (e *Emulator) StartedAt() time.Time { return e.started }

// FirstNextAt returns the time from process start to the runtime's first
// `next` call (the cold start until the function is ready), and false if
// there was none yet.
func (e *Emulator) FirstNextAt() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstNextAt.IsZero() {
		return 0, false
	}
	return e.firstNextAt.Sub(e.started), true
}

// FirstResultAt returns the time from process start to the first result
// (response or error) accepted, and false if there was none yet.
func (e *Emulator) FirstResultAt() (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstResultAt.IsZero() {
		return 0, false
	}
	return e.firstResultAt.Sub(e.started), true
}

// WaitReady blocks until the runtime made its first `next` call, the process
// exited, or ctx ended.
func (e *Emulator) WaitReady(ctx context.Context) error {
	select {
	case <-e.firstNext:
		return nil
	case <-e.exited:
		return e.exitError()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NextCalls is the number of `next` calls received so far.
func (e *Emulator) NextCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nextCalls
}

// OutstandingNext is the number of `next` long polls currently waiting for
// an invocation.
func (e *Emulator) OutstandingNext() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.waiters)
}

// Pending is the number of invocations waiting for a `next` call.
func (e *Emulator) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

// Violations returns the protocol violations recorded so far: results for
// unknown or not yet delivered request ids (answered 404), second results
// for the same id (409), malformed error documents (400), unknown paths
// (404) and wrong methods (405).
func (e *Emulator) Violations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.violations...)
}

// AllowViolations stops cleanup from failing the test because of recorded
// violations, for tests that provoke them on purpose.
func (e *Emulator) AllowViolations() {
	e.mu.Lock()
	e.allowViolations = true
	e.mu.Unlock()
}

// LateResults lists "<id> <kind>" for results that arrived after Invoke had
// given up on the invocation (timeout, cancelled context). They are accepted
// with 200 and are not violations: a function that overruns its deadline is
// not breaking the protocol.
func (e *Emulator) LateResults() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.late...)
}

// Exited reports whether the process has exited, and with what error
// (nil for exit status 0, an *exec.ExitError otherwise).
func (e *Emulator) Exited() (bool, error) {
	select {
	case <-e.exited:
		e.mu.Lock()
		defer e.mu.Unlock()
		return true, e.exitErr
	default:
		return false, nil
	}
}

// Done is closed when the process has exited.
func (e *Emulator) Done() <-chan struct{} { return e.exited }

// Pid is the process id of the function.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Kill kills the function process (an instance crash) and waits for it to
// be reaped.
func (e *Emulator) Kill() error {
	select {
	case <-e.exited:
		return nil
	default:
	}
	if err := e.cmd.Process.Kill(); err != nil {
		return err
	}
	<-e.exited
	return nil
}

// Invoke delivers payload to the function as a new invocation and waits for
// its result. It is safe for concurrent use. It returns, wrapped,
// ErrTimeout when no result arrives by the deadline (default DefaultTimeout),
// ErrProcessExited as soon as the process is found dead, ErrClosed at
// cleanup, or ctx.Err(). A result on /error is not a Go error: it comes back
// with Result.IsError set. On error the Result still carries RequestID.
func (e *Emulator) Invoke(ctx context.Context, payload []byte, opts ...Option) (Result, error) {
	cfg := invokeConfig{
		timeout: DefaultTimeout,
		akID:    DefaultAccessKeyID,
		akSec:   DefaultAccessKeySecret,
		token:   DefaultSecurityToken,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.timeout <= 0 {
		return Result{}, fmt.Errorf("fcemu: invalid timeout %v", cfg.timeout)
	}
	id := cfg.requestID
	if id == "" {
		id = newRequestID()
	} else if strings.Contains(id, "/") {
		return Result{}, fmt.Errorf("fcemu: request id %q contains '/'", id)
	}

	now := time.Now()
	deadline := now.Add(cfg.timeout)
	timeoutSec := int((cfg.timeout + time.Second - 1) / time.Second)
	h := http.Header{}
	h.Set(HeaderRequestID, id)
	h.Set(HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set(HeaderFunctionTimeout, strconv.Itoa(timeoutSec))
	h.Set(HeaderFunctionName, DefaultFunctionName)
	h.Set(HeaderFunctionHandler, DefaultHandler)
	h.Set(HeaderFunctionMemory, strconv.Itoa(DefaultMemoryMB))
	h.Set(HeaderRegion, DefaultRegion)
	h.Set(HeaderAccountID, DefaultAccountID)
	h.Set(HeaderAccessKeyID, cfg.akID)
	h.Set(HeaderAccessKeySecret, cfg.akSec)
	h.Set(HeaderSecurityToken, cfg.token)
	h.Set(HeaderRetryCount, strconv.Itoa(cfg.retryCount))
	if cfg.funcType != nil {
		h.Set(HeaderFunctionType, strconv.Itoa(int(*cfg.funcType)))
	}
	if cfg.httpParams != "" {
		h.Set(HeaderHTTPParams, cfg.httpParams)
	}
	for _, change := range cfg.headerChange {
		change(h)
	}
	inv := &invocation{
		id:        id,
		payload:   append([]byte(nil), payload...),
		header:    h,
		invokedAt: now,
		done:      make(chan struct{}),
	}
	base := Result{RequestID: id, Headers: h.Clone()}

	e.mu.Lock()
	select {
	case <-e.exited:
		e.mu.Unlock()
		return base, e.exitError()
	case <-e.closing:
		e.mu.Unlock()
		return base, ErrClosed
	default:
	}
	if _, dup := e.byID[id]; dup {
		e.mu.Unlock()
		return base, fmt.Errorf("fcemu: request id %q already used", id)
	}
	e.byID[id] = inv
	e.queue = append(e.queue, inv)
	e.pump()
	e.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-inv.done:
		return inv.result, nil
	case <-timer.C:
		if r, ok := e.abandon(inv, stTimedOut); ok {
			return r, nil
		}
		base.Duration = time.Since(now)
		return base, fmt.Errorf("%w: request %s got no result within %v; %s",
			ErrTimeout, id, cfg.timeout, e.diagnose(inv))
	case <-ctx.Done():
		if r, ok := e.abandon(inv, stCanceled); ok {
			return r, nil
		}
		base.Duration = time.Since(now)
		return base, fmt.Errorf("fcemu: request %s: %w", id, ctx.Err())
	case <-e.exited:
		if r, ok := e.abandon(inv, stLost); ok {
			return r, nil
		}
		base.Duration = time.Since(now)
		return base, fmt.Errorf("request %s: %w", id, e.exitError())
	case <-e.closing:
		if r, ok := e.abandon(inv, stLost); ok {
			return r, nil
		}
		return base, ErrClosed
	}
}

// abandon marks inv as given up unless its result already arrived, in
// which case it returns that result and true.
func (e *Emulator) abandon(inv *invocation, st invState) (Result, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if inv.state == stCompleted {
		return inv.result, true
	}
	if inv.state == stQueued {
		for i, q := range e.queue {
			if q == inv {
				e.queue = append(e.queue[:i], e.queue[i+1:]...)
				break
			}
		}
	}
	inv.state = st
	return Result{}, false
}

// diagnose explains a timeout (called without e.mu held).
func (e *Emulator) diagnose(inv *invocation) string {
	e.mu.Lock()
	dispatched := !inv.dispatchedAt.IsZero()
	at := inv.dispatchedAt.Sub(inv.invokedAt)
	mark := inv.stderrMark
	var related []string
	for _, v := range e.violations {
		if strings.Contains(v, inv.id) {
			related = append(related, v)
		}
	}
	e.mu.Unlock()
	var b strings.Builder
	if !dispatched {
		b.WriteString("it was never picked up by a `next` call")
	} else {
		fmt.Fprintf(&b, "the runtime received it %v after Invoke but never posted a valid result", at.Round(time.Millisecond))
	}
	if len(related) > 0 {
		fmt.Fprintf(&b, "; violations: %s", strings.Join(related, "; "))
	}
	if dispatched {
		var hints []string
		for _, line := range strings.Split(e.stderr.From(mark), "\n") {
			if strings.Contains(line, "failed to") {
				hints = append(hints, strings.TrimSpace(line))
			}
		}
		if len(hints) > 0 {
			fmt.Fprintf(&b, "; runtime stderr: %s", strings.Join(hints, " | "))
		}
	}
	return b.String()
}

func (e *Emulator) exitError() error {
	e.mu.Lock()
	err := e.exitErr
	e.mu.Unlock()
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	tail := e.stderr.String()
	if len(tail) > 2048 {
		tail = "…" + tail[len(tail)-2048:]
	}
	return fmt.Errorf("%w (%s); stderr tail:\n%s", ErrProcessExited, status, tail)
}

// pump hands queued invocations to waiting next calls, both FIFO.
// e.mu must be held.
func (e *Emulator) pump() {
	for len(e.queue) > 0 && len(e.waiters) > 0 {
		inv, w := e.queue[0], e.waiters[0]
		e.queue, e.waiters = e.queue[1:], e.waiters[1:]
		e.markDispatched(inv)
		w.ch <- inv // buffered, never blocks
	}
}

func (e *Emulator) markDispatched(inv *invocation) {
	inv.state = stDispatched
	inv.dispatchedAt = time.Now()
	inv.stderrMark = e.stderr.Len()
}

// violate records a protocol violation. e.mu must be held.
func (e *Emulator) violate(format string, args ...any) {
	e.violations = append(e.violations, fmt.Sprintf(format, args...))
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, basePath)
	if !ok {
		e.reject(w, http.StatusNotFound, "%s %s: unknown path", r.Method, r.URL.Path)
		return
	}
	if rest == "next" {
		if r.Method != http.MethodGet {
			e.reject(w, http.StatusMethodNotAllowed, "%s %s: method not allowed", r.Method, r.URL.Path)
			return
		}
		e.serveNext(w, r)
		return
	}
	id, kind, ok := strings.Cut(rest, "/")
	if !ok || id == "" || (kind != "response" && kind != "error") {
		e.reject(w, http.StatusNotFound, "%s %s: unknown path", r.Method, r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		e.reject(w, http.StatusMethodNotAllowed, "%s %s: method not allowed", r.Method, r.URL.Path)
		return
	}
	e.serveResult(w, r, id, kind)
}

func (e *Emulator) reject(w http.ResponseWriter, code int, format string, args ...any) {
	e.mu.Lock()
	e.violate(format, args...)
	e.mu.Unlock()
	http.Error(w, http.StatusText(code), code)
}

func (e *Emulator) serveNext(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.nextCalls++
	if e.firstNextAt.IsZero() {
		e.firstNextAt = time.Now()
		close(e.firstNext)
	}
	wt := &waiter{ch: make(chan *invocation, 1)}
	e.waiters = append(e.waiters, wt)
	e.pump()
	e.mu.Unlock()

	select {
	case inv := <-wt.ch:
		writeInvocation(w, inv)
	case <-r.Context().Done():
		e.dropWaiter(wt)
	case <-e.closing:
		e.dropWaiter(wt)
		// Drop the connection without an answer: returning normally would
		// send an empty 200, which the SDK would take for an invocation.
		panic(http.ErrAbortHandler)
	}
}

// dropWaiter removes a next call that went away; if an invocation was handed
// to it in the meantime, that invocation goes back to the head of the queue.
func (e *Emulator) dropWaiter(wt *waiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.waiters {
		if x == wt {
			e.waiters = append(e.waiters[:i], e.waiters[i+1:]...)
			return
		}
	}
	select {
	case inv := <-wt.ch:
		if inv.state == stDispatched {
			inv.state = stQueued
			inv.dispatchedAt = time.Time{}
			e.queue = append([]*invocation{inv}, e.queue...)
			e.pump()
		}
	default:
	}
}

func writeInvocation(w http.ResponseWriter, inv *invocation) {
	for k, vs := range inv.header {
		w.Header()[k] = append([]string(nil), vs...)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(inv.payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

func (e *Emulator) serveResult(w http.ResponseWriter, r *http.Request, id, kind string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		e.reject(w, http.StatusBadRequest, "POST %s: reading body: %v", r.URL.Path, err)
		return
	}
	var fe *FunctionError
	var decodeErr error
	if kind == "error" {
		fe, decodeErr = decodeFunctionError(body)
	}

	e.mu.Lock()
	inv := e.byID[id]
	switch {
	case inv == nil || inv.dispatchedAt.IsZero():
		e.violate("POST %s: unknown request id %q", r.URL.Path, id)
		e.mu.Unlock()
		http.Error(w, "unknown request id", http.StatusNotFound)
		return
	case inv.results > 0:
		e.violate("POST %s: second result for request id %q", r.URL.Path, id)
		e.mu.Unlock()
		http.Error(w, "result already received", http.StatusConflict)
		return
	case decodeErr != nil:
		e.violate("POST %s: malformed error document for request id %q: %v (body %.200q)", r.URL.Path, id, decodeErr, body)
		e.mu.Unlock()
		http.Error(w, "malformed error document", http.StatusBadRequest)
		return
	}
	now := time.Now()
	inv.results++
	if inv.state == stDispatched {
		inv.result = Result{
			RequestID:   id,
			Payload:     body,
			IsError:     kind == "error",
			Error:       fe,
			HTTPParams:  r.Header.Get(HeaderHTTPParams),
			ContentType: r.Header.Get("Content-Type"),
			Duration:    now.Sub(inv.invokedAt),
			Headers:     inv.header.Clone(),
		}
		inv.state = stCompleted
		if e.firstResultAt.IsZero() {
			e.firstResultAt = now
		}
		close(inv.done)
	} else {
		e.late = append(e.late, id+" "+kind)
	}
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// decodeFunctionError parses an error document: a JSON object with string
// errorMessage and errorType (the SDK always emits both), optional
// stackTrace and optional shouldExit.
func decodeFunctionError(body []byte) (*FunctionError, error) {
	var wire struct {
		Message    *string      `json:"errorMessage"`
		Type       *string      `json:"errorType"`
		StackTrace []StackFrame `json:"stackTrace"`
		ShouldExit *bool        `json:"shouldExit"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(trimmed, &wire); err != nil {
		return nil, err
	}
	if wire.Message == nil || wire.Type == nil {
		return nil, errors.New("errorMessage and errorType are required")
	}
	return &FunctionError{
		Message:    *wire.Message,
		Type:       *wire.Type,
		StackTrace: wire.StackTrace,
		ShouldExit: (wire.ShouldExit != nil && *wire.ShouldExit) || len(wire.StackTrace) > 0,
	}, nil
}

// newRequestID returns a random UUID-v4-style id, the shape of FC request
// ids seen in Alibaba's documentation.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// capBuffer is a goroutine-safe buffer that keeps at most maxCapture bytes.
type capBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	dropped int64
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := maxCapture - c.b.Len()
	if room < len(p) {
		if room > 0 {
			c.b.Write(p[:room])
		}
		c.dropped += int64(len(p) - max(room, 0))
		return len(p), nil
	}
	c.b.Write(p)
	return len(p), nil
}

func (c *capBuffer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Len()
}

// From returns the captured text from byte offset off on.
func (c *capBuffer) From(off int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if off > c.b.Len() {
		return ""
	}
	return string(c.b.Bytes()[off:])
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.b.String()
	if c.dropped > 0 {
		s += fmt.Sprintf("\n[fcemu: %d further bytes dropped]", c.dropped)
	}
	return s
}
