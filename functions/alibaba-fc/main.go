// Command main is csrfn on Alibaba Cloud Function Compute 3.0 (runtime go1,
// handler main). It serves HTTP triggers, timer triggers, EventBridge
// (CloudEvents) and direct invokes, telling them apart from the payload.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aliyun/fc-runtime-go-sdk/fc"

	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/invoke"
)

func main() {
	a, err := newAdapter(context.Background(), os.LookupEnv)
	if err != nil {
		// FC reports the exit as a start failure; the line names the variable.
		fmt.Fprintln(os.Stderr, "csrfn: init:", err)
		os.Exit(1)
	}
	fc.Start(a.Handle)
}

// logOutput receives the request log lines; tests point it at a buffer.
var logOutput io.Writer = os.Stdout

func newAdapter(ctx context.Context, lookup func(string) (string, bool)) (*adapter, error) {
	cfg, err := config.FromEnv(lookup, "")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(logOutput, &slog.HandlerOptions{Level: cfg.LogLevel}))
	built, err := config.Build(ctx, cfg, platform(), log)
	if err != nil {
		return nil, err
	}
	return &adapter{
		http: &httpapi.Binding{Service: built.Service, HostID: cfg.HostID},
		inv:  &invoke.Invoker{Service: built.Service, HostID: cfg.HostID},
	}, nil
}

// platform is what Function Compute adds to the neutral wiring.
func platform() config.Platform { return config.Platform{} }
