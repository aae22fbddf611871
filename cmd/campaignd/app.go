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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/campaignmanager/campaignmanager/actors"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/actors/webhook"
	"github.com/campaignmanager/campaignmanager/ingress"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/api"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgcluster"
)

// App is one running campaignd: what it started, to be closed in reverse.
type App struct {
	cfg Config
	log *slog.Logger
	out io.Writer
	reg *prometheus.Registry
	ns  *server.Server
	nc  *nats.Conn
	// natsAuth are the options campaignd's connection authenticates with (natsOptions),
	// valid after Start; the in-process tests connect as campaignd with them.
	natsAuth []nats.Option
	// natsUsers are the embedded server's users for services, for the banner.
	natsUsers []natsUser
	// ncClosed is closed once nc is closed (after Drain).
	ncClosed chan struct{}
	js       jetstream.JetStream
	// ingestNC is the connection ingress publishes events on (see startIngest), apart
	// from the engine's traffic on nc.
	ingestNC *nats.Conn
	pg       *pgcluster.Cluster
	store    *persistence.Store
	keys     *ingress.KeyMirror
	engine   *actors.Engine
	http     *ingress.Server
	// webhooks is the bus side of outbound webhooks (bucket, consumers, retries), sender
	// their HTTP side, dispatcher the delivery (engine modes).
	webhooks   *bus.Webhooks
	sender     *webhook.Sender
	dispatcher *webhook.Dispatcher

	// passwordCost is the bcrypt cost of new password hashes (0: the default); tests lower
	// it.
	passwordCost int

	// sup runs the app's own stages (the API key mirror).
	sup                          *supervisor.Supervisor
	campaigns, settings, apiKeys *bus.Bucket
	keeper                       *streamKeeper
	// unpublished are the stored campaigns the start could not publish to KV (/readyz
	// shows them).
	unpublished atomic.Pointer[[]admin.SkippedCampaign]
	// URLs, valid after Start.
	NATSURL, DatabaseURL string
}

func newApp(cfg Config, log *slog.Logger, out io.Writer) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{cfg: cfg, log: log, out: out, reg: reg}
}

// Start brings every part up in dependency order: NATS (embedded or external) and the
// streams, Postgres (private or external) when the mode needs it, the KV buckets
// (reconciled from Postgres), the engine, then HTTP. On error the caller must still Close.
func (a *App) Start(ctx context.Context) error {
	// Others may traverse the data dir but not list it: a private Postgres runs as the
	// postgres user when campaignd is root, and its directory is inside; the secrets in it
	// are 0600.
	if err := os.MkdirAll(a.cfg.DataDir, 0o711); err != nil { //nolint:gosec // G703: the operator chooses the data dir
		return fmt.Errorf("CAMPAIGN_DATA_DIR: create %s: %w", a.cfg.DataDir, err)
	}
	a.sup = supervisor.New(a.log, supervisor.Policy{Initial: time.Second})
	partitions, err := a.startNATS(ctx)
	if err != nil {
		return err
	}
	if a.cfg.Mode != modeIngress || a.cfg.DatabaseURL != "" {
		if err := a.openDatabase(ctx); err != nil {
			return err
		}
	}
	if err := a.openBuckets(ctx); err != nil {
		return err
	}
	a.keeper = &streamKeeper{a: a, partitions: partitions}
	if _, err := a.sup.Start(supervisor.Stage{Name: "stream keeper", Run: a.keeper.Run, Restart: true}); err != nil {
		return err
	}
	if a.cfg.Mode != modeIngress {
		if err := a.startEngine(ctx, partitions); err != nil {
			return err
		}
	}
	return a.startHTTP(ctx) // last: ready to serve when it binds
}

// startNATS starts the embedded server unless NATS_URL is set, connects, and ensures the
// streams and buckets. It returns the partition count of EVENTS.
func (a *App) startNATS(ctx context.Context) (int, error) {
	a.NATSURL = a.cfg.NATSURL
	a.ncClosed = make(chan struct{})
	var passwords bus.Passwords
	if a.NATSURL == "" {
		var err error
		if passwords, err = a.embeddedUsers(); err != nil {
			return 0, err
		}
		ns, err := bus.StartServer(bus.ServerConfig{
			Listen: a.cfg.NATSListen, StoreDir: filepath.Join(a.cfg.DataDir, "nats"),
			SyncAlways: a.cfg.SyncAlways, SyncInterval: a.cfg.SyncInterval, Passwords: passwords,
			DownstreamConsumers: a.cfg.NATSDownstreamConsumers,
		})
		if err != nil {
			return 0, fmt.Errorf("CAMPAIGN_NATS_LISTEN: %w", err)
		}
		a.ns = ns
		a.NATSURL = ns.ClientURL()
	}
	auth, err := a.natsOptions(passwords)
	if err != nil {
		return 0, err
	}
	a.natsAuth = auth
	nc, err := nats.Connect(a.NATSURL, append(slices.Clone(auth), nats.Name("campaignd"), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Drain at shutdown
				a.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("nats reconnected") }),
		nats.ClosedHandler(func(*nats.Conn) { close(a.ncClosed) }))...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) && a.cfg.NATSURL != "" {
			return 0, fmt.Errorf("NATS_URL: connect to %s (check CAMPAIGN_NATS_CREDS, CAMPAIGN_NATS_NKEY or CAMPAIGN_NATS_USER and CAMPAIGN_NATS_PASSWORD): %w", a.NATSURL, err)
		}
		return 0, fmt.Errorf("NATS_URL: connect to %s: %w", a.NATSURL, err)
	}
	a.nc = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	a.js = js
	return bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: a.cfg.Partitions, Replicas: a.cfg.StreamReplicas})
}

// natsOptions are the options campaignd's connection authenticates with: as the user
// campaignd with its password from embedded (the embedded server), or with the
// CAMPAIGN_NATS_* credentials and TLS settings (NATS_URL); and always its own inbox
// prefix (bus.AppInboxPrefix), which the downstream identity cannot subscribe to.
func (a *App) natsOptions(embedded bus.Passwords) ([]nats.Option, error) {
	opts := []nats.Option{nats.CustomInboxPrefix(bus.AppInboxPrefix)}
	if a.cfg.NATSURL == "" {
		return append(opts, nats.UserInfo(bus.CampaigndUser, embedded.Campaignd)), nil
	}
	external, err := externalNATSOptions(a.cfg)
	if err != nil {
		return nil, err
	}
	return append(opts, external...), nil
}

// natsUser is one of the embedded server's users for services, as the banner shows it.
type natsUser struct {
	name, does string
	// env is the variable of its password; file, when env is not set, the data dir file
	// that holds it.
	env, file string
}

// Files in the data dir holding the embedded server's passwords (0600): names, not
// credentials.
const (
	campaigndPasswordFile  = "nats-campaignd.password" //nolint:gosec // G101: a file name
	ingestPasswordFile     = "nats-ingest.password"    //nolint:gosec // G101: a file name
	downstreamPasswordFile = "nats-downstream.password"
)

// embeddedUsers are the passwords of the embedded server's users: campaignd's generated
// once into the data dir and reused; ingest's and downstream's from their variables,
// else generated the same way and printed when generated.
func (a *App) embeddedUsers() (bus.Passwords, error) {
	var pw bus.Passwords
	var err error
	if pw.Campaignd, _, err = a.dataDirSecret(campaigndPasswordFile, 12, 16); err != nil {
		return pw, fmt.Errorf("CAMPAIGN_DATA_DIR: campaignd's NATS password: %w", err)
	}
	ingest := natsUser{name: bus.IngestUser, does: "publishes events.<token>", env: "CAMPAIGN_NATS_INGEST_PASSWORD", file: ingestPasswordFile}
	if pw.Ingest, err = a.servicePassword(&ingest, a.cfg.NATSIngestPassword); err != nil {
		return pw, err
	}
	downstream := natsUser{name: bus.DownstreamUser, does: "consumes REWARDS and LOYALTY", env: "CAMPAIGN_NATS_DOWNSTREAM_PASSWORD", file: downstreamPasswordFile}
	if pw.Downstream, err = a.servicePassword(&downstream, a.cfg.NATSDownstreamPassword); err != nil {
		return pw, err
	}
	a.natsUsers = []natsUser{ingest, downstream}
	return pw, nil
}

// servicePassword is u's password: configured (its variable's value) unless empty, else
// the one kept in u's data dir file, generated and printed once the first time.
func (a *App) servicePassword(u *natsUser, configured string) (string, error) {
	if configured != "" {
		u.file = ""
		return configured, nil
	}
	pw, created, err := a.dataDirSecret(u.file, 12, 16)
	if err != nil {
		return "", fmt.Errorf("%s is empty, so a password is generated: %w", u.env, err)
	}
	if created {
		fmt.Fprintf(a.out, "NATS user %q created: password %q (shown once; kept in %s; set %s to choose it)\n",
			u.name, pw, filepath.Join(a.cfg.DataDir, u.file), u.env)
	}
	return pw, nil
}

// dataDirSecret is the secret kept in the data dir file name, or a new one of n random
// bytes (hex) written there (0600) when the file holds fewer than minLen characters;
// created says which.
func (a *App) dataDirSecret(name string, minLen, n int) (secret string, created bool, err error) {
	path := filepath.Join(a.cfg.DataDir, name)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= minLen { //nolint:gosec // G304: the operator's data dir
		return strings.TrimSpace(string(b)), false, nil
	}
	secret = randomToken(n)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil { //nolint:gosec // G703: the operator's data dir
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return secret, true, nil
}

// openBuckets binds the campaigns, settings, api_keys and webhooks buckets, republishes
// them from Postgres (the authority) when this process has it, and mirrors the API keys.
func (a *App) openBuckets(ctx context.Context) error {
	var err error
	if a.campaigns, err = bus.OpenBucket(ctx, a.js, bus.CampaignsKV); err != nil {
		return err
	}
	if a.settings, err = bus.OpenBucket(ctx, a.js, bus.SettingsKV); err != nil {
		return err
	}
	if a.apiKeys, err = bus.OpenBucket(ctx, a.js, bus.APIKeysKV); err != nil {
		return err
	}
	// A notice handed to one replica stays its own for three attempts' time, so two
	// replicas never deliver it at once.
	a.webhooks, err = bus.OpenWebhooks(ctx, a.js, bus.WebhookConsumerConfig{AckWait: 3 * a.cfg.WebhookTimeout})
	if err != nil {
		return err
	}
	a.sender = webhook.NewSender(webhook.SenderConfig{AllowPrivate: a.cfg.WebhookAllowPrivate, Timeout: a.cfg.WebhookTimeout})
	a.keys = ingress.NewKeyMirror(a.apiKeys, a.log)
	if a.store != nil {
		if err := a.reconcile(ctx); err != nil {
			return err
		}
	}
	_, err = a.sup.Start(supervisor.Stage{Name: "api key mirror", Run: a.keys.Run, Restart: true})
	return err
}

func (a *App) broadcast() admin.KV {
	return admin.KV{Campaigns: a.campaigns, Settings: a.settings, Keys: a.apiKeys, Webhooks: a.webhooks.Bucket()}
}

// reconcile makes the buckets hold what Postgres holds (see admin.KV.Reconcile), logs
// what it removed and keeps what it could not publish for /readyz.
func (a *App) reconcile(ctx context.Context) error {
	r, err := a.broadcast().Reconcile(ctx, a.store)
	if err != nil {
		return fmt.Errorf("reconcile KV from Postgres: %w", err)
	}
	for _, entry := range r.Removed {
		a.log.Warn("KV entry not in Postgres removed", "entry", entry)
	}
	for _, c := range r.Skipped {
		a.log.Error("stored campaign not published: engines do not apply it until it is saved again", "campaign", c.ID, "err", c.Reason)
	}
	a.unpublished.Store(&r.Skipped)
	return nil
}

// startEngine starts the consumers of EVENTS.
func (a *App) startEngine(ctx context.Context, partitions int) error {
	leases, err := bus.OpenLeases(ctx, a.js)
	if err != nil {
		return err
	}
	eng, err := actors.New(actors.Deps{JS: a.js, Store: a.store, Campaigns: a.campaigns, Settings: a.settings, Leases: leases,
		Logger: a.log, Registerer: a.reg},
		actors.Config{Partitions: partitions, Consumers: a.cfg.Consumers, Consumer: bus.ConsumerConfig{MaxAckPending: a.cfg.MaxAckPending},
			ExpirySweep: a.cfg.ExpirySweep, IdleTimeout: a.cfg.ActorIdle, MaxResident: a.cfg.MaxResident, MaxSkew: a.cfg.MaxClockSkew,
			Retention: persistence.Retention{Dedup: a.cfg.DedupHorizon, Refund: a.cfg.RefundHorizon}})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	a.engine = eng
	return a.startDispatcher(ctx)
}

// startDispatcher starts the delivery of notices to webhook endpoints, on consumers of
// their own: a slow endpoint never holds up the engine.
func (a *App) startDispatcher(ctx context.Context) error {
	d, err := webhook.New(webhook.Deps{Bus: a.webhooks, Store: a.store, Sender: a.sender, Logger: a.log, Registerer: a.reg},
		webhook.Config{MaxAttempts: a.cfg.WebhookMaxAttempts, RetryBase: a.cfg.WebhookRetryBase})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	a.dispatcher = d
	return nil
}

// ingestWindow is the most events ingress has published and JetStream not yet
// acknowledged (bus.CoalescerConfig.Window).
const ingestWindow = 4096

// startIngest connects the connection ingress publishes on and starts the coalescing
// publisher on it (a stage of the app's supervisor). Events have a connection of their
// own so that their acknowledgements do not queue behind the engine's deliveries, acks
// and rewards on campaignd's main connection.
func (a *App) startIngest() (*bus.Coalescer, error) {
	nc, err := nats.Connect(a.NATSURL, append(slices.Clone(a.natsAuth), nats.Name("campaignd ingest"), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(false))...)
	if err != nil {
		return nil, fmt.Errorf("NATS_URL: connect the ingest connection to %s: %w", a.NATSURL, err)
	}
	a.ingestNC = nc
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(ingestWindow))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := bus.NewCoalescer(js, bus.CoalescerConfig{Window: ingestWindow})
	if _, err := a.sup.Start(supervisor.Stage{Name: "event publisher", Run: c.Run}); err != nil {
		return nil, err
	}
	return c, nil
}

// startHTTP serves ingest, health, metrics, docs and (with Postgres) the admin API.
func (a *App) startHTTP(ctx context.Context) error {
	var publisher api.EventPublisher = bus.NewPublisher(a.js) // engine mode: no ingest
	if a.cfg.Mode != modeEngine {
		c, err := a.startIngest()
		if err != nil {
			return err
		}
		publisher = c
	}
	deps := ingress.Deps{
		Publisher: publisher, Keys: a.keys, Ready: a.ready,
		Logger: a.log, Registerer: a.reg, Gatherer: a.reg,
	}
	if a.store != nil && a.cfg.Mode != modeEngine {
		secret, err := a.jwtSecret()
		if err != nil {
			return err
		}
		broadcast := a.broadcast()
		deps.Admin, err = admin.New(admin.Deps{Store: a.store, Publisher: publisher, Campaigns: broadcast, Tiers: broadcast,
			Keys: a.keys, DLQ: bus.NewDLQ(a.js), Notices: bus.NewNoticePublisher(a.js),
			Webhooks: webhook.Endpoints{Bus: a.webhooks}, WebhookSender: a.sender, Logger: a.log, Registerer: a.reg},
			admin.Config{JWTSecret: secret, PasswordCost: a.passwordCost, PoolLowWater: a.cfg.PoolLowWater})
		if err != nil {
			return err
		}
	}
	srv, err := ingress.New(deps, ingress.Config{Addr: a.cfg.HTTPAddr, OpsOnly: a.cfg.Mode == modeEngine, MaxSkew: a.cfg.MaxClockSkew})
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

// bootstrapAdmin makes sure someone can manage admins: when no enabled admin has the
// admin role (none exists yet, or the last one was disabled, demoted or deleted), it
// creates CAMPAIGN_ADMIN_USER, or enables it again as an admin, with
// CAMPAIGN_ADMIN_PASSWORD (else a random password, printed once).
func (a *App) bootstrapAdmin(ctx context.Context) error {
	if a.cfg.Mode == modeEngine {
		return nil
	}
	pw, generated := a.cfg.AdminPassword, false
	if pw == "" {
		pw, generated = randomToken(12), true
	}
	if err := admin.CheckPassword(pw, a.cfg.AdminUser); err != nil {
		return fmt.Errorf("CAMPAIGN_ADMIN_PASSWORD: %w", err)
	}
	passwords := admin.Passwords{Cost: a.passwordCost}
	hash, err := passwords.Hash(pw)
	if err != nil {
		return err
	}
	outcome, err := a.store.EnsureAdmin(ctx, a.cfg.AdminUser, hash)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	user := persistence.UsernameKey(a.cfg.AdminUser)
	what := map[persistence.BootstrapOutcome]string{
		persistence.BootstrapCreated:  "created",
		persistence.BootstrapRestored: "restored (no enabled admin had the admin role; it is enabled again as an admin)",
	}[outcome]
	switch {
	case what == "":
	case generated:
		fmt.Fprintf(a.out, "Bootstrap admin %s: username %q, password %q (shown once; set CAMPAIGN_ADMIN_PASSWORD to choose it)\n", what, user, pw)
	default:
		fmt.Fprintf(a.out, "Bootstrap admin %s: username %q with the password from CAMPAIGN_ADMIN_PASSWORD\n", what, user)
	}
	return nil
}

// jwtSecret is CAMPAIGN_JWT_SECRET, or a secret generated once and kept in the data dir.
func (a *App) jwtSecret() ([]byte, error) {
	if a.cfg.JWTSecret != "" {
		return []byte(a.cfg.JWTSecret), nil
	}
	secret, _, err := a.dataDirSecret("jwt.secret", 32, 32)
	if err != nil {
		return nil, fmt.Errorf("CAMPAIGN_JWT_SECRET: generated secret: %w", err)
	}
	return []byte(secret), nil
}

// ready backs /readyz: NATS connected, streams present, Postgres answering, campaigns
// loaded, keys loaded.
func (a *App) ready(ctx context.Context) (map[string]any, error) {
	details := map[string]any{"mode": a.cfg.Mode}
	if a.nc.Status() != nats.CONNECTED {
		return details, errors.New("nats: not connected")
	}
	if a.ingestNC != nil && a.ingestNC.Status() != nats.CONNECTED {
		return details, errors.New("nats: the ingest connection is not connected")
	}
	missing, err := bus.Missing(ctx, a.js)
	if err != nil {
		return details, fmt.Errorf("nats: %w", err)
	}
	if len(missing) > 0 {
		return details, fmt.Errorf("nats: missing, being created again: %s", strings.Join(missing, ", "))
	}
	// Ingress answers 202 while Postgres is away (events are stored in JetStream), so
	// only a process that applies events depends on it.
	if a.store != nil && a.cfg.Mode != modeIngress {
		if err := a.store.Ping(ctx); err != nil {
			return details, fmt.Errorf("postgres: %w", err)
		}
	}
	if u := a.unpublished.Load(); u != nil && len(*u) > 0 {
		details["campaigns_not_published"] = *u
	}
	if a.engine != nil {
		owned, covered := a.engine.Owned()
		details["partitions"] = owned
		details["all_partitions_owned"] = covered
		if err := a.engine.Ready(ctx); err != nil {
			return details, fmt.Errorf("engine: %w", err)
		}
	}
	if a.cfg.Mode != modeEngine && !a.keys.Loaded() {
		return details, errors.New("api keys not loaded yet")
	}
	return details, nil
}

// Close stops everything in reverse order of Start: HTTP, the engine (which drains
// in-flight events), the webhook dispatcher (attempts in flight finish or are handed
// back), NATS, Postgres. It waits until ctx ends at the most.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.http != nil {
		errs = append(errs, a.http.Close(ctx))
	}
	if a.engine != nil {
		errs = append(errs, a.engine.Close(ctx))
	}
	if a.dispatcher != nil {
		errs = append(errs, a.dispatcher.Close(ctx))
	}
	if a.sup != nil {
		errs = append(errs, a.sup.Stop(ctx))
	}
	if a.ingestNC != nil {
		// Flushes what is buffered; the event publisher stopped with the supervisor,
		// after HTTP answered its last request.
		_ = a.ingestNC.FlushTimeout(time.Second)
		a.ingestNC.Close()
	}
	if a.nc != nil {
		if err := a.nc.Drain(); err == nil {
			select { // Drain flushes what is pending, then closes
			case <-a.ncClosed:
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
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
