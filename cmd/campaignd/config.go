package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
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
}

type setting struct {
	env, flag, def, help string
	set                  func(c *Config, v string) error
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
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
	{"CAMPAIGN_ADMIN_USER", "admin-user", "admin", "bootstrap admin, created when no admin exists", str(func(c *Config) *string { return &c.AdminUser })},
	{"CAMPAIGN_ADMIN_PASSWORD", "admin-password", "", "bootstrap admin's password; empty: a random one printed once", func(c *Config, v string) error {
		if v != "" && len(v) < 8 {
			return errors.New("must be at least 8 characters")
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
	{"CAMPAIGN_MAX_CLOCK_SKEW", "max-clock-skew", "5m", "how far in the future an event may be dated (after the time received, or stored when published to NATS); later ones are refused (400) or parked in DLQ", duration(func(c *Config) *time.Duration { return &c.MaxClockSkew })},
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
	return c, errors.Join(errs...)
}
