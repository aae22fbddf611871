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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run starts campaignd and blocks until ctx ends; it returns the exit code. With
// --version (or -version) it prints the version and returns 0 at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--version" || a == "-version" {
			fmt.Fprintln(stdout, "campaignd "+version())
			return 0
		}
	}
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

// version is the binary's version from its build information: the module version
// ("(devel)" for a build from a checkout), the VCS revision and time when recorded, and
// the Go version, e.g. "v1.2.3, commit 0123456789ab (2025-06-01T12:00:00Z), go1.26.8".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown), " + runtime.Version()
	}
	parts := []string{info.Main.Version}
	if parts[0] == "" {
		parts[0] = "(unknown)"
	}
	var rev, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(len(s.Value), 12)]
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" {
		var notes []string
		if at != "" {
			notes = append(notes, at)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			rev += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, "commit "+rev)
	}
	return strings.Join(append(parts, info.GoVersion), ", ")
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
	if a.ns != nil {
		fmt.Fprintf(w, "           no anonymous access; services connect as\n")
		example := ""
		for _, u := range a.natsUsers {
			where, ref := "$"+u.env, `"$`+u.env+`"`
			if u.file != "" {
				where = filepath.Join(a.cfg.DataDir, u.file)
				ref = `"$(cat ` + where + `)"`
			}
			fmt.Fprintf(w, "           %-10s  %s; password in %s\n", u.name, u.does, where)
			if u.name == bus.IngestUser {
				example = fmt.Sprintf("nats --server %s --user %s --password %s pub events.alice '{\"id\":\"e1\",\"user_id\":\"alice\",\"type\":\"signup\"}' --header Nats-Msg-Id:e1",
					a.NATSURL, u.name, ref)
			}
		}
		fmt.Fprintf(w, "           e.g. %s\n", example)
	}
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
