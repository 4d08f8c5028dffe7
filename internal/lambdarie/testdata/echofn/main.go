// Command echofn is a tiny AWS Lambda function used by the lambdarie tests.
//
// The request is a JSON object; its "action" field selects the behaviour:
//
//	"echo"  (or empty) returns the request unchanged
//	"error" returns an error whose message is the "message" field
//	"panic" panics with the "message" field
//	"sleep" sleeps for "ms" milliseconds, then echoes
//	"env"   returns the value of the environment variable named by "message"
//
// Every invocation logs one line "echofn: action=<action> seq=<n>" to stderr,
// where n counts the invocations handled by this process (starting at 1).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	Action  string `json:"action"`
	Message string `json:"message"`
	MS      int    `json:"ms"`
}

type response struct {
	Action  string `json:"action"`
	Message string `json:"message"`
	Seq     int64  `json:"seq"`
	PID     int    `json:"pid"`
}

var seq atomic.Int64

func handle(ctx context.Context, req request) (response, error) {
	n := seq.Add(1)
	fmt.Fprintf(os.Stderr, "echofn: action=%s seq=%d\n", req.Action, n)
	resp := response{Action: req.Action, Message: req.Message, Seq: n, PID: os.Getpid()}
	switch req.Action {
	case "", "echo":
		return resp, nil
	case "error":
		return response{}, errors.New(req.Message)
	case "panic":
		panic(req.Message)
	case "sleep":
		select {
		case <-time.After(time.Duration(req.MS) * time.Millisecond):
		case <-ctx.Done():
			return response{}, ctx.Err()
		}
		return resp, nil
	case "env":
		resp.Message = os.Getenv(req.Message)
		return resp, nil
	default:
		return response{}, fmt.Errorf("unknown action %q", req.Action)
	}
}

func main() {
	if os.Getenv("ECHOFN_INIT_FAIL") != "" {
		fmt.Fprintln(os.Stderr, "echofn: init failing on purpose")
		os.Exit(3)
	}
	if d, err := time.ParseDuration(os.Getenv("ECHOFN_INIT_SLEEP")); err == nil {
		time.Sleep(d)
	}
	lambda.Start(handle)
}
