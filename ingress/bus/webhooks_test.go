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

// openWebhooks starts a server with the streams and opens the webhooks' bus side on it.
func openWebhooks(t *testing.T, ctx context.Context, cfg bus.WebhookConsumerConfig) (jetstream.JetStream, *bus.Webhooks) { //nolint:revive // t first, like every test helper
	t.Helper()
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	wh, err := bus.OpenWebhooks(ctx, js, cfg)
	require.NoError(t, err)
	return js, wh
}

// TestWebhookConsumersFollowTheFilterAndStartAtTheEndpointsCreation: an endpoint's
// consumers take only the subjects its filter names, from its creation on (not what the
// streams held before), are the same for every caller, change with the filter, and a
// manual retry carries the notice's id, subject and earlier attempts.
func TestWebhookConsumersFollowTheFilterAndStartAtTheEndpointsCreation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, wh := openWebhooks(t, ctx, bus.WebhookConsumerConfig{AckWait: 20 * time.Second})

	publish := func(n bus.Notice) uint64 {
		ack, err := js.PublishMsg(ctx, n.Msg())
		require.NoError(t, err)
		return ack.Sequence
	}
	publish(bus.RewardNotice("summer", "alice", "rwd_before", "", []byte(`{}`)))
	spec := bus.WebhookSpec{ID: "wh_1", Kinds: []string{"reward", "tier_changed"}, Campaigns: []string{"summer"}, Since: time.Now()}
	require.NoError(t, wh.Put(ctx, spec, []byte(`{"id":"wh_1"}`)))
	sources, err := wh.Ensure(ctx, spec, nil) // a replica doing the same
	require.NoError(t, err)
	require.Len(t, sources, 3)

	rewardSeq := publish(bus.RewardNotice("summer", "alice", "rwd_1", "", []byte(`{"id":"rwd_1"}`)))
	publish(bus.RewardNotice("winter", "alice", "rwd_2", "", []byte(`{}`)))
	publish(bus.TierChangedNotice("alice", "ev1", []byte(`{}`)))
	publish(bus.PointsExpiredNotice("alice", "ev1", 0, []byte(`{}`)))

	got := map[string][]string{}
	for _, s := range sources {
		batch, err := s.Consumer.Fetch(10, jetstream.FetchMaxWait(500*time.Millisecond))
		require.NoError(t, err)
		for m := range batch.Messages() {
			n, err := bus.ParseWebhookNotice(m)
			require.NoError(t, err)
			got[s.Stream] = append(got[s.Stream], n.ID)
			require.NoError(t, m.Ack())
		}
	}
	require.Equal(t, []string{"rwd_1"}, got[bus.RewardsStream])
	require.Equal(t, []string{"tier_ev1"}, got[bus.LoyaltyStream])
	require.Empty(t, got[bus.WebhooksStream])

	// Without loyalty kinds the LOYALTY consumer goes; every campaign's rewards come.
	spec.Kinds, spec.Campaigns = []string{"reward"}, nil
	sources, err = wh.Ensure(ctx, spec, nil)
	require.NoError(t, err)
	require.Len(t, sources, 2)
	_, err = js.Consumer(ctx, bus.LoyaltyStream, bus.WebhookConsumerName("wh_1"))
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
	info, err := sources[0].Consumer.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, "rewards.>", info.Config.FilterSubject)
	require.Equal(t, 20*time.Second, info.Config.AckWait)

	require.NoError(t, wh.Redeliver(ctx, "wh_1", bus.RewardsStream, rewardSeq, 8))
	batch, err := sources[1].Consumer.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	var retried []bus.WebhookNotice
	for m := range batch.Messages() {
		n, err := bus.ParseWebhookNotice(m)
		require.NoError(t, err)
		retried = append(retried, n)
	}
	require.Len(t, retried, 1)
	require.Equal(t, "rwd_1", retried[0].ID)
	require.Equal(t, bus.RewardSubject("summer", "alice"), retried[0].Subject)
	require.Equal(t, bus.RewardsStream, retried[0].Stream)
	require.Equal(t, rewardSeq, retried[0].StreamSeq)
	require.Equal(t, 8, retried[0].Earlier)
	require.ErrorIs(t, wh.Redeliver(ctx, "wh_1", bus.RewardsStream, 999, 1), bus.ErrNoticeGone)

	require.NoError(t, wh.Delete(ctx, "wh_1"))
	for _, stream := range bus.WebhookStreams {
		_, err = js.Consumer(ctx, stream, bus.WebhookConsumerName("wh_1"))
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, stream)
	}
	_, err = wh.Bucket().Get(ctx, "wh_1")
	require.ErrorIs(t, err, bus.ErrKeyNotFound)
}

// TestWebhookConsumersStartAfterTheStreamsEndsWhateverTheClocks: consumers created with
// the streams' ends read before an endpoint change start right after them, so with
// Postgres' clock (Since) an hour ahead of NATS' the notices published after the change
// still come, and with it an hour behind the earlier ones do not.
func TestWebhookConsumersStartAfterTheStreamsEndsWhateverTheClocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, wh := openWebhooks(t, ctx, bus.WebhookConsumerConfig{})

	for _, skew := range []time.Duration{time.Hour, -time.Hour} {
		id := "wh_ahead"
		if skew < 0 {
			id = "wh_behind"
		}
		before := bus.RewardNotice("summer", "alice", "rwd_before_"+id, "", []byte(`{}`))
		_, err := js.PublishMsg(ctx, before.Msg())
		require.NoError(t, err)
		ends, err := wh.Ends(ctx)
		require.NoError(t, err)
		require.Contains(t, ends, bus.RewardsStream)
		after := bus.RewardNotice("summer", "alice", "rwd_after_"+id, "", []byte(`{}`))
		_, err = js.PublishMsg(ctx, after.Msg())
		require.NoError(t, err)

		spec := bus.WebhookSpec{ID: id, Kinds: []string{"reward"}, Since: time.Now().Add(skew), After: ends}
		sources, err := wh.Ensure(ctx, spec, nil)
		require.NoError(t, err)
		var got []string
		for _, s := range sources {
			if s.Stream != bus.RewardsStream {
				continue
			}
			batch, err := s.Consumer.Fetch(10, jetstream.FetchMaxWait(500*time.Millisecond))
			require.NoError(t, err)
			for m := range batch.Messages() {
				n, err := bus.ParseWebhookNotice(m)
				require.NoError(t, err)
				got = append(got, n.ID)
			}
		}
		require.Equal(t, []string{"rwd_after_" + id}, got, "clock skew %v", skew)
	}
}
