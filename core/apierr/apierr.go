// Package apierr holds the typed errors of the csrfn API: each carries the
// Alibaba-style error code, the HTTP status it maps to and the message a
// caller sees. Internal causes ride along for the log and never reach a body.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Codes of the CreateDcdnCertificateSigningRequest contract (DESIGN.md §1)
// and of the HTTP binding.
const (
	CodeMissingParameter      = "MissingParameter"
	CodeInvalidParameter      = "InvalidParameter"
	CodeMalformed             = "InvalidValue.Malformed"
	CodeBody                  = "InvalidParameter.Body"
	CodeActionNotFound        = "InvalidAction.NotFound"
	CodeUnsupportedHTTPMethod = "UnsupportedHTTPMethod"
	CodeTooLarge              = "RequestEntityTooLarge"
	CodeMissingToken          = "MissingToken"
	CodeInvalidToken          = "InvalidToken"
	CodeKeyError              = "Internal.KeyError"
	CodeCreateCSRError        = "Internal.CreateCSRError"
	CodeEncodeCSRError        = "Internal.EncodeCSRError"
	CodeEncodeKeyError        = "Internal.EncodeKeyError"
	CodeInternal              = "Internal.Error"
)

// Messages fixed by the contract.
const (
	MsgActionNotFound = "Specified api is not found, please check your url and method."
	MsgCountryLength  = "Country must be 2 characters."
	MsgCountryLetters = "Country must be an ISO 3166-1 alpha-2 code (two ASCII letters)."
	MsgRSAKey         = "Failed to generate rsa key."
	MsgECKey          = "Failed to generate ec key."
	MsgCreateCSR      = "Failed to create CSR."
	MsgEncodeCSR      = "Failed to encode CSR."
	MsgEncodeKey      = "Failed to encode private key."
	MsgInternal       = "The request processing has failed due to backend service exception."
)

// MaxBodyBytes is the body limit of the HTTP binding (DESIGN.md §2).
const MaxBodyBytes = 64 << 10

// Error is an API error. Its Message is safe to show to the caller; Cause is
// for the log only and is never rendered into a response.
type Error struct {
	Status  int
	Code    string
	Message string
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, apierr.ErrKey) works whatever the message or cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Server reports whether the error is the server's fault (5xx): such errors
// are retried by platforms and their cause is logged.
func (e *Error) Server() bool { return e.Status >= 500 }

// Sentinels for errors.Is. Only Code is compared.
var (
	ErrMissingParameter = &Error{Status: http.StatusBadRequest, Code: CodeMissingParameter}
	ErrInvalidParameter = &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter}
	ErrMalformed        = &Error{Status: http.StatusBadRequest, Code: CodeMalformed}
	ErrBody             = &Error{Status: http.StatusBadRequest, Code: CodeBody}
	ErrActionNotFound   = &Error{Status: http.StatusNotFound, Code: CodeActionNotFound}
	ErrMethod           = &Error{Status: http.StatusMethodNotAllowed, Code: CodeUnsupportedHTTPMethod}
	ErrTooLarge         = &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge}
	ErrKey              = &Error{Status: http.StatusInternalServerError, Code: CodeKeyError}
	ErrCreateCSR        = &Error{Status: http.StatusInternalServerError, Code: CodeCreateCSRError}
	ErrEncodeCSR        = &Error{Status: http.StatusInternalServerError, Code: CodeEncodeCSRError}
	ErrEncodeKey        = &Error{Status: http.StatusInternalServerError, Code: CodeEncodeKeyError}
	ErrInternal         = &Error{Status: http.StatusInternalServerError, Code: CodeInternal}
)

// Missing is the MissingParameter error for the named parameter.
func Missing(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeMissingParameter,
		Message: fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", name)}
}

// Invalid is the InvalidParameter error for the named parameter; reason is a
// short sentence appended to the contract's fixed text.
func Invalid(name, reason string) *Error {
	msg := fmt.Sprintf("The specified value of parameter %q is not valid.", name)
	if reason != "" {
		msg += " " + reason
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidParameter, Message: msg}
}

// Malformed is InvalidValue.Malformed with the given message.
func Malformed(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeMalformed, Message: msg}
}

// Body is InvalidParameter.Body: the request's parameters could not be read.
func Body(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBody, Message: fmt.Sprintf(format, args...)}
}

// ActionNotFound is the error for an unknown Action.
func ActionNotFound() *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeActionNotFound, Message: MsgActionNotFound}
}

// Method is the error for an HTTP method other than GET and POST.
func Method(method string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: CodeUnsupportedHTTPMethod,
		Message: fmt.Sprintf("The HTTP method %q is not supported; use GET or POST.", method)}
}

// TooLarge is the error for a body over MaxBodyBytes.
func TooLarge() *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
		Message: fmt.Sprintf("The request body exceeds the limit of %d bytes (64 KiB).", MaxBodyBytes)}
}

// Unauthorized is a 401 with a token code.
func Unauthorized(code, msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Message: msg}
}

// Internal wraps cause in one of the 5xx codes. The cause is kept for the log.
func Internal(code string, cause error) *Error {
	msg := MsgInternal
	switch code {
	case CodeCreateCSRError:
		msg = MsgCreateCSR
	case CodeEncodeCSRError:
		msg = MsgEncodeCSR
	case CodeEncodeKeyError:
		msg = MsgEncodeKey
	case CodeKeyError:
		msg = MsgRSAKey
	}
	return &Error{Status: http.StatusInternalServerError, Code: code, Message: msg, Cause: cause}
}

// KeyGen is Internal.KeyError with the message for the key family.
func KeyGen(ec bool, cause error) *Error {
	e := Internal(CodeKeyError, cause)
	if ec {
		e.Message = MsgECKey
	}
	return e
}

// As returns err as an *Error. Anything that is not already an API error is
// an unexpected failure: it becomes Internal.Error with err as the cause.
func As(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(CodeInternal, err)
}
