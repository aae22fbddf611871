package bustest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of embedded nats-servers with routes on 127.0.0.1, for
// tests of replicated streams and failover. Its methods are safe for concurrent use.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server
}

// StartCluster runs n open JetStream servers (no authentication; n >= 3 for replicated
// streams) in one cluster, each with its own store under t.TempDir(), and waits until
// JetStream has a meta leader. Every server is shut down in t.Cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, func() (*server.Options, error) {
		return &server.Options{JetStream: true, MaxPayload: 8 << 20, JetStreamMaxMemory: 64 << 20}, nil
	})
}

// StartClusterFromConfig is StartCluster with each server configured by nats-server's
// configuration file (its accounts, users, permissions, JetStream settings), read once
// per server, with what would clash on one machine replaced: server names, addresses,
// routes, store directories, no monitoring port. Variables the file references must be
// in the environment.
func StartClusterFromConfig(t testing.TB, n int, file string) *Cluster {
	t.Helper()
	return startCluster(t, n, func() (*server.Options, error) { return server.ProcessConfigFile(file) })
}

func startCluster(t testing.TB, n int, base func() (*server.Options, error)) *Cluster {
	t.Helper()
	clients, routes := freePorts(t, n), freePorts(t, n)
	c := &Cluster{t: t}
	for i := range n {
		var peers []*url.URL
		for j := range n {
			if j != i {
				peers = append(peers, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(routes[j])})
			}
		}
		o, err := base()
		if err != nil {
			t.Fatalf("nats server %d options: %v", i, err)
		}
		o.ServerName, o.Host, o.Port = fmt.Sprintf("n%d", i+1), "127.0.0.1", clients[i]
		o.HTTPHost, o.HTTPPort = "", 0
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "campaign-test", "127.0.0.1", routes[i]
		o.Routes = peers
		o.JetStream, o.StoreDir, o.NoSigs = true, t.TempDir(), true
		c.opts = append(c.opts, o)
		c.servers = append(c.servers, nil)
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range n {
			c.Stop(i)
		}
	})
	c.WaitReady()
	return c
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	o := *c.opts[i]
	ns, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("start nats server %d: %v", i, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("nats server %d not ready", i)
	}
	c.mu.Lock()
	c.servers[i] = ns
	c.mu.Unlock()
}

// Stop shuts server i down (as a node that died); Restart brings it back on the same
// ports and store.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	ns := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if ns != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// Restart starts server i again after Stop.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.start(i)
}

// URLs is the comma-separated client URLs of every server, as NATS_URL takes them.
func (c *Cluster) URLs() string {
	var out []string
	for _, o := range c.opts {
		out = append(out, "nats://127.0.0.1:"+strconv.Itoa(o.Port))
	}
	return strings.Join(out, ",")
}

// WaitReady waits until every running server is current with a JetStream meta leader.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, leader := true, false
		c.mu.Lock()
		for _, ns := range c.servers {
			if ns == nil {
				continue
			}
			ready = ready && ns.JetStreamIsCurrent()
			leader = leader || ns.JetStreamIsLeader()
		}
		c.mu.Unlock()
		if ready && leader {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("nats cluster: no JetStream meta leader within 30s")
		}
		time.Sleep(50 * time.Millisecond) // polling the servers' state
	}
}

// freePorts returns n free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}
