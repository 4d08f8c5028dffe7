package invoke

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/keystore"
	"github.com/csrfn/csrfn/core/seal"
	"github.com/csrfn/csrfn/core/service"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		payload string
		kind    Kind
		items   int
		err     string // substring of the message when refused
	}{
		{`{"CommonName":"a.example"}`, KindOne, 0, ""},
		{`{"Action":"CreateDcdnCertificateSigningRequest"}`, KindOne, 0, ""},
		{`{"CommonName":null}`, KindOne, 0, ""},
		{`{"Requests":[{"CommonName":"a"},{"CommonName":"b"}]}`, KindBatch, 2, ""},
		{`{"Requests":[1,"x",null]}`, KindBatch, 3, ""},
		{`{"Requests":[]}`, 0, 0, "holds 0 items"},
		{`{"Requests":{}}`, 0, 0, "must be an array"},
		{`{"Requests":[{}],"CommonName":"a"}`, 0, 0, `both Requests and the parameter "CommonName"`},
		{`{"Requests":[` + strings.Repeat(`{},`, MaxBatch) + `{}]}`, 0, 0, "holds 101 items"},
		{`{"detail-type":"x"}`, 0, 0, "not a recognised event"},
		{`{}`, 0, 0, "not a recognised event"},
		{`[]`, 0, 0, "not a JSON object"},
		{`null`, 0, 0, "not a JSON object"},
		{`"CommonName"`, 0, 0, "not a JSON object"},
		{`{`, 0, 0, "not a JSON object"},
	} {
		kind, items, err := Classify([]byte(tc.payload))
		if tc.err != "" {
			if !errors.Is(err, apierr.ErrBody) || !strings.Contains(apierr.As(err).Message, tc.err) {
				t.Errorf("%.40s: err %v, want InvalidParameter.Body with %q", tc.payload, err, tc.err)
			}
			continue
		}
		if err != nil || kind != tc.kind || len(items) != tc.items {
			t.Errorf("%.40s: kind %v items %d err %v; want %v %d", tc.payload, kind, len(items), err, tc.kind, tc.items)
		}
	}
}

func TestMapOrderAndBound(t *testing.T) {
	items := make([]int, 40)
	for i := range items {
		items[i] = i
	}
	var running, peak atomic.Int32
	out := Map(context.Background(), 3, items, func(_ context.Context, i int) int {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		running.Add(-1)
		return i * i
	})
	for i, v := range out {
		if v != i*i {
			t.Fatalf("result %d is %d: out of order", i, v)
		}
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want at most 3 (and some overlap)", p)
	}
}

func TestFunctionErrorText(t *testing.T) {
	fe := &FunctionError{Code: apierr.CodeInternal, Object: map[string]string{"Code": "Internal.Error", "Message": "<&>"}}
	if got := fe.Error(); got != `{"Code":"Internal.Error","Message":"<&>"}` {
		t.Fatalf("FunctionError text %q", got)
	}
}

// A bad Format is refused on non-HTTP paths too, though they answer JSON.
func TestOneRefusesBadFormat(t *testing.T) {
	iv := &Invoker{Service: testService(t)}
	res := iv.One(context.Background(), []byte(`{"CommonName":"a.example","Format":"yaml","KeyAlgorithm":"EC_prime256v1"}`))
	if res.Err == nil || res.Err.Code != apierr.CodeInvalidParameter || !strings.Contains(res.Err.Message, `"Format"`) {
		t.Fatalf("Format=yaml: %+v", res.Err)
	}
	res = iv.One(context.Background(), []byte(`{"CommonName":"a.example","Format":"xml","KeyAlgorithm":"EC_prime256v1"}`))
	if res.Err != nil || res.Response == nil {
		t.Fatalf("Format=xml: %+v", res.Err)
	}
}

func testService(t *testing.T) *service.Service {
	t.Helper()
	store, err := keystore.OpenFile(t.TempDir() + "/store")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := seal.NewLocal(make([]byte, seal.MasterKeySize), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: store, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
