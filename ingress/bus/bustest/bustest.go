// Package bustest starts embedded nats-servers with JetStream for tests: an open server
// (Start, StartAt) for tests that are not about who may connect, the server campaignd
// runs, with its accounts and users (StartSecure), a cluster (StartCluster), and the
// suite that checks what each identity may do (CheckIdentities).
package bustest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// Start runs an open embedded JetStream server (no authentication: anyone connecting may
// do anything) on a free loopback port with its store in a temporary directory, stopped
// in t.Cleanup. It returns the server; ClientURL() is its URL.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartAt(t, t.TempDir(), "127.0.0.1:-1")
}

// StartAt is Start with a chosen store directory and listen address (host:port), to
// restart a server on the same store.
func StartAt(t testing.TB, storeDir, listen string) *server.Server {
	t.Helper()
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("listen address %q: %v", listen, err)
	}
	return run(t, &server.Options{
		ServerName: "bustest-open", Host: host, Port: p, JetStream: true, StoreDir: storeDir, NoSigs: true,
		MaxPayload: 8 << 20, JetStreamMaxMemory: 256 << 20,
	})
}

// Secure is a server started as campaignd starts its embedded one (bus.StartServer:
// accounts, users and permissions, no anonymous access), with its users' passwords.
type Secure struct {
	*server.Server
	Passwords bus.Passwords
}

// StartSecure runs bus.StartServer on a free loopback port with its store in a temporary
// directory and generated passwords, downstream limited to downstreamConsumers (none:
// any), stopped in t.Cleanup.
func StartSecure(t testing.TB, downstreamConsumers ...string) *Secure {
	t.Helper()
	pw := bus.Passwords{Campaignd: "campaignd-test-password", Ingest: "ingest-test-password", Downstream: "downstream-test-password"}
	ns, err := bus.StartServer(bus.ServerConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Passwords: pw,
		DownstreamConsumers: downstreamConsumers})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return &Secure{Server: ns, Passwords: pw}
}

// Identities are the connection options of each of s's users.
func (s *Secure) Identities() Identities {
	return Identities{
		Campaignd:  append(UserPassword(bus.CampaigndUser, s.Passwords.Campaignd), nats.CustomInboxPrefix(bus.AppInboxPrefix)),
		Ingest:     UserPassword(bus.IngestUser, s.Passwords.Ingest),
		Downstream: UserPassword(bus.DownstreamUser, s.Passwords.Downstream),
	}
}

// run starts a server with opts and stops it in t.Cleanup.
func run(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatalf("embedded nats: not ready for connections after 10s")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
