package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// Modes of campaignd.
const (
	modeAll     = "all"
	modeIngress = "ingress"
	modeEngine  = "engine"
)

// Config is every setting of campaignd, from environment variables and matching flags
// (a flag wins over its variable).
type Config struct {
	Mode            string
	HTTPAddr        string
	NATSURL         string
	NATSListen      string
	DatabaseURL     string
	DataDir         string
	JWTSecret       string
	AdminUser       string
	AdminPassword   string
	Partitions      int
	StreamReplicas  int
	SyncAlways      bool
	SyncInterval    time.Duration
	MaxAckPending   int
	Consumers       int
	ExpirySweep     time.Duration
	ActorIdle       time.Duration
	MaxResident     int
	ShutdownTimeout time.Duration
	MaxClockSkew    time.Duration
	PoolLowWater    int64
	PprofAddr       string
	LogLevel        string
	LogFormat       string

	// DedupHorizon and RefundHorizon are how long Postgres keeps the record that an
	// event was processed and what it did (see actors.Config.Retention).
	DedupHorizon, RefundHorizon time.Duration

	// Webhook delivery: private addresses allowed, one attempt's bound, the first
	// retry's wait (each later one 4 times longer, at most 1440 times this) and the
	// attempts before a delivery is failed.
	WebhookAllowPrivate bool
	WebhookTimeout      time.Duration
	WebhookRetryBase    time.Duration
	WebhookMaxAttempts  int

	// NATSIngestPassword and NATSDownstreamPassword are the embedded server's users'
	// passwords (empty: generated in DataDir).
	NATSIngestPassword, NATSDownstreamPassword string
	// NATSDownstreamConsumers, when set, are the only consumers the embedded server's user
	// downstream may use.
	NATSDownstreamConsumers []string
	// Credentials and TLS for an external NATS (NATSURL).
	NATSCreds, NATSNkey, NATSUser, NATSPassword string
	NATSTLSCA, NATSTLSCert, NATSTLSKey          string
}

type setting struct {
	env, flag, def, help string
	set                  func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

// file sets a path that must name a readable file, when it is not empty.
func file(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			f, err := os.Open(v) //nolint:gosec // G304: the operator names the file
			if err != nil {
				return fmt.Errorf("cannot read the file: %w", err)
			}
			fi, err := f.Stat()
			_ = f.Close() // opened to check it can be read; nothing was read
			if err != nil {
				return fmt.Errorf("cannot read the file: %w", err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s is not a regular file", v)
			}
		}
		*dst(c) = v
		return nil
	}
}

// natsPassword sets a password of the embedded server's users, at least 12 characters
// when it is not empty.
func natsPassword(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" && len(v) < 12 {
			return errors.New("must be at least 12 characters")
		}
		*dst(c) = v
		return nil
	}
}

// downstreamConsumers sets the consumer names the embedded server's user downstream is
// limited to: a comma-separated list of names of letters, digits, '-' and '_', none
// webhook-<id> (the engines' own).
func downstreamConsumers(c *Config, v string) error {
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue
		case !bus.DownstreamConsumerName.MatchString(n):
			return fmt.Errorf("consumer names are 1 to 64 letters, digits, '-' or '_', got %q", n)
		case strings.HasPrefix(n, bus.WebhookConsumerName("")):
			return fmt.Errorf("%q: names starting with %q are the engines' webhook consumers", n, bus.WebhookConsumerName(""))
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	c.NATSDownstreamConsumers = names
	return nil
}

func positiveInt(dst func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("must be a positive integer, got %q", v)
		}
		*dst(c) = n
		return nil
	}
}

func duration(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 1s or 500ms, got %q", v)
		}
		*dst(c) = d
		return nil
	}
}

var settings = []setting{
	{"CAMPAIGN_MODE", "mode", modeAll, "what to run: all, ingress (HTTP only) or engine (consumers only)", func(c *Config, v string) error {
		switch v {
		case modeAll, modeIngress, modeEngine:
			c.Mode = v
			return nil
		}
		return fmt.Errorf("must be all, ingress or engine, got %q", v)
	}},
	{"CAMPAIGN_HTTP_ADDR", "http-addr", "127.0.0.1:8080", "HTTP listen address (API, docs, health, metrics)", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, got %q", v)
		}
		c.HTTPAddr = v
		return nil
	}},
	{"NATS_URL", "nats-url", "", "external NATS, one URL or a comma-separated list of a cluster's servers; empty starts the embedded server", str(func(c *Config) *string { return &c.NATSURL })},
	{"CAMPAIGN_NATS_LISTEN", "nats-listen", "127.0.0.1:4222", "client address of the embedded NATS server", func(c *Config, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("must be host:port, got %q", v)
		}
		c.NATSListen = v
		return nil
	}},
	{"CAMPAIGN_NATS_INGEST_PASSWORD", "nats-ingest-password", "", "password of the embedded NATS server's user ingest (publishes events); empty: generated into the data dir and printed once",
		natsPassword(func(c *Config) *string { return &c.NATSIngestPassword })},
	{"CAMPAIGN_NATS_DOWNSTREAM_PASSWORD", "nats-downstream-password", "", "password of the embedded NATS server's user downstream (consumes REWARDS and LOYALTY); empty: generated into the data dir and printed once",
		natsPassword(func(c *Config) *string { return &c.NATSDownstreamPassword })},
	{"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS", "nats-downstream-consumers", "", "embedded NATS server: the only durable consumers of REWARDS and LOYALTY the user downstream may create and read, comma-separated (e.g. mailer,crm); empty: any, the engines' webhook-<id> consumers included",
		downstreamConsumers},
	{"CAMPAIGN_NATS_CREDS", "nats-creds", "", "external NATS: a credentials file (user JWT and seed) to connect with", file(func(c *Config) *string { return &c.NATSCreds })},
	{"CAMPAIGN_NATS_NKEY", "nats-nkey", "", "external NATS: a file holding the user NKEY seed to connect with", file(func(c *Config) *string { return &c.NATSNkey })},
	{"CAMPAIGN_NATS_USER", "nats-user", "", "external NATS: the user to connect as (with CAMPAIGN_NATS_PASSWORD)", str(func(c *Config) *string { return &c.NATSUser })},
	{"CAMPAIGN_NATS_PASSWORD", "nats-password", "", "external NATS: the password of CAMPAIGN_NATS_USER", str(func(c *Config) *string { return &c.NATSPassword })},
	{"CAMPAIGN_NATS_TLS_CA", "nats-tls-ca", "", "external NATS: a PEM file of the CA certificates to verify the server with (turns TLS on)", file(func(c *Config) *string { return &c.NATSTLSCA })},
	{"CAMPAIGN_NATS_TLS_CERT", "nats-tls-cert", "", "external NATS: a PEM client certificate (with CAMPAIGN_NATS_TLS_KEY; turns TLS on)", file(func(c *Config) *string { return &c.NATSTLSCert })},
	{"CAMPAIGN_NATS_TLS_KEY", "nats-tls-key", "", "external NATS: the PEM private key of CAMPAIGN_NATS_TLS_CERT", file(func(c *Config) *string { return &c.NATSTLSKey })},
	{"DATABASE_URL", "database-url", "", "external Postgres; empty starts a private cluster in the data dir", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"CAMPAIGN_DATA_DIR", "data-dir", "./.data", "embedded NATS store, private Postgres cluster, generated secrets", func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.DataDir = v
		return nil
	}},
	{"CAMPAIGN_JWT_SECRET", "jwt-secret", "", "HMAC key for admin tokens, at least 32 bytes; generated in the data dir when empty and the database is private", func(c *Config, v string) error {
		if v != "" && len(v) < 32 {
			return fmt.Errorf("must be at least 32 bytes, got %d", len(v))
		}
		c.JWTSecret = v
		return nil
	}},
	{"CAMPAIGN_ADMIN_USER", "admin-user", "admin", "bootstrap admin, created (or enabled again as an admin, with CAMPAIGN_ADMIN_PASSWORD) when no enabled admin has the admin role", str(func(c *Config) *string { return &c.AdminUser })},
	{"CAMPAIGN_ADMIN_PASSWORD", "admin-password", "", "bootstrap admin's password, 12 characters to 72 bytes and not a common one; empty: a random one printed once", func(c *Config, v string) error {
		if v != "" {
			if err := admin.CheckPassword(v, ""); err != nil {
				return err
			}
		}
		c.AdminPassword = v
		return nil
	}},
	{"CAMPAIGN_PARTITIONS", "partitions", "64", "partitions of the EVENTS stream, used when it is created", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("must be an integer from 1 to 1024, got %q", v)
		}
		c.Partitions = n
		return nil
	}},
	{"CAMPAIGN_STREAM_REPLICAS", "stream-replicas", "1", "replicas of every stream and KV bucket (3 on a NATS cluster); existing ones are updated", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			return fmt.Errorf("must be an integer from 1 to 5, got %q", v)
		}
		c.StreamReplicas = n
		return nil
	}},
	{"CAMPAIGN_SYNC_ALWAYS", "sync-always", "false", "embedded JetStream fsyncs every write before acking (slower; survives an OS crash)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", v)
		}
		c.SyncAlways = b
		return nil
	}},
	{"CAMPAIGN_SYNC_INTERVAL", "sync-interval", "1s", "embedded JetStream fsync interval when sync-always is off", duration(func(c *Config) *time.Duration { return &c.SyncInterval })},
	{"CAMPAIGN_CONSUMERS", "consumers", "4", "durable consumers the engine spreads the partitions over (at most the partition count); changing it hands over unacked events", positiveInt(func(c *Config) *int { return &c.Consumers })},
	{"CAMPAIGN_MAX_ACK_PENDING", "max-ack-pending", "2048", "events of one consumer in flight at once (back-pressure)", positiveInt(func(c *Config) *int { return &c.MaxAckPending })},
	{"CAMPAIGN_ACTOR_IDLE", "actor-idle", "1m", "how long an idle user actor runs before it is stopped (its state stays in memory in compact form)", duration(func(c *Config) *time.Duration { return &c.ActorIdle })},
	{"CAMPAIGN_MAX_RESIDENT_USERS", "max-resident-users", "1000000", "cap on users held in memory (actors and compact states); past it the least recently used idle ones are let go", positiveInt(func(c *Config) *int { return &c.MaxResident })},
	{"CAMPAIGN_EXPIRY_SWEEP", "expiry-sweep", "1m", "how often users with points due to expire are looked for", duration(func(c *Config) *time.Duration { return &c.ExpirySweep })},
	{"CAMPAIGN_DEDUP_HORIZON", "dedup-horizon", "192h", "how long an event id stays a duplicate after it was processed (longer than EVENTS' 7-day history; whole days, rounded up); a copy sent later is applied again", duration(func(c *Config) *time.Duration { return &c.DedupHorizon })},
	{"CAMPAIGN_REFUND_HORIZON", "refund-horizon", "2160h", "how long after it was processed an event can be refunded (at least the dedup horizon); a later refund is refused as of an unknown event", duration(func(c *Config) *time.Duration { return &c.RefundHorizon })},
	{"CAMPAIGN_MAX_CLOCK_SKEW", "max-clock-skew", "5m", "how far in the future an event may be dated (after the time received, or stored when published to NATS); later ones are refused (400) or parked in DLQ", duration(func(c *Config) *time.Duration { return &c.MaxClockSkew })},
	{"CAMPAIGN_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "webhook endpoints may be on loopback, link-local and private addresses (tests, a private network)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", v)
		}
		c.WebhookAllowPrivate = b
		return nil
	}},
	{"CAMPAIGN_WEBHOOK_TIMEOUT", "webhook-timeout", "10s", "bound on one webhook attempt, connection to response; a notice an engine holds is another's after 3 times this", duration(func(c *Config) *time.Duration { return &c.WebhookTimeout })},
	{"CAMPAIGN_WEBHOOK_RETRY_BASE", "webhook-retry-base", "30s", "wait after a webhook's first failed attempt; each later wait is 4 times longer (at most 1440 times this), ±20 % jitter", duration(func(c *Config) *time.Duration { return &c.WebhookRetryBase })},
	{"CAMPAIGN_WEBHOOK_MAX_ATTEMPTS", "webhook-max-attempts", "8", "attempts of a webhook delivery before it is marked failed (8 with a 30s base: about 23 h)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("must be an integer from 1 to 100, got %q", v)
		}
		c.WebhookMaxAttempts = n
		return nil
	}},
	{"CAMPAIGN_POOL_LOW_WATER", "pool-low-water", "100", "low-water mark of a coupon code pool created without one: at or below this many codes left it is low (alert CouponPoolLow)", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("must be a whole number of codes, 0 or more, got %q", v)
		}
		c.PoolLowWater = n
		return nil
	}},
	{"CAMPAIGN_SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "how long SIGTERM waits for in-flight work", duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"CAMPAIGN_PPROF_ADDR", "pprof-addr", "", "serve Go's pprof profiles on this address (keep it on loopback); empty: off", func(c *Config, v string) error {
		if v != "" {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("must be host:port, got %q", v)
			}
		}
		c.PprofAddr = v
		return nil
	}},
	{"CAMPAIGN_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "debug", "info", "warn", "error":
			c.LogLevel = strings.ToLower(v)
			return nil
		}
		return fmt.Errorf("must be debug, info, warn or error, got %q", v)
	}},
	{"CAMPAIGN_LOG_FORMAT", "log-format", "json", "json or text", func(c *Config, v string) error {
		switch v {
		case "json", "text":
			c.LogFormat = v
			return nil
		}
		return fmt.Errorf("must be json or text, got %q", v)
	}},
}

// loadConfig reads the environment, then the flags in args. Every bad value is reported,
// each naming its variable.
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("campaignd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := make([]*string, len(settings))
	for i, s := range settings {
		v := getenv(s.env)
		if v == "" {
			v = s.def
		}
		values[i] = fs.String(s.flag, v, s.help+" ($"+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	var c Config
	var errs []error
	for i, s := range settings {
		if err := s.set(&c, *values[i]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.env, err))
		}
	}
	if c.DatabaseURL != "" && c.JWTSecret == "" && c.Mode != modeEngine {
		errs = append(errs, errors.New("CAMPAIGN_JWT_SECRET: required with an external DATABASE_URL (at least 32 bytes)"))
	}
	if c.Mode == modeIngress && c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL: required in ingress mode (the engine's NATS server)"))
	}
	if c.NATSURL == "" && c.StreamReplicas > 1 {
		errs = append(errs, fmt.Errorf("CAMPAIGN_STREAM_REPLICAS: %d replicas need a NATS cluster (NATS_URL); the embedded server is a single node", c.StreamReplicas))
	}
	errs = append(errs, checkHorizons(c)...)
	errs = append(errs, checkNATSAuth(c)...)
	return c, errors.Join(errs...)
}

// checkHorizons reports a dedup horizon not longer than EVENTS' history (a message the
// stream can still redeliver or replay must be found processed) and a refund horizon
// shorter than the dedup one. Unset (unparsable) values are reported by their setting.
func checkHorizons(c Config) []error {
	var errs []error
	if c.DedupHorizon > 0 && c.DedupHorizon <= bus.EventsMaxAge {
		errs = append(errs, fmt.Errorf("CAMPAIGN_DEDUP_HORIZON: must be longer than EVENTS' max age %s (a redelivered or replayed event must still be found processed), got %s",
			bus.EventsMaxAge, c.DedupHorizon))
	}
	if c.DedupHorizon > 0 && c.RefundHorizon > 0 && c.RefundHorizon < c.DedupHorizon {
		errs = append(errs, fmt.Errorf("CAMPAIGN_REFUND_HORIZON: must be at least CAMPAIGN_DEDUP_HORIZON (%s), got %s", c.DedupHorizon, c.RefundHorizon))
	}
	return errs
}

// checkNATSAuth reports the problems of the NATS credential and TLS settings together:
// which kind of server each is for, the pairs, the mutually exclusive ones, and (through
// externalNATSOptions) the files' contents.
func checkNATSAuth(c Config) []error {
	type setting struct{ env, v string }
	external := []setting{{"CAMPAIGN_NATS_CREDS", c.NATSCreds}, {"CAMPAIGN_NATS_NKEY", c.NATSNkey}, {"CAMPAIGN_NATS_USER", c.NATSUser},
		{"CAMPAIGN_NATS_PASSWORD", c.NATSPassword}, {"CAMPAIGN_NATS_TLS_CA", c.NATSTLSCA}, {"CAMPAIGN_NATS_TLS_CERT", c.NATSTLSCert},
		{"CAMPAIGN_NATS_TLS_KEY", c.NATSTLSKey}}
	embedded := []setting{{"CAMPAIGN_NATS_INGEST_PASSWORD", c.NATSIngestPassword}, {"CAMPAIGN_NATS_DOWNSTREAM_PASSWORD", c.NATSDownstreamPassword},
		{"CAMPAIGN_NATS_DOWNSTREAM_CONSUMERS", strings.Join(c.NATSDownstreamConsumers, ",")}}
	var errs []error
	if c.NATSURL == "" {
		for _, s := range external {
			if s.v != "" {
				errs = append(errs, fmt.Errorf("%s: only for an external NATS (NATS_URL); the embedded server's credentials are generated in CAMPAIGN_DATA_DIR", s.env))
			}
		}
		return errs
	}
	for _, s := range embedded {
		if s.v != "" {
			errs = append(errs, fmt.Errorf("%s: only for the embedded NATS server; with NATS_URL the server's own configuration has the users (see deploy/nats/nats-server.conf)", s.env))
		}
	}
	var ways []string
	for _, s := range external[:3] { // creds, nkey, user
		if s.v != "" {
			ways = append(ways, s.env)
		}
	}
	if len(ways) > 1 {
		errs = append(errs, fmt.Errorf("%s: use one way to authenticate, not %s", ways[1], strings.Join(ways, " and ")))
	}
	switch {
	case c.NATSUser == "" && c.NATSPassword != "":
		errs = append(errs, errors.New("CAMPAIGN_NATS_PASSWORD: needs CAMPAIGN_NATS_USER"))
	case c.NATSUser != "" && c.NATSPassword == "":
		errs = append(errs, errors.New("CAMPAIGN_NATS_USER: needs CAMPAIGN_NATS_PASSWORD"))
	}
	switch {
	case c.NATSTLSCert == "" && c.NATSTLSKey != "":
		errs = append(errs, errors.New("CAMPAIGN_NATS_TLS_KEY: needs CAMPAIGN_NATS_TLS_CERT"))
	case c.NATSTLSCert != "" && c.NATSTLSKey == "":
		errs = append(errs, errors.New("CAMPAIGN_NATS_TLS_CERT: needs CAMPAIGN_NATS_TLS_KEY"))
	}
	if len(errs) == 0 {
		if _, err := externalNATSOptions(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// externalNATSOptions are the nats.go options of the credential and TLS settings for an
// external NATS. Every file is read here, so that a bad one is an error naming its
// variable (several are joined).
func externalNATSOptions(c Config) ([]nats.Option, error) {
	var opts []nats.Option
	var errs []error
	switch {
	case c.NATSCreds != "":
		if err := checkCreds(c.NATSCreds); err != nil {
			errs = append(errs, fmt.Errorf("CAMPAIGN_NATS_CREDS: %w", err))
		}
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	case c.NATSNkey != "":
		opt, err := nats.NkeyOptionFromSeed(c.NATSNkey)
		if err != nil {
			errs = append(errs, fmt.Errorf("CAMPAIGN_NATS_NKEY: %s: %w", c.NATSNkey, err))
		}
		opts = append(opts, opt)
	case c.NATSUser != "":
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	// RootCAs and ClientCert load their files when applied to nats.Options.
	var probe nats.Options
	tlsOption := func(env string, opt nats.Option) {
		if err := opt(&probe); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
		opts = append(opts, opt)
	}
	if c.NATSTLSCA != "" {
		tlsOption("CAMPAIGN_NATS_TLS_CA", nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		tlsOption("CAMPAIGN_NATS_TLS_CERT, CAMPAIGN_NATS_TLS_KEY", nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts, errors.Join(errs...)
}

// checkCreds reports whether path is a NATS credentials file: a user JWT and a user seed.
func checkCreds(path string) error {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file
	if err != nil {
		return err
	}
	if jwt, err := nkeys.ParseDecoratedJWT(b); err != nil || strings.Count(jwt, ".") != 2 {
		return fmt.Errorf("%s holds no user JWT (a .creds file from nsc or nats-server is expected)", path)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(b)
	if err != nil {
		return fmt.Errorf("%s holds no user seed: %w", path, err)
	}
	kp.Wipe()
	return nil
}
