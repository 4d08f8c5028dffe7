package apierr_test

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/csrfn/csrfn/core/apierr"
)

func TestConstructors(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk on fire")
	tests := []struct {
		name   string
		err    *apierr.Error
		status int
		code   string
		msg    string
		is     *apierr.Error
	}{
		{"missing", apierr.Missing("CommonName"), 400, "MissingParameter",
			`The input parameter "CommonName" that is mandatory for processing this request is not supplied.`, apierr.ErrMissingParameter},
		{"invalid", apierr.Invalid("SANs", "Too many."), 400, "InvalidParameter",
			`The specified value of parameter "SANs" is not valid. Too many.`, apierr.ErrInvalidParameter},
		{"invalid no reason", apierr.Invalid("Email", ""), 400, "InvalidParameter",
			`The specified value of parameter "Email" is not valid.`, apierr.ErrInvalidParameter},
		{"malformed", apierr.Malformed(apierr.MsgCountryLength), 400, "InvalidValue.Malformed", "Country must be 2 characters.", apierr.ErrMalformed},
		{"body", apierr.Body("The body is %s.", "bad"), 400, "InvalidParameter.Body", "The body is bad.", apierr.ErrBody},
		{"action", apierr.ActionNotFound(), 404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.", apierr.ErrActionNotFound},
		{"method", apierr.Method("PUT"), 405, "UnsupportedHTTPMethod", `The HTTP method "PUT" is not supported; use GET or POST.`, apierr.ErrMethod},
		{"too large", apierr.TooLarge(), 413, "RequestEntityTooLarge", "The request body exceeds the limit of 65536 bytes (64 KiB).", apierr.ErrTooLarge},
		{"rsa key", apierr.KeyGen(false, cause), 500, "Internal.KeyError", "Failed to generate rsa key.", apierr.ErrKey},
		{"ec key", apierr.KeyGen(true, cause), 500, "Internal.KeyError", "Failed to generate ec key.", apierr.ErrKey},
		{"create csr", apierr.Internal(apierr.CodeCreateCSRError, cause), 500, "Internal.CreateCSRError", "Failed to create CSR.", apierr.ErrCreateCSR},
		{"encode csr", apierr.Internal(apierr.CodeEncodeCSRError, cause), 500, "Internal.EncodeCSRError", "Failed to encode CSR.", apierr.ErrEncodeCSR},
		{"encode key", apierr.Internal(apierr.CodeEncodeKeyError, cause), 500, "Internal.EncodeKeyError", "Failed to encode private key.", apierr.ErrEncodeKey},
		{"internal", apierr.Internal(apierr.CodeInternal, cause), 500, "Internal.Error", "The request processing has failed due to backend service exception.", apierr.ErrInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.err
			if e.Status != tc.status || e.Code != tc.code || e.Message != tc.msg {
				t.Errorf("got %d %s %q, want %d %s %q", e.Status, e.Code, e.Message, tc.status, tc.code, tc.msg)
			}
			if !errors.Is(e, tc.is) {
				t.Errorf("errors.Is(%s, sentinel %s) = false", e.Code, tc.is.Code)
			}
			if tc.is.Status != tc.status {
				t.Errorf("sentinel status %d, want %d", tc.is.Status, tc.status)
			}
			if e.Server() != (tc.status >= 500) {
				t.Errorf("Server() = %v for %d", e.Server(), tc.status)
			}
			if tc.status >= 500 && !errors.Is(e, cause) {
				t.Error("the cause is not reachable with errors.Is")
			}
			if tc.status >= 500 && strings.Contains(e.Message, cause.Error()) {
				t.Error("the message carries the cause")
			}
		})
	}
}

func TestIsComparesCode(t *testing.T) {
	t.Parallel()
	if errors.Is(apierr.Missing("X"), apierr.ErrInvalidParameter) {
		t.Error("MissingParameter matched InvalidParameter")
	}
	if errors.Is(apierr.Internal(apierr.CodeInternal, nil), apierr.ErrKey) {
		t.Error("Internal.Error matched Internal.KeyError")
	}
	wrapped := fmt.Errorf("context: %w", apierr.Malformed("x"))
	if !errors.Is(wrapped, apierr.ErrMalformed) {
		t.Error("a wrapped error lost its code")
	}
}

func TestAs(t *testing.T) {
	t.Parallel()
	if apierr.As(nil) != nil {
		t.Error("As(nil) != nil")
	}
	orig := apierr.Invalid("SANs", "")
	if got := apierr.As(fmt.Errorf("wrapped: %w", orig)); got != orig {
		t.Errorf("As did not unwrap to the original: %v", got)
	}
	plain := fmt.Errorf("open store: %w", fs.ErrPermission)
	got := apierr.As(plain)
	if got.Code != apierr.CodeInternal || got.Status != 500 || got.Message != apierr.MsgInternal {
		t.Errorf("As(plain) = %d %s %q", got.Status, got.Code, got.Message)
	}
	if !errors.Is(got, fs.ErrPermission) {
		t.Error("As(plain) lost the cause")
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	e := apierr.Internal(apierr.CodeInternal, errors.New("boom"))
	if s := e.Error(); !strings.Contains(s, "Internal.Error") || !strings.Contains(s, "boom") {
		t.Errorf("Error() = %q, want code and cause for the log", s)
	}
	if s := apierr.Missing("X").Error(); !strings.HasPrefix(s, "MissingParameter: ") {
		t.Errorf("Error() = %q", s)
	}
	if apierr.MaxBodyBytes != 64*1024 {
		t.Errorf("MaxBodyBytes = %d", apierr.MaxBodyBytes)
	}
}
