package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// TestReplicatedStreamsKeepAcceptingWithOneOfThreeNodesDown: with 3 replicas every
// stream and bucket survives a node; nothing acknowledged is lost.
func TestReplicatedStreamsKeepAcceptingWithOneOfThreeNodesDown(t *testing.T) {
	c := bustest.StartCluster(t, 3)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 8, Replicas: 3})
	require.NoError(t, err)
	for _, name := range []string{bus.EventsStream, bus.RewardsStream, bus.LoyaltyStream, bus.DLQStream} {
		s, err := js.Stream(ctx, name)
		require.NoError(t, err)
		require.Equal(t, 3, s.CachedInfo().Config.Replicas, name)
	}
	pub := bus.NewPublisher(js)
	acked := 0
	publish := func(n int) {
		for range n {
			acked++
			ev := &event.Event{ID: fmt.Sprintf("e%d", acked), UserID: fmt.Sprintf("u%d", acked%7), Type: "view", OccurredAt: time.Now().UTC()}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a leader election takes a few seconds
			res := pub.PublishEvents(pctx, []*event.Event{ev}, "")[0]
			cancel()
			require.NoError(t, res.Err, "event %s", ev.ID)
		}
	}
	publish(20)
	c.Stop(0)
	publish(20) // the other two hold the quorum
	c.Restart(0)
	c.WaitReady()
	waitReplicasCurrent(t, js, bus.EventsStream) // a node that just came back is not a quorum member yet
	c.Stop(1)
	publish(20)
	s, err := js.Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(acked), info.State.Msgs, "every acknowledged event is kept")
	// More replicas than the cluster holds are refused, naming the setting.
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 8, Replicas: 5})
	require.ErrorContains(t, err, "CAMPAIGN_STREAM_REPLICAS")
}

// waitReplicasCurrent waits until every replica of stream is current with its leader.
func waitReplicasCurrent(t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := js.Stream(context.Background(), stream)
		if err == nil {
			info, err := s.Info(context.Background())
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) >= 2 {
				current := true
				for _, r := range info.Cluster.Replicas {
					current = current && r.Current
				}
				if current {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: replicas not current within 30s", stream)
		}
		time.Sleep(100 * time.Millisecond) // polling the stream's cluster state
	}
}
