// Package bustest starts an embedded nats-server with JetStream for tests.
package bustest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// Start runs an embedded JetStream server on a free loopback port with its store in a
// temporary directory, stopped in t.Cleanup. It returns the server; ClientURL() is its URL.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartAt(t, t.TempDir(), "127.0.0.1:-1")
}

// StartAt is Start with a chosen store directory and listen address, to restart a server
// on the same store.
func StartAt(t testing.TB, storeDir, listen string) *server.Server {
	t.Helper()
	ns, err := bus.StartServer(bus.ServerConfig{Listen: listen, StoreDir: storeDir})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}
