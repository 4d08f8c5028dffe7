package config

import (
	"context"
	"io"
	"log/slog"

	"github.com/csrfn/csrfn/core/httpapi"
	"github.com/csrfn/csrfn/core/invoke"
)

// Functions is what a cloud adapter serves with: the HTTP binding for its
// HTTP envelopes and the invoker for everything else, over one service.
type Functions struct {
	HTTP   *httpapi.Binding
	Invoke *invoke.Invoker
}

// BuildFunctions reads the configuration (CSRFN_STORE is required: a
// function has no embedded default), wires the service for platform p and
// logs one JSON line per request to logw.
func BuildFunctions(ctx context.Context, lookup func(string) (string, bool), p Platform, logw io.Writer) (*Functions, error) {
	cfg, err := FromEnv(lookup, "")
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: cfg.LogLevel}))
	built, err := Build(ctx, cfg, p, log)
	if err != nil {
		return nil, err
	}
	return &Functions{
		HTTP:   &httpapi.Binding{Service: built.Service, HostID: cfg.HostID},
		Invoke: &invoke.Invoker{Service: built.Service, HostID: cfg.HostID},
	}, nil
}
