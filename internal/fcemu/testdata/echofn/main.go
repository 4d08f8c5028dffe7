// Command echofn is a tiny Function Compute function built on the real
// fc-runtime-go-sdk, used by the fcemu tests.
//
// Its handler takes the raw payload and, when it is a JSON object, obeys:
//
//	{"fail": true}     return an error ("requested failure")
//	{"panic": true}    panic ("requested panic")
//	{"sleepMs": N}     sleep N ms (ignoring the context) first
//	{"exitCode": N}    os.Exit(N) in the middle of the invocation
//	{"env": "NAME"}    report os.Getenv(NAME)
//
// and otherwise returns the payload together with what the SDK's fccontext
// says about the invocation. With ECHOFN_IDLE=1 in its environment it never
// starts the SDK and just waits, so tests can speak the runtime API themselves.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/aliyun/fc-runtime-go-sdk/fc"
	"github.com/aliyun/fc-runtime-go-sdk/fccontext"
)

type request struct {
	Fail     bool   `json:"fail"`
	Panic    bool   `json:"panic"`
	SleepMs  int    `json:"sleepMs"`
	ExitCode *int   `json:"exitCode"`
	Env      string `json:"env"`
}

type reply struct {
	Echo        json.RawMessage `json:"echo,omitempty"`
	EchoRaw     []byte          `json:"echoRaw,omitempty"`
	RequestID   string          `json:"requestId"`
	Function    string          `json:"function"`
	Handler     string          `json:"handler"`
	Memory      string          `json:"memory"`
	Timeout     int             `json:"timeout"`
	Region      string          `json:"region"`
	AccountID   string          `json:"accountId"`
	RetryCount  int             `json:"retryCount"`
	AccessKeyID string          `json:"accessKeyId"`
	SecretSet   bool            `json:"secretSet"`
	Token       string          `json:"securityToken"`
	DeadlineMs  int64           `json:"deadlineMs"`
	EnvValue    *string         `json:"envValue,omitempty"`
	Initialized bool            `json:"initialized"`
}

var initialized atomic.Bool

func handle(ctx context.Context, payload []byte) (reply, error) {
	var req request
	isJSON := json.Valid(payload)
	if isJSON {
		_ = json.Unmarshal(payload, &req) // non-objects simply carry no commands
	}
	if req.SleepMs > 0 {
		time.Sleep(time.Duration(req.SleepMs) * time.Millisecond)
	}
	if req.ExitCode != nil {
		os.Exit(*req.ExitCode)
	}
	if req.Panic {
		panic("requested panic")
	}
	if req.Fail {
		return reply{}, errors.New("requested failure")
	}
	var r reply
	if isJSON {
		r.Echo = json.RawMessage(payload)
	} else {
		r.EchoRaw = payload
	}
	if fctx, ok := fccontext.FromContext(ctx); ok {
		r.RequestID = fctx.RequestID
		r.Function = fctx.Function.Name
		r.Handler = fctx.Function.Handler
		r.Memory = fctx.Function.Memory
		r.Timeout = fctx.Function.Timeout
		r.Region = fctx.Region
		r.AccountID = fctx.AccountId
		r.RetryCount = fctx.RetryCount
		r.AccessKeyID = fctx.Credentials.AccessKeyId
		r.SecretSet = fctx.Credentials.AccessKeySecret != ""
		r.Token = fctx.Credentials.SecurityToken
	}
	if d, ok := ctx.Deadline(); ok {
		r.DeadlineMs = d.UnixMilli()
	}
	if req.Env != "" {
		v := os.Getenv(req.Env)
		r.EnvValue = &v
	}
	r.Initialized = initialized.Load()
	return r, nil
}

func main() {
	if os.Getenv("ECHOFN_IDLE") == "1" {
		for {
			time.Sleep(time.Hour)
		}
	}
	fc.RegisterInitializerFunction(func(ctx context.Context) { initialized.Store(true) })
	fc.Start(handle)
}
