package kmserr

import (
	"context"
	"errors"
	"testing"

	"github.com/csrfn/csrfn/core/service"
)

func TestErrorMessages(t *testing.T) {
	sdk := errors.New("SDKError:\n   StatusCode: 403\n   Code: Forbidden.NoPermission")
	for _, c := range []struct {
		e    *Error
		want string
	}{
		{&Error{Adapter: &Adapter{Name: "awskms"}, Op: "Decrypt", Kind: ErrAccessDenied, Code: "AccessDeniedException", Status: 400, RequestID: "R", Err: sdk},
			"awskms: Decrypt: access denied: SDKError:\n   StatusCode: 403\n   Code: Forbidden.NoPermission"},
		{&Error{Adapter: &Adapter{Name: "alikms", Answer: true}, Op: "Decrypt", Kind: ErrAccessDenied, Code: "Forbidden.NoPermission", Status: 403, RequestID: "R", Err: sdk},
			"alikms: Decrypt: access denied (HTTP 403 Forbidden.NoPermission, RequestId R): SDKError: StatusCode: 403 Code: Forbidden.NoPermission"},
		{&Error{Adapter: &Adapter{Name: "alikms", Answer: true}, Op: "GenerateDataKey", Kind: service.ErrUnavailable},
			"alikms: GenerateDataKey: " + service.ErrUnavailable.Error()},
		{&Error{Op: "Decrypt", Kind: ErrBadResponse}, "kms: Decrypt: unexpected answer from KMS"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
		if !errors.Is(c.e, c.e.Kind) || (c.e.Err != nil && !errors.Is(c.e, c.e.Err)) {
			t.Errorf("%v does not unwrap to its kind and cause", c.e)
		}
	}
}

func TestKindOf(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(live)
	cancel()
	for _, c := range []struct {
		name                  string
		parent                context.Context
		outage                bool
		byCode                error
		rejected, unreachable bool
		want                  error
	}{
		{"cancelled first", cancelled, true, ErrKeyState, true, true, context.Canceled},
		{"outage before the code", live, true, ErrKeyState, true, false, service.ErrUnavailable},
		{"code before a refusal", live, false, ErrKeyState, true, false, ErrKeyState},
		{"refusal", live, false, nil, true, true, ErrRejected},
		{"no answer", live, false, nil, false, true, service.ErrUnavailable},
		{"anything else", live, false, nil, false, false, ErrBadResponse},
	} {
		if got := KindOf(c.parent, c.outage, c.byCode, c.rejected, c.unreachable); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
