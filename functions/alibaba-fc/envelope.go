package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/aliyun/fc-runtime-go-sdk/events"
	"github.com/aliyun/fc-runtime-go-sdk/fc/messages"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"

	"github.com/csrfn/csrfn/cloud/alikms"
	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/invoke"
	"github.com/csrfn/csrfn/core/service"
)

// adapter turns Function Compute events into core requests and back.
type adapter struct{ *config.Functions }

type envelope int

const (
	envDirect     envelope = iota // parameters, a batch, or unrecognised
	envHTTP                       // FC 3.0 HTTP trigger
	envTimer                      // timer trigger: payload is a string
	envCloudEvent                 // EventBridge: CloudEvents 1.0, data
)

type probe struct {
	RawPath        *string `json:"rawPath"`
	RequestContext *struct {
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	TriggerName *string         `json:"triggerName"`
	TriggerTime *string         `json:"triggerTime"`
	Payload     *string         `json:"payload"`
	SpecVersion *string         `json:"specversion"`
	Data        json.RawMessage `json:"data"`
}

func detect(payload []byte) (envelope, *probe) {
	var p probe
	if json.Unmarshal(payload, &p) != nil {
		return envDirect, nil
	}
	switch {
	case p.RequestContext != nil && p.RequestContext.HTTP != nil && p.RawPath != nil:
		return envHTTP, &p
	case p.TriggerName != nil && p.TriggerTime != nil && p.Payload != nil:
		return envTimer, &p
	case p.SpecVersion != nil && p.Data != nil:
		return envCloudEvent, &p
	}
	return envDirect, &p
}

// testHook is nil in every build but the end-to-end tests' (build tag
// csrfn_testhooks), which use it to make the handler panic on demand.
var testHook func(payload []byte)

// Handle is the FC handler.
func (a *adapter) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	if testHook != nil {
		testHook(payload)
	}
	if fcc, ok := fccontext.FromContext(ctx); ok {
		ctx = service.WithPlatformRequestID(ctx, fcc.RequestID)
		// The role's credentials, fresh with each invocation, for OSS and KMS.
		if c := fcc.Credentials; c.AccessKeyId != "" {
			ctx = alikms.WithCredentials(ctx, alikms.Credentials{AccessKeyID: c.AccessKeyId, AccessKeySecret: c.AccessKeySecret, SecurityToken: c.SecurityToken})
		}
	}
	kind, p := detect(payload)
	switch kind {
	case envHTTP:
		var ev events.HTTPTriggerEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.httpTrigger(ctx, &ev), nil
	case envTimer:
		return a.direct(ctx, []byte(*p.Payload))
	case envCloudEvent:
		return a.direct(ctx, cloudEventData(p.Data))
	}
	return a.direct(ctx, payload)
}

// cloudEventData returns the request in a CloudEvent's data, which
// EventBridge delivers as a JSON object or as a string holding JSON.
func cloudEventData(data json.RawMessage) []byte {
	var s string
	if json.Unmarshal(data, &s) == nil {
		return []byte(s)
	}
	return data
}

// direct applies the outcome rules: a 5xx becomes a function error whose
// type is the API code and whose message is the API object's JSON.
func (a *adapter) direct(ctx context.Context, payload []byte) (any, error) {
	out, err := a.Invoke.Handle(ctx, payload)
	var fe *invoke.FunctionError
	if errors.As(err, &fe) {
		return nil, messages.InvokeResponse_Error{Type: fe.Code, Message: fe.Error()}
	}
	return out, err
}

func (a *adapter) httpTrigger(ctx context.Context, ev *events.HTTPTriggerEvent) events.HTTPTriggerResponse {
	h := http.Header{}
	if ev.Headers != nil {
		for k, v := range *ev.Headers {
			h.Add(k, v)
		}
	}
	// FC hands over decoded query values, one per name: encode them again.
	q := url.Values{}
	if ev.QueryParameters != nil {
		for k, v := range *ev.QueryParameters {
			q.Set(k, v)
		}
	}
	req := httpapi.Request{RawQuery: q.Encode(), Header: h, Host: h.Get("Host")}
	if m := ev.TriggerContext.Http.Method; m != nil {
		req.Method = *m
	}
	if req.Host == "" && ev.TriggerContext.DomainName != nil {
		req.Host = *ev.TriggerContext.DomainName
	}
	if ev.Body != nil {
		req.Body = []byte(*ev.Body)
	}
	if ev.IsBase64Encoded != nil {
		req.Base64 = *ev.IsBase64Encoded
	}
	resp := a.HTTP.Serve(ctx, req)
	out := events.HTTPTriggerResponse{StatusCode: resp.Status, Headers: map[string]string{}, Body: string(resp.Body)}
	for k, vs := range resp.Header {
		out.Headers[k] = strings.Join(vs, ", ")
	}
	return out
}
