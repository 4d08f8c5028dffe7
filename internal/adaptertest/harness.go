// Package adaptertest is the harness the platform adapters' envelope tests
// share (functions/aws-lambda, functions/alibaba-fc): an adapter built from
// a fake environment on a temporary file store, its log lines captured,
// and the checks of what it answers — API objects in JSON or XML, HTTP
// responses, batches, function errors, log lines — down to each returned
// CSR and its stored record. What differs between the platforms (their
// envelopes, response types, SDK error type and context) stays in their
// own tests and reaches the harness through an Adapter. Only tests import
// it.
package adaptertest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/csrfn/csrfn/core/record"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/internal/testkit"
)

// Handler is a platform adapter: it answers one invocation's payload.
type Handler interface {
	Handle(ctx context.Context, payload json.RawMessage) (any, error)
}

// Adapter tells the harness how to build and invoke one platform's adapter.
type Adapter struct {
	// LogOutput is the adapter package's log writer variable, which New
	// reads once. The harness points it at its own buffer while New runs,
	// under a lock, so that parallel tests each get their own log.
	LogOutput *io.Writer
	// New builds the adapter from the environment getenv.
	New func(getenv func(string) (string, bool)) (Handler, error)
	// Context is the context the platform's runtime hands the handler for
	// an invocation with request id platformID.
	Context func(platformID string) context.Context
	// FunctionError checks that err is the SDK's function error type, which
	// the runtime reports as is, and returns its Type and Message.
	FunctionError func(t testing.TB, err error) (typ, msg string)
}

// Constructor turns a platform's newAdapter, which takes a context and the
// environment, into an Adapter.New that calls it with context.Background().
func Constructor[A Handler](newAdapter func(context.Context, func(string) (string, bool)) (A, error)) func(func(string) (string, bool)) (Handler, error) {
	return func(getenv func(string) (string, bool)) (Handler, error) {
		return newAdapter(context.Background(), getenv)
	}
}

// FunctionErrorAs is an Adapter.FunctionError for an SDK whose function
// error type is E: it checks that err is an E and returns fields(err).
func FunctionErrorAs[E error](fields func(E) (typ, msg string)) func(testing.TB, error) (string, string) {
	return func(t testing.TB, err error) (string, string) {
		t.Helper()
		e, ok := err.(E)
		if !ok {
			var want E
			t.Fatalf("error is %T (%v), want %T", err, err, want)
		}
		return fields(e)
	}
}

// Harness is one adapter on its own temporary file store, with its log
// lines captured.
type Harness struct {
	T     *testing.T
	Store string              // the file store's directory
	Logs  *testkit.SyncBuffer // the adapter's log lines

	opener  seal.Opener // opens the records' sealed keys
	adapter Adapter
	handler Handler
}

// logOutputMu serialises the swap of Adapter.LogOutput around Adapter.New.
var logOutputMu sync.Mutex

// New builds a's adapter with CSRFN_STORE on a fresh file store and a new
// CSRFN_MASTER_KEY.
func New(t *testing.T, a Adapter) *Harness {
	t.Helper()
	store, key, env := testkit.FileStoreEnv(t)
	opener, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	logs := &testkit.SyncBuffer{}
	handler, err := func() (Handler, error) {
		logOutputMu.Lock()
		defer logOutputMu.Unlock()
		saved := *a.LogOutput
		*a.LogOutput = logs
		defer func() { *a.LogOutput = saved }()
		return a.New(func(name string) (string, bool) {
			v, ok := vars[name]
			return v, ok
		})
	}()
	if err != nil {
		t.Fatalf("newAdapter: %v", err)
	}
	return &Harness{T: t, Store: store, Logs: logs, opener: opener, adapter: a, handler: handler}
}

// WithT returns a copy of h that reports to t, for a subtest that shares
// h's adapter, store and log.
func (h *Harness) WithT(t *testing.T) *Harness {
	c := *h
	c.T = t
	return &c
}

// BreakStore makes every later Create of the store fail.
func (h *Harness) BreakStore() {
	h.T.Helper()
	testkit.BreakStore(h.T, h.Store)
}

// Handle invokes the handler as the platform's runtime would, with a
// platform request id in the context. A panic fails the test.
func (h *Harness) Handle(platformID string, payload []byte) (any, error) {
	h.T.Helper()
	ctx := h.adapter.Context(platformID)
	defer func() {
		if r := recover(); r != nil {
			h.T.Fatalf("Handle panicked on %.200q: %v", payload, r)
		}
	}()
	return h.handler.Handle(ctx, json.RawMessage(payload))
}

// HandleOK is Handle for an invocation that must not end in an error (a
// function error): 2xx and 4xx outcomes are results, and so are 5xx ones
// of HTTP envelopes. An error fails the test.
func (h *Harness) HandleOK(platformID string, payload []byte) any {
	h.T.Helper()
	out, err := h.Handle(platformID, payload)
	if err != nil {
		h.T.Fatalf("Handle returned an error (a function error): %v", err)
	}
	return out
}

// FunctionError checks that err is the platform SDK's function error and
// returns its Type and Message.
func (h *Harness) FunctionError(err error) (typ, msg string) {
	h.T.Helper()
	return h.adapter.FunctionError(h.T, err)
}

// LogLines parses the adapter's log; every line must be JSON.
func (h *Harness) LogLines() []testkit.LogLine {
	h.T.Helper()
	return h.Logs.JSONLines(h.T)
}

// CheckLogs asserts one log line per object, each carrying the platform
// request id beside the object's own RequestId, and its status and code.
func (h *Harness) CheckLogs(platformID string, objs []Object, statuses []int) {
	h.T.Helper()
	t := h.T
	lines := h.LogLines()
	if len(lines) != len(objs) {
		t.Errorf("%d log lines, want %d:\n%s", len(lines), len(objs), h.Logs.String())
	}
	byID := map[string]testkit.LogLine{}
	for _, l := range lines {
		if got := l.Str("PlatformRequestId"); got != platformID {
			t.Errorf("log line has PlatformRequestId %q, want %q: %v", got, platformID, l)
		}
		if l.Str("msg") != "request" {
			t.Errorf("log line msg %q, want request", l.Str("msg"))
		}
		byID[l.Str("RequestId")] = l
	}
	for i, o := range objs {
		l, ok := byID[o.RequestId]
		if !ok {
			t.Errorf("no log line with RequestId %s", o.RequestId)
			continue
		}
		if got := l.Num("Status"); got != statuses[i] {
			t.Errorf("log line of %s: Status %d, want %d", o.RequestId, got, statuses[i])
		}
		if got := l.Str("Code"); got != o.Code {
			t.Errorf("log line of %s: Code %q, want %q", o.RequestId, got, o.Code)
		}
		if got := l.Str("PubMd5"); got != o.PubMd5 {
			t.Errorf("log line of %s: PubMd5 %q, want %q", o.RequestId, got, o.PubMd5)
		}
	}
}

// RecordNames lists the records in the store.
func (h *Harness) RecordNames() []string {
	h.T.Helper()
	ents, err := os.ReadDir(h.Store)
	if err != nil {
		h.T.Fatalf("reading the store: %v", err)
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

// CheckNothingStored asserts that the store holds no record.
func (h *Harness) CheckNothingStored() {
	h.T.Helper()
	if names := h.RecordNames(); len(names) != 0 {
		h.T.Errorf("records stored for a refused request: %v", names)
	}
}

// LoadRecord reads <pubMd5>.json, checks it and opens its sealed key.
func (h *Harness) LoadRecord(pubMd5 string) *record.Record {
	h.T.Helper()
	t := h.T
	data, err := os.ReadFile(filepath.Join(h.Store, record.Name(pubMd5)))
	if err != nil {
		t.Errorf("record of %s: %v", pubMd5, err)
		return nil
	}
	r, err := record.Unmarshal(data)
	if err != nil {
		t.Errorf("record of %s: %v", pubMd5, err)
		return nil
	}
	if _, err := record.OpenKey(context.Background(), r, h.opener); err != nil {
		t.Errorf("record of %s: sealed key: %v", pubMd5, err)
	}
	return r
}

// NoInternals asserts that s, text a client sees, carries no internal
// cause: no path of the store, no file system error.
func (h *Harness) NoInternals(s string) {
	h.T.Helper()
	for _, bad := range []string{h.Store, filepath.Dir(h.Store), "keystore", "not a directory", "no such file", "link", ".json"} {
		if strings.Contains(s, bad) {
			h.T.Errorf("%q leaks internal text %q", s, bad)
		}
	}
}
