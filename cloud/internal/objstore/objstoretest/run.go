package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/csrfn/csrfn/cloud/internal/objstore"
	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keys"
	"github.com/csrfn/csrfn/core/keystore/storetest"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

// Run runs the tests of objstore's rules on b, in parallel subtests.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		test func(*testing.T, Backend)
	}{
		{"RetryThenSucceed", retryThenSucceed},
		{"RetryAfterAppliedPut", retryAfterAppliedPut},
		{"AlwaysFailing", alwaysFailing},
		{"CallTimeout", callTimeout},
		{"ServiceUnavailableStore", serviceUnavailableStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, b)
		})
	}
}

type namedFault struct {
	name string
	kind Fault
}

// transientFaults are the faults a retry can get through.
var transientFaults = []namedFault{
	{"503", Fault503},
	{"500", Fault500},
	{"dropped connection", FaultDrop},
}

// retryThenSucceed: a server that fails a few times and then works is
// retried through, and the record is stored once.
func retryThenSucceed(t *testing.T, b Backend) {
	for _, tc := range transientFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, endpoint, _ := b.ServeFaulty(t, tc.kind, 2, nil, nil)
			s := b.Open(t, endpoint, objstore.Policy{MaxAttempts: 4, MaxBackoff: 20 * time.Millisecond})
			defer s.Close()
			ctx := context.Background()
			name := storetest.Name(1)
			data := []byte(`{"Version":1,"retried":true}`)
			if err := s.Create(ctx, name, data); err != nil {
				t.Fatalf("Create through 2 failures: %v", err)
			}
			if got := f.Count(); got != 3 {
				t.Errorf("server saw %d requests; want 3 (2 failures and the success)", got)
			}
			got, err := s.Load(ctx, name)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Load = %q, %v", got, err)
			}
			// Loads and Lists are retried the same way.
			f.Reset(tc.kind, 2)
			if got, err := s.Load(ctx, name); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Load through 2 failures = %q, %v", got, err)
			}
			f.Reset(tc.kind, 2)
			if names, err := s.List(ctx); err != nil || !slices.Equal(names, []string{name}) {
				t.Fatalf("List through 2 failures = %q, %v", names, err)
			}
		})
	}
}

// retryAfterAppliedPut: the first PUT is stored but its answer is lost
// (the connection drops), so the SDK's retry is told that our own object
// exists. The store reads the record back, finds its own bytes and reports
// success; had another writer's bytes been there it would report
// fs.ErrExist.
func retryAfterAppliedPut(t *testing.T, b Backend) {
	var rec Recorder
	f, endpoint, _ := b.ServeFaulty(t, FaultDropAfter, 1, IsPut, &rec)
	s := b.Open(t, endpoint, objstore.Policy{MaxBackoff: 20 * time.Millisecond})
	defer s.Close()
	ctx := context.Background()
	name := storetest.Name(1)
	data := []byte(`{"Version":1,"RequestId":"A"}`)
	if err := s.Create(ctx, name, data); err != nil {
		t.Fatalf("Create whose first answer was lost: %v", err)
	}
	var methods []string
	for _, r := range rec.All() {
		methods = append(methods, r.Method)
	}
	if !slices.Equal(methods, []string{"PUT", "PUT", "GET"}) {
		t.Errorf("requests %q; want PUT (lost answer), PUT (%s), GET (the check)", methods, b.Exists)
	}
	if got, err := s.Load(ctx, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load = %q, %v", got, err)
	}

	// A retried PUT whose already-exists answer is a real conflict:
	// another writer's record holds the name, our first PUT is lost before
	// reaching the store and the retry meets the other record. The check
	// finds other bytes: fs.ErrExist, and the other record is untouched.
	name2 := storetest.Name(2)
	other := []byte(`{"Version":1,"RequestId":"B"}`)
	if err := s.Create(ctx, name2, other); err != nil { // no fault left
		t.Fatal(err)
	}
	f.Reset(FaultDrop, 1)
	before := len(rec.All())
	if err := s.Create(ctx, name2, data); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("retried Create over another writer's record = %v; want fs.ErrExist", err)
	}
	if n := len(rec.All()) - before; n != 3 {
		t.Errorf("server saw %d requests; want 3 (the lost PUT, the %s, the check)", n, b.Exists)
	}
	if got, _ := s.Load(ctx, name2); !bytes.Equal(got, other) {
		t.Fatalf("the other writer's record changed: %q", got)
	}
}

// alwaysFailing: a server that keeps failing makes Create give up within
// the bounded time with service.ErrUnavailable, having stored nothing.
func alwaysFailing(t *testing.T, b Backend) {
	for _, tc := range append(transientFaults, namedFault{"no answer", FaultHang}) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, endpoint, backend := b.ServeFaulty(t, tc.kind, -1, nil, nil)
			p := objstore.Policy{
				MaxAttempts:    3,
				MaxBackoff:     50 * time.Millisecond,
				AttemptTimeout: 300 * time.Millisecond,
				CallTimeout:    2 * time.Second,
			}
			s := b.Open(t, endpoint, p)
			defer s.Close()
			start := time.Now()
			err := s.Create(context.Background(), storetest.Name(1), []byte(`{"Version":1}`))
			elapsed := time.Since(start)
			if !errors.Is(err, service.ErrUnavailable) {
				t.Fatalf("Create = %v; want an error wrapping service.ErrUnavailable", err)
			}
			if errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create = %v; must not wrap fs.ErrExist", err)
			}
			if elapsed > p.CallTimeout+time.Second {
				t.Errorf("Create took %v; want at most the call timeout %v (+1s)", elapsed, p.CallTimeout)
			}
			if got := f.Count(); got != p.MaxAttempts {
				t.Errorf("server saw %d requests; want MaxAttempts = %d", got, p.MaxAttempts)
			}
			if keys := Objects(t, backend); len(keys) != 0 {
				t.Errorf("objects stored: %q; want none", keys)
			}
			if _, err := s.Load(context.Background(), storetest.Name(1)); !errors.Is(err, service.ErrUnavailable) {
				t.Errorf("Load = %v; want service.ErrUnavailable", err)
			}
			if _, err := s.List(context.Background()); !errors.Is(err, service.ErrUnavailable) {
				t.Errorf("List = %v; want service.ErrUnavailable", err)
			}
		})
	}
}

// callTimeout: the call timeout bounds a Create even when each attempt
// would wait longer.
func callTimeout(t *testing.T, b Backend) {
	_, endpoint, _ := b.ServeFaulty(t, FaultHang, -1, nil, nil)
	p := objstore.Policy{MaxAttempts: 10, AttemptTimeout: time.Minute, CallTimeout: 500 * time.Millisecond}
	s := b.Open(t, endpoint, p)
	defer s.Close()
	start := time.Now()
	err := s.Create(context.Background(), storetest.Name(1), []byte("x"))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Create took %v; want about the call timeout %v", d, p.CallTimeout)
	}
	if !errors.Is(err, service.ErrUnavailable) {
		t.Fatalf("Create = %v; want service.ErrUnavailable", err)
	}
}

// serviceUnavailableStore runs the real service on a store whose backend
// always fails: the caller gets Internal.Error and no CSR, and no record
// is stored.
func serviceUnavailableStore(t *testing.T, b Backend) {
	_, endpoint, backend := b.ServeFaulty(t, Fault503, -1, nil, nil)
	store := b.Open(t, endpoint, objstore.Policy{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	defer store.Close()
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := seal.NewLocal(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: store, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	req, err := request.Parse(params.Set{"CommonName": "example.com", "KeyAlgorithm": string(keys.ECP256)}, request.SeedDefaults)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := svc.Create(context.Background(), service.NewRequestID(), req)
	if resp != nil {
		t.Fatalf("service answered %+v; want no CSR", resp)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.CodeInternal || ae.Status != http.StatusInternalServerError {
		t.Fatalf("service error = %v; want Internal.Error (500)", err)
	}
	if ae.Message != apierr.MsgInternal {
		t.Errorf("message = %q; want %q", ae.Message, apierr.MsgInternal)
	}
	if !errors.Is(err, service.ErrUnavailable) {
		t.Errorf("cause = %v; want it to wrap service.ErrUnavailable", err)
	}
	if keys := Objects(t, backend); len(keys) != 0 {
		t.Errorf("objects stored: %q; want none", keys)
	}
}
