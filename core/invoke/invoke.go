// Package invoke runs the API for non-HTTP invocations (direct and
// scheduled invokes, queue records, event-bus events): the payload is one
// parameter object or a batch {"Requests":[…]}. It applies the outcome rules
// of DESIGN.md §4: a 4xx is a normal result, a 5xx is a function error so
// that the platform retries or dead-letters the event.
package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/service"
)

// MaxBatch is the largest batch.
const MaxBatch = 100

// Invoker runs non-HTTP invocations.
type Invoker struct {
	Service     *service.Service
	HostID      string // HostId of error objects; empty: "csrfn"
	Concurrency int    // items of a batch run at once; 0: GOMAXPROCS
}

// Batch is the answer to {"Requests":[…]}.
type Batch struct {
	RequestId string
	Results   []any // *service.Response or *service.ErrorBody, in request order
}

// FunctionError is returned for a 5xx outcome. Its text is the JSON of the
// API object (never an internal cause), so the platform's error record shows
// exactly what an HTTP caller would have seen.
type FunctionError struct {
	Code   string // the API code of the failure (the first 5xx of a batch)
	Object any    // *service.ErrorBody or *Batch
}

func (e *FunctionError) Error() string { return string(bytes.TrimSpace(httpapi.EncodeJSON(e.Object))) }

func (iv *Invoker) hostID() string {
	if iv.HostID != "" {
		return iv.HostID
	}
	return "csrfn"
}

// Handle runs a payload that holds one request or a batch. It returns the
// API object, and a *FunctionError when the outcome is a 5xx.
func (iv *Invoker) Handle(ctx context.Context, payload []byte) (any, error) {
	kind, items, err := Classify(payload)
	if err != nil {
		res := iv.Service.Failed(iv.Service.NewID(), err)
		res.Start = iv.Service.Now()
		iv.Service.Log(ctx, res)
		return res.Object(iv.hostID()), nil
	}
	if kind == KindBatch {
		return iv.batch(ctx, items)
	}
	res := iv.One(ctx, payload)
	obj := res.Object(iv.hostID())
	if res.Err != nil && res.Err.Server() {
		return obj, &FunctionError{Code: res.Err.Code, Object: obj}
	}
	return obj, nil
}

// One runs one parameter object and writes its log line.
func (iv *Invoker) One(ctx context.Context, payload []byte) service.Result {
	svc := iv.Service
	start := svc.Now()
	id := svc.NewID()
	var res service.Result
	if len(payload) > apierr.MaxBodyBytes {
		res = svc.Failed(id, apierr.TooLarge())
	} else if p, err := params.FromJSON(payload); err != nil {
		res = svc.Failed(id, apierr.Body("%s", err.Error()))
	} else {
		res = svc.Run(ctx, id, p)
	}
	res.Start = start
	svc.Log(ctx, res)
	return res
}

func (iv *Invoker) batch(ctx context.Context, items []json.RawMessage) (any, error) {
	b := &Batch{RequestId: iv.Service.NewID(), Results: make([]any, len(items))}
	results := Map(ctx, iv.Workers(), items, func(ctx context.Context, item json.RawMessage) service.Result {
		return iv.One(ctx, item)
	})
	var fe *FunctionError
	for i, res := range results {
		b.Results[i] = res.Object(iv.hostID())
		if fe == nil && res.Err != nil && res.Err.Server() {
			fe = &FunctionError{Code: res.Err.Code, Object: b}
		}
	}
	if fe != nil {
		return b, fe
	}
	return b, nil
}

// Workers is how many items run at once.
func (iv *Invoker) Workers() int {
	if iv.Concurrency > 0 {
		return iv.Concurrency
	}
	return runtime.GOMAXPROCS(0)
}

// Map runs f over items with at most workers at a time and returns the
// results in item order. Key generation is CPU-bound, so more workers than
// CPUs only adds memory.
func Map[T, R any](ctx context.Context, workers int, items []T, f func(context.Context, T) R) []R {
	out := make([]R, len(items))
	if workers < 1 {
		workers = 1
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = f(ctx, items[i])
		}()
	}
	wg.Wait()
	return out
}

// Kind is what a non-HTTP payload holds.
type Kind int

const (
	KindOne   Kind = iota // a parameter object
	KindBatch             // {"Requests":[…]}
)

// knownParams are the names that make an object a parameter object.
var knownParams = []string{"Action", "CommonName", "SANs", "Organization", "OrganizationUnit",
	"Country", "State", "City", "Email", "KeyAlgorithm", "Format", "Version", "RegionId"}

// Classify tells a parameter object from a batch and refuses anything else
// with InvalidParameter.Body. For a batch it returns the items.
func Classify(payload []byte) (Kind, []json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		return 0, nil, apierr.Body("The payload is not a JSON object. %s", Shapes)
	}
	if reqs, ok := obj["Requests"]; ok {
		for _, k := range knownParams {
			if _, ok := obj[k]; ok {
				return 0, nil, apierr.Body("The payload holds both Requests and the parameter %q; send one request or a batch.", k)
			}
		}
		var items []json.RawMessage
		if err := json.Unmarshal(reqs, &items); err != nil {
			return 0, nil, apierr.Body("Requests must be an array of parameter objects.")
		}
		if len(items) == 0 || len(items) > MaxBatch {
			return 0, nil, apierr.Body("Requests holds %d items; a batch holds 1 to %d.", len(items), MaxBatch)
		}
		return KindBatch, items, nil
	}
	for _, k := range knownParams {
		if _, ok := obj[k]; ok {
			return KindOne, nil, nil
		}
	}
	return 0, nil, apierr.Body("The payload is not a recognised event. %s", Shapes)
}

// Shapes lists the payloads a non-HTTP invocation accepts.
var Shapes = fmt.Sprintf("Send the parameters as an object such as {\"CommonName\":\"example.com\"}, or a batch {\"Requests\":[{…},…]} of at most %d.", MaxBatch)
