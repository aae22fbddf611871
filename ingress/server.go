package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// KeyChecker answers whether an ingest API key is valid (KeyMirror implements it). It is
// safe for concurrent use.
type KeyChecker interface {
	CheckAPIKey(key string) (persistence.APIKey, bool)
}

// Config configures the HTTP server.
type Config struct {
	Addr string
	// PublishTimeout bounds the wait for JetStream's acknowledgement.
	PublishTimeout time.Duration
	// MaxBatch is the most events one batch request may hold.
	MaxBatch int
	// OpsOnly serves health, readiness, metrics and docs only (an engine-only process):
	// no ingest, no admin API.
	OpsOnly bool
	// MaxSkew is how far after the time received an event may be dated (0:
	// event.DefaultMaxSkew).
	MaxSkew time.Duration
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = event.DefaultMaxSkew
	}
}

// Deps are the collaborators of the HTTP server. Publisher and Keys are required; Admin
// mounts the admin API (nil: ingest, health, metrics and docs only).
type Deps struct {
	Publisher api.EventPublisher
	Keys      KeyChecker
	Admin     *admin.API
	// Ready reports whether the process can serve (an error says what is missing) and
	// what /readyz shows besides (e.g. the partitions an engine owns); nil means always
	// ready.
	Ready      func(ctx context.Context) (map[string]any, error)
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil uses Registerer when it is a Gatherer.
	Gatherer prometheus.Gatherer
}

// Server is the Fiber HTTP front: event ingest, the admin API, health, metrics and docs.
type Server struct {
	cfg     Config
	deps    Deps
	app     *fiber.App
	ln      net.Listener
	log     *slog.Logger
	metrics *metrics
	routes  api.Group
	conns   conns
	served  chan error
}

// New builds a Server. It does not listen until Start.
func New(deps Deps, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if deps.Publisher == nil || deps.Keys == nil {
		return nil, errors.New("ingress: Publisher and Keys are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger.With("component", "http")}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.app = fiber.New(fiber.Config{
		AppName:               "campaignd",
		BodyLimit:             maxBatchBody,
		ErrorHandler:          errorHandler(s.log),
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.app.Server().ConnState = s.conns.track
	s.routes = s.routeTable()
	s.mount()
	return s, nil
}

// Start binds the listen address and serves in the background. It returns once the
// socket is bound.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.served = make(chan error, 1)
	go func() { s.served <- s.app.Listener(listener{ln}) }()
	return nil
}

// Addr is the bound address, valid after Start.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting connections and waits for in-flight requests until ctx ends.
// Connections not serving a request are closed at once (a connection that never sent a
// request would otherwise hold the shutdown until the read timeout: measured ~30 s of a
// SIGTERM's time, which the engine's handover needs). Calling it again returns nil.
func (s *Server) Close(ctx context.Context) error {
	if s.ln == nil || s.served == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- s.app.ShutdownWithContext(ctx) }()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var err error
wait:
	for {
		s.conns.closeQuiet()
		select {
		case err = <-done:
			break wait
		case <-t.C:
		}
	}
	// fasthttp's Shutdown closes only the listeners its Serve has registered: a Serve
	// goroutine not yet scheduled when Close came (a busy machine, a Close right after
	// Start) would otherwise accept for ever. Closed here, it returns at once.
	_ = s.ln.Close()
	if serveErr := <-s.served; err == nil {
		err = serveErr
	}
	s.served = nil
	return err
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }
