package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/campaignmanager/campaignmanager/actors"
	"github.com/campaignmanager/campaignmanager/ingress"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgcluster"
)

// App is one running campaignd: what it started, to be closed in reverse.
type App struct {
	cfg    Config
	log    *slog.Logger
	out    io.Writer
	reg    *prometheus.Registry
	ns     *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	pg     *pgcluster.Cluster
	store  *persistence.Store
	keys   *ingress.KeyMirror
	engine *actors.Engine
	http   *ingress.Server

	// passwordCost is the bcrypt cost of new password hashes (0: the default); tests lower
	// it.
	passwordCost int

	bgCancel context.CancelFunc
	bgDone   chan struct{}
	// URLs, valid after Start.
	NATSURL, DatabaseURL string
}

func newApp(cfg Config, log *slog.Logger, out io.Writer) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{cfg: cfg, log: log, out: out, reg: reg}
}

// Start brings every part up in dependency order. On error the caller must still Close.
func (a *App) Start(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("CAMPAIGN_DATA_DIR: create %s: %w", a.cfg.DataDir, err)
	}
	bg, cancel := context.WithCancel(context.Background())
	a.bgCancel = cancel

	// NATS.
	a.NATSURL = a.cfg.NATSURL
	if a.NATSURL == "" {
		ns, err := bus.StartServer(bus.ServerConfig{
			Listen: a.cfg.NATSListen, StoreDir: filepath.Join(a.cfg.DataDir, "nats"),
			SyncAlways: a.cfg.SyncAlways, SyncInterval: a.cfg.SyncInterval,
		})
		if err != nil {
			return fmt.Errorf("CAMPAIGN_NATS_LISTEN: %w", err)
		}
		a.ns = ns
		a.NATSURL = ns.ClientURL()
	}
	nc, err := nats.Connect(a.NATSURL, nats.Name("campaignd"), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Drain at shutdown
				a.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("nats reconnected") }))
	if err != nil {
		return fmt.Errorf("NATS_URL: connect to %s: %w", a.NATSURL, err)
	}
	a.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	a.js = js
	partitions, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: a.cfg.Partitions})
	if err != nil {
		return err
	}

	// Postgres.
	needDB := a.cfg.Mode != modeIngress || a.cfg.DatabaseURL != ""
	if needDB {
		if err := a.openDatabase(ctx); err != nil {
			return err
		}
	}

	// Campaigns, tiers and keys: Postgres is the authority, KV the broadcast.
	campaigns, err := bus.OpenBucket(ctx, js, bus.CampaignsKV)
	if err != nil {
		return err
	}
	settings, err := bus.OpenBucket(ctx, js, bus.SettingsKV)
	if err != nil {
		return err
	}
	keyBucket, err := bus.OpenBucket(ctx, js, bus.APIKeysKV)
	if err != nil {
		return err
	}
	a.keys = ingress.NewKeyMirror(keyBucket, a.log)
	broadcast := admin.KV{Campaigns: campaigns, Settings: settings}
	if a.store != nil {
		if err := broadcast.Reconcile(ctx, a.store, a.keys); err != nil {
			return err
		}
	}
	a.bgDone = make(chan struct{})
	go func() {
		defer close(a.bgDone)
		for bg.Err() == nil {
			if err := a.keys.Run(bg); err != nil && bg.Err() == nil {
				a.log.Error("api key watch ended; restarting", "err", err)
				sleep(bg, time.Second)
			}
		}
	}()

	if a.cfg.Mode != modeIngress {
		eng, err := actors.New(actors.Deps{JS: js, Store: a.store, Campaigns: campaigns, Settings: settings, Logger: a.log, Registerer: a.reg},
			actors.Config{Partitions: partitions, Consumers: a.cfg.Consumers, Consumer: bus.ConsumerConfig{MaxAckPending: a.cfg.MaxAckPending},
				ExpirySweep: a.cfg.ExpirySweep, IdleTimeout: a.cfg.ActorIdle, MaxResident: a.cfg.MaxResident})
		if err != nil {
			return err
		}
		if err := eng.Start(ctx); err != nil {
			return err
		}
		a.engine = eng
	}

	// HTTP, last: ready to serve when it binds.
	var secret []byte
	if a.store != nil {
		secret, err = a.jwtSecret()
		if err != nil {
			return err
		}
	}
	publisher := bus.NewPublisher(js)
	deps := ingress.Deps{
		Publisher: publisher, Keys: a.keys, Ready: a.ready,
		Logger: a.log, Registerer: a.reg, Gatherer: a.reg,
	}
	if a.store != nil {
		deps.Admin, err = admin.New(admin.Deps{Store: a.store, Publisher: publisher, Campaigns: broadcast, Tiers: broadcast,
			Keys: a.keys, DLQ: bus.NewDLQ(js), Logger: a.log, Registerer: a.reg},
			admin.Config{JWTSecret: secret, PasswordCost: a.passwordCost})
		if err != nil {
			return err
		}
	}
	srv, err := ingress.New(deps, ingress.Config{Addr: a.cfg.HTTPAddr})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("CAMPAIGN_HTTP_ADDR: %w", err)
	}
	a.http = srv
	return nil
}

func (a *App) openDatabase(ctx context.Context) error {
	a.DatabaseURL = a.cfg.DatabaseURL
	if a.DatabaseURL == "" {
		pg, err := pgcluster.Start(ctx, pgcluster.Config{Dir: filepath.Join(a.cfg.DataDir, "postgres"), Logger: a.log})
		if err != nil {
			return fmt.Errorf("DATABASE_URL is empty, so campaignd runs a private Postgres: %w", err)
		}
		a.pg = pg
		if err := pg.CreateDatabase(ctx, "campaign"); err != nil {
			return err
		}
		a.DatabaseURL = pg.URL("campaign")
	}
	store, err := persistence.Open(ctx, a.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	a.store = store
	return a.bootstrapAdmin(ctx)
}

// bootstrapAdmin creates the first admin when none exists.
func (a *App) bootstrapAdmin(ctx context.Context) error {
	if a.cfg.Mode == modeEngine {
		return nil
	}
	pw, generated := a.cfg.AdminPassword, false
	if pw == "" {
		pw, generated = randomToken(12), true
	}
	passwords := admin.Passwords{Cost: a.passwordCost}
	hash, err := passwords.Hash(pw)
	if err != nil {
		return err
	}
	created, err := a.store.EnsureAdmin(ctx, a.cfg.AdminUser, hash, "admin")
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if created {
		if generated {
			fmt.Fprintf(a.out, "Bootstrap admin created: username %q, password %q (shown once; set CAMPAIGN_ADMIN_PASSWORD to choose it)\n", a.cfg.AdminUser, pw)
		} else {
			fmt.Fprintf(a.out, "Bootstrap admin created: username %q with the password from CAMPAIGN_ADMIN_PASSWORD\n", a.cfg.AdminUser)
		}
	}
	return nil
}

// jwtSecret is CAMPAIGN_JWT_SECRET, or a secret generated once and kept in the data dir.
func (a *App) jwtSecret() ([]byte, error) {
	if a.cfg.JWTSecret != "" {
		return []byte(a.cfg.JWTSecret), nil
	}
	path := filepath.Join(a.cfg.DataDir, "jwt.secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	secret := randomToken(32)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("CAMPAIGN_JWT_SECRET: write generated secret: %w", err)
	}
	return []byte(secret), nil
}

// ready backs /readyz: NATS connected, streams present, Postgres answering, campaigns
// loaded, keys loaded.
func (a *App) ready(ctx context.Context) error {
	if a.nc.Status() != nats.CONNECTED {
		return errors.New("nats: not connected")
	}
	if _, err := a.js.Stream(ctx, bus.EventsStream); err != nil {
		return fmt.Errorf("nats: stream %s: %w", bus.EventsStream, err)
	}
	if a.store != nil {
		if err := a.store.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	if a.engine != nil {
		if err := a.engine.Ready(); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	if !a.keys.Loaded() {
		return errors.New("api keys not loaded yet")
	}
	return nil
}

// Close stops everything in reverse order of Start: HTTP, the engine (which drains
// in-flight events), NATS, Postgres. It waits until ctx ends at the most.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		errs = append(errs, a.http.Close(ctx))
	}
	if a.engine != nil {
		errs = append(errs, a.engine.Close(ctx))
	}
	if a.bgCancel != nil {
		a.bgCancel()
	}
	if a.bgDone != nil {
		<-a.bgDone
	}
	if a.nc != nil {
		_ = a.nc.Drain()
		for i := 0; i < 100 && !a.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		a.nc.Close()
	}
	if a.ns != nil {
		a.ns.Shutdown()
		a.ns.WaitForShutdown()
	}
	if a.store != nil {
		a.store.Close()
	}
	if a.pg != nil {
		errs = append(errs, a.pg.Stop(ctx))
	}
	return errors.Join(errs...)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
