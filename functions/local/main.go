// Command local serves the csrfn API over HTTP on this machine: the
// embedded default that `make run` starts. With no configuration it listens
// on 127.0.0.1:9000 and keeps keys in ./.csrfn/store, sealed under
// ./.csrfn/master.key.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/csrfn/csrfn/core/config"
	"github.com/csrfn/csrfn/core/httpapi"
)

// Server timeouts. Writes allow for RSA_4096 key generation, which can take
// seconds on a small machine.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 90 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownTimeout   = 30 * time.Second
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "csrfn:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.FromEnv(os.LookupEnv, config.DefaultStore)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	loopback, err := isLoopback(cfg.Listen)
	if err != nil {
		return &config.Error{Var: config.EnvListen, Reason: err.Error()}
	}
	if !loopback && cfg.Token == "" {
		return &config.Error{Var: config.EnvToken, Reason: fmt.Sprintf("not set, and %s=%s is not a loopback address: "+
			"anyone who can reach it could create keys. Set %s to a long random secret (e.g. `openssl rand -hex 32`) "+
			"and send it as \"Authorization: Bearer <token>\", or listen on 127.0.0.1", config.EnvListen, cfg.Listen, config.EnvToken)}
	}

	built, err := config.Build(context.Background(), cfg, config.Platform{CreateDefaultKey: true}, log)
	if err != nil {
		return err
	}
	defer built.Store.Close()
	binding := &httpapi.Binding{Service: built.Service, HostID: cfg.HostID}
	if cfg.Token != "" {
		binding.Authorize = httpapi.BearerToken(cfg.Token.Reveal())
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &config.Error{Var: config.EnvListen, Reason: err.Error()}
	}
	srv := &http.Server{
		Handler:           binding,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	base := "http://" + ln.Addr().String()
	keyNote := built.SealerNote
	if built.CreatedFile {
		keyNote += " (created)"
	}
	storeDir := cfg.Store.String()
	if fs, ok := built.Store.(interface{ Dir() string }); ok {
		if abs, err := filepath.Abs(fs.Dir()); err == nil {
			storeDir = abs
		}
	}
	auth := ""
	if cfg.Token != "" {
		auth = ` -H "Authorization: Bearer $CSRFN_TOKEN"`
	}
	fmt.Printf("csrfn listening on %s\n  store:   %s (%s)\n  sealing: %s\n\nTry:\n  curl -s -X POST%s '%s/?Action=CreateDcdnCertificateSigningRequest&CommonName=example.com&SANs=www.example.com,203.0.113.7'\n\n",
		base, cfg.Store, storeDir, keyNote, auth, base)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// isLoopback reports whether a listen address binds only the loopback
// interface. An empty host binds every interface.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:9000)", addr)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
