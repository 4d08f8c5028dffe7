package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
)

// Result is the outcome of one request, whatever path it came by.
type Result struct {
	RequestId string
	Action    string           // the operation's name, for the XML root
	Request   *request.Request // nil when the parameters were refused
	Response  *Response        // nil on error
	Err       *apierr.Error    // nil on success
	Start     time.Time        // when the request arrived, for the log
}

// Status is the HTTP status of the outcome.
func (r *Result) Status() int {
	if r.Err != nil {
		return r.Err.Status
	}
	return 200
}

// Failed returns a Result for a request refused before its parameters were
// read (wrong method, oversize or unreadable body).
func (s *Service) Failed(id string, err error) Result {
	return Result{RequestId: id, Action: request.ActionDcdn, Err: apierr.As(err)}
}

// Run parses p and runs the operation it names. The caller sets Start.
func (s *Service) Run(ctx context.Context, id string, p params.Set) Result {
	res := Result{RequestId: id, Action: request.ActionDcdn}
	action, err := request.ParseAction(p)
	if err != nil {
		res.Err = apierr.As(err)
		return res
	}
	res.Action = action
	// Format picks the HTTP encoding; other paths answer JSON objects, but a
	// bad value is refused on every path alike.
	if _, err := request.ParseFormat(p); err != nil {
		res.Err = apierr.As(err)
		return res
	}
	r, err := request.Parse(p, s.cfg.Defaults)
	if err != nil {
		res.Err = apierr.As(err)
		return res
	}
	res.Request = &r
	resp, err := s.Create(ctx, id, r)
	if err != nil {
		res.Err = apierr.As(err)
		return res
	}
	res.Response = resp
	return res
}

type platformIDKey struct{}

// WithPlatformRequestID attaches the platform's own request id (Lambda's
// AwsRequestID, FC's x-fc-request-id) for the log line.
func WithPlatformRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, platformIDKey{}, id)
}

// PlatformRequestID returns the id set by WithPlatformRequestID.
func PlatformRequestID(ctx context.Context) string {
	id, _ := ctx.Value(platformIDKey{}).(string)
	return id
}

// Log writes the one line of a request. For a 5xx it adds the internal
// cause, which error bodies never carry. Nothing here is secret: causes are
// built by our code and the backends', none of which include key material.
func (s *Service) Log(ctx context.Context, res Result) {
	attrs := []slog.Attr{
		slog.String("RequestId", res.RequestId),
		slog.String("PlatformRequestId", PlatformRequestID(ctx)),
		slog.String("Action", res.Action),
	}
	if res.Request != nil {
		attrs = append(attrs, slog.String("CommonName", res.Request.CommonName),
			slog.String("KeyAlgorithm", string(res.Request.KeyAlgorithm)))
	}
	if res.Response != nil {
		attrs = append(attrs, slog.String("PubMd5", res.Response.PubMd5))
	}
	attrs = append(attrs, slog.Int("Status", res.Status()))
	level := slog.LevelInfo
	if res.Err != nil {
		attrs = append(attrs, slog.String("Code", res.Err.Code))
		if res.Err.Server() {
			level = slog.LevelError
			if res.Err.Cause != nil {
				attrs = append(attrs, slog.String("Cause", res.Err.Cause.Error()))
			}
		}
	}
	attrs = append(attrs, slog.Float64("DurationMs", float64(s.cfg.Now().Sub(res.Start).Microseconds())/1000))
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// ErrorBody is the error object of the API.
type ErrorBody struct {
	RequestId string
	HostId    string
	Code      string
	Message   string
}

// Object is the API object of the outcome: the Response on success, the
// ErrorBody otherwise. Non-HTTP invocations return it as is.
func (r *Result) Object(hostID string) any {
	if r.Err != nil {
		return &ErrorBody{RequestId: r.RequestId, HostId: hostID, Code: r.Err.Code, Message: r.Err.Message}
	}
	return r.Response
}
