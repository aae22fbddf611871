package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
)

// TestEmbeddedServerGivesEachIdentityOnlyItsPermissions runs the identity suite on the
// embedded server as campaignd starts it.
func TestEmbeddedServerGivesEachIdentityOnlyItsPermissions(t *testing.T) {
	ns := bustest.StartSecure(t)
	ids := ns.Identities()
	ensureStreams(t, ns.ClientURL(), ids.Campaignd)
	bustest.CheckIdentities(t, ns.ClientURL(), ids)
}

// TestEmbeddedServerLimitsDownstreamToItsNamedConsumers: with consumer names given,
// downstream uses those and cannot touch another consumer, the webhook consumers
// included.
func TestEmbeddedServerLimitsDownstreamToItsNamedConsumers(t *testing.T) {
	ns := bustest.StartSecure(t, "mailer", "crm")
	ids := ns.Identities()
	ensureStreams(t, ns.ClientURL(), ids.Campaignd)
	bustest.CheckDownstreamLimitedTo(t, ns.ClientURL(), ids, "crm")
}

func ensureStreams(t *testing.T, url string, opts []nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
}

// TestEmbeddedServerKeepsTheStreamsOfAServerWithoutAccounts restarts a store written by
// a server without authentication (every stream in the global account) as the secured
// server: the app's account has its events, buckets and consumers.
func TestEmbeddedServerKeepsTheStreamsOfAServerWithoutAccounts(t *testing.T) {
	store := t.TempDir()
	open := bustest.StartAt(t, store, "127.0.0.1:-1")
	nc, err := nats.Connect(open.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	_, err = js.Publish(ctx, bus.EventSubject("alice"), []byte(`{"id":"e1"}`))
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, bus.CampaignsKV)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "c1", []byte(`{"id":"c1"}`))
	require.NoError(t, err)
	_, err = js.CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{Durable: bus.LaneName(0, 3)})
	require.NoError(t, err)
	nc.Close()
	open.Shutdown()
	open.WaitForShutdown()

	pw := bus.Passwords{Campaignd: "c-password", Ingest: "i-password", Downstream: "d-password"}
	for range 2 { // adopted once, then used as it is
		ns, err := bus.StartServer(bus.ServerConfig{Listen: "127.0.0.1:-1", StoreDir: store, Passwords: pw})
		require.NoError(t, err)
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(bus.CampaigndUser, pw.Campaignd))
		require.NoError(t, err)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		s, err := js.Stream(ctx, bus.EventsStream)
		require.NoError(t, err)
		_, err = s.GetLastMsgForSubject(ctx, "*."+bus.EventSubject("alice"))
		require.NoError(t, err, "the event stored before")
		_, err = s.Consumer(ctx, bus.LaneName(0, 3))
		require.NoError(t, err, "the engine's consumer")
		kv, err := js.KeyValue(ctx, bus.CampaignsKV)
		require.NoError(t, err)
		_, err = kv.Get(ctx, "c1")
		require.NoError(t, err, "the campaign put before")
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	}
}

// TestEmbeddedServerNeedsEveryPassword refuses to start with a user without a password.
func TestEmbeddedServerNeedsEveryPassword(t *testing.T) {
	for name, pw := range map[string]bus.Passwords{
		"campaignd":  {Ingest: "i", Downstream: "d"},
		"ingest":     {Campaignd: "c", Downstream: "d"},
		"downstream": {Campaignd: "c", Ingest: "i"},
	} {
		_, err := bus.StartServer(bus.ServerConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Passwords: pw})
		require.ErrorContains(t, err, "user "+name+" has no password", name)
	}
}
