// Command campaignd is the Campaign Manager server: HTTP ingress, the rewards engine, or
// both (the default), with an embedded NATS server and a private Postgres when no
// external ones are configured.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run starts campaignd and blocks until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "campaignd: bad configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	slog.SetDefault(log)
	if percent, limit := tuneGC(getenv); percent != -2 {
		log.Info("garbage collector tuned (set GOGC or GOMEMLIMIT to choose)", "gogc", percent, "memory_limit_bytes", limit)
	}
	app := newApp(cfg, log, stdout)
	if err := app.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "campaignd: start: %v\n", err)
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = app.Close(closeCtx)
		return 1
	}
	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, log)
	}
	printBanner(stdout, app)
	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := app.Close(closeCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func printBanner(w io.Writer, a *App) {
	base := "http://" + a.http.Addr()
	fmt.Fprintf(w, "campaignd is up (mode %s)\n", a.cfg.Mode)
	fmt.Fprintf(w, "  API      %s/v1\n  Docs     %s/docs  (OpenAPI: %s/openapi.json)\n  Metrics  %s/metrics\n  NATS     %s\n",
		base, base, base, base, a.NATSURL)
	if a.pg != nil {
		fmt.Fprintf(w, "  Postgres private cluster in %s\n", a.cfg.DataDir)
	}
}

// servePprof serves the runtime profiles (CPU, heap, goroutines) for performance work.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("pprof server", "addr", addr, "err", err)
	}
}
