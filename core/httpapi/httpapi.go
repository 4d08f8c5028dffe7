// Package httpapi is the HTTP binding of the API (DESIGN.md §2), shared by
// every adapter's HTTP path: method, body limit, parameter sources, response
// encoding and headers. Adapters turn their envelope into a Request and the
// Response back into their envelope.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/csrfn/csrfn/core/apierr"
	"github.com/csrfn/csrfn/core/params"
	"github.com/csrfn/csrfn/core/request"
	"github.com/csrfn/csrfn/core/service"
)

// Request is an HTTP request as any platform delivers it.
type Request struct {
	Method   string
	Host     string
	RawQuery string
	Header   http.Header
	Body     []byte
	Base64   bool // Body is base64 text (API Gateway, ALB, FC)
}

// Response is what to send back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Binding serves the API over HTTP.
type Binding struct {
	Service *service.Service
	// HostID fills the HostId of error bodies; empty: the request's Host.
	HostID string
	// Authorize, when set, is checked first; its error must be an
	// *apierr.Error (see BearerToken).
	Authorize func(http.Header) error
}

// maxBase64 is the longest base64 text that can decode within the limit.
const maxBase64 = (apierr.MaxBodyBytes+2)/3*4 + 4

// Serve answers one request and writes its log line.
func (b *Binding) Serve(ctx context.Context, req Request) Response {
	svc := b.Service
	start := svc.Now()
	id := svc.NewID()
	res, format := b.run(ctx, id, req)
	res.Start = start
	svc.Log(ctx, res)
	return b.render(req, res, format)
}

// run reads the parameters and runs the operation. The format is the
// caller's choice as far as it could be read: from the query string before
// the body is parsed, from both after.
func (b *Binding) run(ctx context.Context, id string, req Request) (service.Result, request.Format) {
	svc := b.Service
	fail := func(err error, f request.Format) (service.Result, request.Format) {
		return svc.Failed(id, err), f
	}
	qp, qerr := params.FromQuery(req.RawQuery, "query string")
	format, _ := request.ParseFormat(qp)
	if b.Authorize != nil {
		if err := b.Authorize(req.Header); err != nil {
			return fail(err, format)
		}
	}
	if req.Method != http.MethodGet && req.Method != http.MethodPost {
		return fail(apierr.Method(req.Method), format)
	}
	if qerr != nil {
		return fail(apierr.Body("%s", qerr.Error()), request.JSON)
	}
	body, err := decodeBody(req)
	if err != nil {
		return fail(err, format)
	}
	bp, err := bodyParams(req.Header.Get("Content-Type"), body)
	if err != nil {
		return fail(err, format)
	}
	all, err := params.Merge(qp, bp)
	if err != nil {
		return fail(apierr.Body("%s", err.Error()), format)
	}
	format, err = request.ParseFormat(all)
	if err != nil {
		return fail(err, request.JSON)
	}
	return svc.Run(ctx, id, all), format
}

func decodeBody(req Request) ([]byte, error) {
	if !req.Base64 {
		if len(req.Body) > apierr.MaxBodyBytes {
			return nil, apierr.TooLarge()
		}
		return req.Body, nil
	}
	text := bytes.TrimSpace(req.Body)
	if len(text) > maxBase64 {
		return nil, apierr.TooLarge()
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(out, text)
	if err != nil {
		return nil, apierr.Body("The body is marked base64-encoded but is not valid base64.")
	}
	if n > apierr.MaxBodyBytes {
		return nil, apierr.TooLarge()
	}
	return out[:n], nil
}

// bodyParams reads parameters from a form or JSON body. Without a
// Content-Type, a body that starts with '{' is JSON and anything else a form.
func bodyParams(contentType string, body []byte) (params.Set, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt := ""
	if contentType != "" {
		var err error
		mt, _, err = mime.ParseMediaType(contentType)
		if err != nil {
			return nil, apierr.Body("The Content-Type %q cannot be parsed.", contentType)
		}
	} else if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		mt = "application/json"
	} else {
		mt = "application/x-www-form-urlencoded"
	}
	var (
		p   params.Set
		err error
	)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		p, err = params.FromJSON(body)
	case mt == "application/x-www-form-urlencoded":
		p, err = params.FromQuery(string(body), "form body")
	default:
		return nil, apierr.Body("The Content-Type %q is not supported; send parameters in the query string, as application/x-www-form-urlencoded or as application/json.", mt)
	}
	if err != nil {
		return nil, apierr.Body("%s", err.Error())
	}
	return p, nil
}

// render encodes a result in format with the binding's headers.
func (b *Binding) render(req Request, res service.Result, format request.Format) Response {
	hostID := b.HostID
	if hostID == "" {
		hostID = req.Host
	}
	if hostID == "" {
		hostID = "csrfn"
	}
	h := http.Header{}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Acs-Request-Id", res.RequestId)
	var body []byte
	if format == request.XML {
		h.Set("Content-Type", "application/xml; charset=utf-8")
		body = encodeXML(res, hostID)
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
		body = EncodeJSON(res.Object(hostID))
	}
	if res.Err != nil {
		switch res.Err.Status {
		case http.StatusMethodNotAllowed:
			h.Set("Allow", "GET, POST")
		case http.StatusUnauthorized:
			h.Set("WWW-Authenticate", `Bearer realm="csrfn"`)
		}
	}
	return Response{Status: res.Status(), Header: h, Body: body}
}

// EncodeJSON encodes an API object without HTML escaping, newline-ended.
func EncodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Our objects are plain strings; this cannot happen.
		panic(err)
	}
	return buf.Bytes()
}

// encodeXML writes the object as Alibaba's XML responses do. Text goes
// through EncodeToken, which keeps the CSR's newlines as newlines (struct
// marshalling would write them as &#xA;).
func encodeXML(res service.Result, hostID string) []byte {
	root := "Error"
	var fields [][2]string
	if res.Err != nil {
		fields = [][2]string{{"RequestId", res.RequestId}, {"HostId", hostID}, {"Code", res.Err.Code}, {"Message", res.Err.Message}}
	} else {
		r := res.Response
		root = res.Action + "Response"
		fields = [][2]string{{"RequestId", r.RequestId}, {"PubMd5", r.PubMd5}, {"Csr", r.Csr}, {"CommonName", r.CommonName}}
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	must(enc.EncodeToken(xml.StartElement{Name: xml.Name{Local: root}}))
	for _, f := range fields {
		must(enc.EncodeToken(xml.StartElement{Name: xml.Name{Local: f[0]}}))
		must(enc.EncodeToken(xml.CharData(f[1])))
		must(enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: f[0]}}))
	}
	must(enc.EncodeToken(xml.EndElement{Name: xml.Name{Local: root}}))
	must(enc.Flush())
	buf.WriteByte('\n')
	return buf.Bytes()
}

// must panics on an encoder error, which only invalid names could cause;
// ours are constants.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// BearerToken returns an Authorize func that requires
// "Authorization: Bearer <token>". Both sides are hashed before the
// constant-time comparison so that the token's length does not leak either.
func BearerToken(token string) func(http.Header) error {
	want := sha256.Sum256([]byte(token))
	return func(h http.Header) error {
		auth := h.Get("Authorization")
		scheme, got, ok := strings.Cut(auth, " ")
		if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
			return apierr.Unauthorized(apierr.CodeMissingToken, `This endpoint requires "Authorization: Bearer <token>" (the server's CSRFN_TOKEN).`)
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return apierr.Unauthorized(apierr.CodeInvalidToken, "The bearer token is not valid.")
		}
		return nil
	}
}

// ServeHTTP serves the binding on net/http (the local adapter).
func (b *Binding) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// One byte over the limit is enough to answer 413.
	body, err := io.ReadAll(io.LimitReader(r.Body, apierr.MaxBodyBytes+1))
	req := Request{Method: r.Method, Host: r.Host, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body}
	var resp Response
	if err != nil {
		svc := b.Service
		res := svc.Failed(svc.NewID(), apierr.Body("The body could not be read."))
		res.Start = svc.Now()
		svc.Log(r.Context(), res)
		resp = b.render(req, res, request.JSON)
	} else {
		resp = b.Serve(r.Context(), req)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}
