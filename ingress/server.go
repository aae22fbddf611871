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

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// EventPublisher stores accepted events in JetStream.
type EventPublisher interface {
	// PublishEvents stores events and waits for JetStream's acknowledgement of each. The
	// result at index i belongs to evs[i]. It is safe for concurrent use.
	PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []PublishResult
}

// PublishResult is the outcome of storing one event.
type PublishResult = bus.PublishResult

// CampaignSink broadcasts campaign changes to every engine (the campaigns KV bucket).
type CampaignSink interface {
	PutCampaign(ctx context.Context, c *cel.Campaign) error
}

// TierSink broadcasts the tier configuration to every engine.
type TierSink interface {
	PutTiers(ctx context.Context, c *persistence.TierConfig) error
}

// KeySink broadcasts API key changes to every ingress (the api_keys KV bucket).
type KeySink interface {
	PutAPIKey(ctx context.Context, k persistence.APIKey) error
}

// KeyChecker answers whether an ingest API key is valid. It is safe for concurrent use.
type KeyChecker interface {
	CheckAPIKey(key string) (persistence.APIKey, bool)
}

// Config configures the HTTP server.
type Config struct {
	Addr string
	// JWTSecret signs admin tokens; at least 32 bytes. Empty disables the admin API.
	JWTSecret []byte
	// TokenTTL is the life of an admin access token.
	TokenTTL time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement.
	PublishTimeout time.Duration
	// MaxBatch is the most events one batch request may hold.
	MaxBatch int
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = 15 * time.Minute
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
}

// Deps are the collaborators of the HTTP server. Publisher and Keys are required; Store,
// Campaigns and KeySink enable the admin API.
type Deps struct {
	Publisher EventPublisher
	Keys      KeyChecker
	Store     *persistence.Store
	Campaigns CampaignSink
	KeySink   KeySink
	// Tiers broadcasts the tier configuration to every engine (the settings KV bucket).
	Tiers TierSink
	// DLQ enables the dead-letter admin API (list, replay, delete) and its size metric.
	DLQ DLQ
	// Ready reports whether the process can serve; nil means always ready.
	Ready      func(ctx context.Context) error
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil uses Registerer when it is a Gatherer.
	Gatherer prometheus.Gatherer
}

// Server is the Fiber HTTP front: event ingest, admin API, health, metrics and docs.
type Server struct {
	cfg     Config
	deps    Deps
	app     *fiber.App
	ln      net.Listener
	log     *slog.Logger
	metrics *metrics
	tokens  *tokenIssuer
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
	if deps.Store != nil && len(cfg.JWTSecret) > 0 {
		s.tokens, err = newTokenIssuer(cfg.JWTSecret, cfg.TokenTTL)
		if err != nil {
			return nil, err
		}
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "campaignd",
		BodyLimit:             maxBatchBody,
		ErrorHandler:          errorHandler(s.log),
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.routes()
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
	go func() { s.served <- s.app.Listener(ln) }()
	return nil
}

// Addr is the bound address, valid after Start.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting connections and waits for in-flight requests until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.app.ShutdownWithContext(ctx)
	<-s.served
	return err
}

// App exposes the Fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }
