package bus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Listen is the client address, host:port; port -1 picks a free one.
	Listen string
	// StoreDir holds JetStream's files.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before acknowledging it. Without it the
	// server fsyncs every SyncInterval (NATS default: 2 minutes), so an OS crash can lose
	// acknowledged writes; a process crash cannot.
	SyncAlways bool
	// SyncInterval is the fsync interval when SyncAlways is off; 0 keeps NATS's default.
	SyncInterval time.Duration
	// Passwords of the users campaignd, ingest and downstream (auth.go); all required.
	Passwords Passwords
	// DownstreamConsumers, when set, are the only consumers the user downstream may use
	// (DownstreamPermissions).
	DownstreamConsumers []string
}

// StartServer starts an embedded nats-server with JetStream, the accounts and users of
// auth.go and no anonymous access, and waits until it accepts clients. A store written
// by a server without accounts is adopted by AppAccount first. Shutdown stops it.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	opts := &server.Options{}
	if err := configureAuth(opts, cfg.Passwords, cfg.DownstreamConsumers); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	opts.ServerName = "campaignd-embedded"
	opts.Host, opts.Port = host, port
	opts.JetStream, opts.StoreDir = true, cfg.StoreDir
	opts.SyncAlways, opts.SyncInterval = cfg.SyncAlways, cfg.SyncInterval
	opts.NoSigs = true
	opts.MaxPayload = 8 << 20
	opts.JetStreamMaxMemory = 256 << 20
	if err := adoptGlobalStore(cfg.StoreDir); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready for connections after 10s (is the port in use?)")
	}
	return ns, nil
}
