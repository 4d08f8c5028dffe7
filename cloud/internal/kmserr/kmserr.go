// Package kmserr is the error model of the KMS data-key adapters
// (cloud/awskms, cloud/alikms): *Error, a failed KMS operation, and the
// kinds of failure it wraps for errors.Is. Each adapter re-exports the
// kinds under its own name (awskms.ErrInvalidCiphertext is
// kmserr.ErrInvalidCiphertext) and classifies its SDK's errors into them
// by its platform's codes.
//
// A KMS that cannot be reached, answers with a server error (5xx) or keeps
// throttling, or does not answer within the operation's time limit, is an
// outage: Kind is service.ErrUnavailable, which the service answers with
// Internal.Error (retryable). A caller giving up is context.Canceled.
// Everything else is one of the kinds below, and not
// service.ErrUnavailable.
package kmserr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/csrfn/csrfn/core/service"
)

// Kinds of failure (Error.Kind), for errors.Is.
var (
	ErrInvalidCiphertext = errors.New("kms: the wrapped data key does not authenticate (tampered, or another encryption context)")
	ErrIncorrectKey      = errors.New("kms: the wrapped data key belongs to another KMS key")
	ErrAccessDenied      = errors.New("kms: access denied")
	ErrKeyState          = errors.New("kms: the KMS key is disabled or pending deletion")
	ErrKeyNotFound       = errors.New("kms: the KMS key does not exist")
	ErrCredentials       = errors.New("kms: no credentials")
	ErrRejected          = errors.New("kms: KMS rejected the request")
	ErrBadResponse       = errors.New("kms: unexpected answer from KMS")
)

// kindPrefix starts the kinds' texts; Error replaces it with the adapter's
// name.
const kindPrefix = "kms: "

// Adapter says how an adapter's errors read.
type Adapter struct {
	// Name starts every message, e.g. "awskms".
	Name string
	// Answer adds the answer's status, code and request id to messages
	// and folds the SDK's error onto one line: for an SDK whose errors do
	// not say them on one line (Alibaba Cloud's tea.SDKError spreads them
	// over lines, and says nothing of an answer that is not JSON, such as
	// a load balancer's 503 page). The AWS SDK's errors say them already.
	Answer bool
}

// Error is a failed KMS operation. It never holds key material.
type Error struct {
	Op        string // "GenerateDataKey" or "Decrypt"
	Kind      error  // a kind above, service.ErrUnavailable or context.Canceled
	Code      string // the KMS error code, e.g. "InvalidCiphertextException", "Forbidden.KeyNotFound"; "" without an answer
	Status    int    // the HTTP status; 0 without an answer
	RequestID string // KMS's request id, when there was an answer
	Err       error  // the SDK's error
	Adapter   *Adapter
}

func (e *Error) Error() string {
	a := e.Adapter
	if a == nil {
		a = &Adapter{Name: "kms"}
	}
	msg := a.Name + ": " + e.Op + ": " + strings.TrimPrefix(e.Kind.Error(), kindPrefix)
	if a.Answer && (e.Code != "" || e.Status != 0) {
		msg += fmt.Sprintf(" (HTTP %d %s, RequestId %s)", e.Status, e.Code, e.RequestID)
	}
	if e.Err != nil {
		if a.Answer {
			msg += ": " + strings.Join(strings.Fields(e.Err.Error()), " ")
		} else {
			msg += ": " + e.Err.Error()
		}
	}
	return msg
}

// Unwrap exposes Kind and the SDK's error to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// KindOf is the kind of a failed operation, decided in this order:
//
//   - the caller's cancellation is context.Canceled (parent is the
//     caller's context: the operation's own deadline is an outage, the
//     caller's cancellation is not);
//   - an answer saying that KMS is failing or overloaded (outage: 5xx,
//     throttling) is service.ErrUnavailable;
//   - then byCode, what the platform reads in the answer (nil: nothing);
//   - any other refusal (rejected) is ErrRejected;
//   - no (complete) answer (unreachable) is service.ErrUnavailable;
//   - anything else is ErrBadResponse.
func KindOf(parent context.Context, outage bool, byCode error, rejected, unreachable bool) error {
	switch {
	case errors.Is(parent.Err(), context.Canceled):
		return context.Canceled
	case outage:
		return service.ErrUnavailable
	case byCode != nil:
		return byCode
	case rejected:
		return ErrRejected
	case unreachable:
		return service.ErrUnavailable
	}
	return ErrBadResponse
}

// Unreachable reports the errors of getting no (complete) answer that
// every SDK shows the same way: connection failures, timeouts, truncated
// responses. Each adapter adds what its SDK shows of its own.
func Unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}
