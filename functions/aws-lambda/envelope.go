package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/invoke"
	"github.com/csrfn/csrfn/core/service"
)

// adapter turns Lambda events into core requests and back.
type adapter struct{ *config.Functions }

// envelope is the kind of event a payload is.
type envelope int

const (
	envDirect envelope = iota // parameters, a batch, or unrecognised
	envRESTv1                 // API Gateway REST API, payload 1.0
	envHTTPv2                 // HTTP API or Function URL, payload 2.0
	envALB                    // Application Load Balancer target
	envSQS
	envEventBridge
)

// probe holds just enough of any event to tell which one it is.
type probe struct {
	Version        string  `json:"version"`
	HTTPMethod     *string `json:"httpMethod"`
	RequestContext *struct {
		ELB  json.RawMessage `json:"elb"`
		HTTP *struct {
			Method string `json:"method"`
		} `json:"http"`
	} `json:"requestContext"`
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	DetailType *string         `json:"detail-type"`
	Source     *string         `json:"source"`
	Detail     json.RawMessage `json:"detail"`
}

// detect names the envelope from the payload itself.
func detect(payload []byte) envelope {
	var p probe
	if json.Unmarshal(payload, &p) != nil {
		return envDirect
	}
	rc := p.RequestContext
	switch {
	case rc != nil && len(rc.ELB) > 0 && p.HTTPMethod != nil:
		return envALB
	case rc != nil && rc.HTTP != nil && p.Version == "2.0":
		return envHTTPv2
	case rc != nil && p.HTTPMethod != nil:
		return envRESTv1
	case len(p.Records) > 0 && allSQS(p.Records):
		return envSQS
	case p.DetailType != nil && p.Source != nil && p.Detail != nil:
		return envEventBridge
	}
	return envDirect
}

func allSQS(rs []struct {
	EventSource string `json:"eventSource"`
}) bool {
	for _, r := range rs {
		if r.EventSource != "aws:sqs" {
			return false
		}
	}
	return true
}

// Handle is the Lambda handler.
func (a *adapter) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		ctx = service.WithPlatformRequestID(ctx, lc.AwsRequestID)
	}
	switch detect(payload) {
	case envRESTv1:
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.restV1(ctx, &ev), nil
	case envHTTPv2:
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.httpV2(ctx, &ev), nil
	case envALB:
		var ev events.ALBTargetGroupRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.alb(ctx, &ev), nil
	case envSQS:
		var ev events.SQSEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.sqs(ctx, &ev), nil
	case envEventBridge:
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return a.direct(ctx, payload)
		}
		return a.direct(ctx, ev.Detail)
	}
	return a.direct(ctx, payload)
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

func (a *adapter) restV1(ctx context.Context, ev *events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	q := url.Values(ev.MultiValueQueryStringParameters)
	if len(q) == 0 {
		q = url.Values{}
		for k, v := range ev.QueryStringParameters {
			q.Set(k, v)
		}
	}
	// API Gateway REST hands over decoded query values: encode them again.
	resp := a.HTTP.Serve(ctx, httpapi.Request{
		Method:   ev.HTTPMethod,
		RawQuery: q.Encode(),
		Header:   headers(ev.Headers, ev.MultiValueHeaders),
		Host:     firstHeader(ev.Headers, ev.MultiValueHeaders, "Host"),
		Body:     []byte(ev.Body),
		Base64:   ev.IsBase64Encoded,
	})
	return events.APIGatewayProxyResponse{StatusCode: resp.Status, Headers: flat(resp.Header), Body: string(resp.Body)}
}

func (a *adapter) httpV2(ctx context.Context, ev *events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	resp := a.HTTP.Serve(ctx, httpapi.Request{
		Method:   ev.RequestContext.HTTP.Method,
		RawQuery: ev.RawQueryString,
		Header:   headers(ev.Headers, nil),
		Host:     firstHeader(ev.Headers, nil, "Host"),
		Body:     []byte(ev.Body),
		Base64:   ev.IsBase64Encoded,
	})
	return events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: flat(resp.Header), Body: string(resp.Body)}
}

func (a *adapter) alb(ctx context.Context, ev *events.ALBTargetGroupRequest) events.ALBTargetGroupResponse {
	// ALB passes query parameters as received, still percent-encoded.
	var pairs []string
	if len(ev.MultiValueQueryStringParameters) > 0 {
		for k, vs := range ev.MultiValueQueryStringParameters {
			for _, v := range vs {
				pairs = append(pairs, k+"="+v)
			}
		}
	} else {
		for k, v := range ev.QueryStringParameters {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Strings(pairs)
	resp := a.HTTP.Serve(ctx, httpapi.Request{
		Method:   ev.HTTPMethod,
		RawQuery: strings.Join(pairs, "&"),
		Header:   headers(ev.Headers, ev.MultiValueHeaders),
		Host:     firstHeader(ev.Headers, ev.MultiValueHeaders, "Host"),
		Body:     []byte(ev.Body),
		Base64:   ev.IsBase64Encoded,
	})
	out := events.ALBTargetGroupResponse{
		StatusCode:        resp.Status,
		StatusDescription: statusDescription(resp.Status),
		Body:              string(resp.Body),
	}
	// The target group answers in the mode it asked in.
	if len(ev.MultiValueHeaders) > 0 {
		out.MultiValueHeaders = map[string][]string(resp.Header)
	} else {
		out.Headers = flat(resp.Header)
	}
	return out
}

// sqs runs each record as one request. Any failure, 4xx or 5xx, is reported
// in batchItemFailures so that, after the queue's receive limit, the message
// lands in the dead-letter queue instead of vanishing.
func (a *adapter) sqs(ctx context.Context, ev *events.SQSEvent) events.SQSEventResponse {
	seen := map[string]bool{}
	var recs []events.SQSMessage
	for _, r := range ev.Records {
		if !seen[r.MessageId] { // a message id is processed once per batch
			seen[r.MessageId] = true
			recs = append(recs, r)
		}
	}
	failed := invoke.Map(ctx, a.Invoke.Workers(), recs, func(ctx context.Context, r events.SQSMessage) bool {
		return a.Invoke.One(ctx, []byte(r.Body)).Err != nil
	})
	out := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, f := range failed {
		if f {
			out.BatchItemFailures = append(out.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: recs[i].MessageId})
		}
	}
	return out
}

func headers(single map[string]string, multi map[string][]string) http.Header {
	h := http.Header{}
	if len(multi) > 0 {
		for k, vs := range multi {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		return h
	}
	for k, v := range single {
		h.Add(k, v)
	}
	return h
}

func firstHeader(single map[string]string, multi map[string][]string, name string) string {
	return headers(single, multi).Get(name)
}

func flat(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

func statusDescription(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
