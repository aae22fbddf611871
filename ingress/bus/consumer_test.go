package bus_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
)

func TestLaneRangesCoverEveryPartitionOnce(t *testing.T) {
	cases := []struct{ partitions, consumers, lanes int }{
		{64, 8, 8}, {64, 64, 64}, {64, 100, 64}, {64, 0, 64}, {10, 3, 3}, {1, 1, 1}, {7, 2, 2},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%d", tc.partitions, tc.consumers), func(t *testing.T) {
			lanes := bus.LaneRanges(tc.partitions, tc.consumers)
			require.Len(t, lanes, tc.lanes)
			next := 0
			for _, l := range lanes {
				require.Equal(t, next, l.First, "lanes are contiguous and in order")
				require.GreaterOrEqual(t, l.Last, l.First)
				next = l.Last + 1
			}
			require.Equal(t, tc.partitions, next, "the last lane ends at the last partition")
		})
	}
	require.Equal(t, "engine-p5", bus.LaneName(5, 5), "a one-partition lane keeps the per-partition name")
	require.Equal(t, "engine-p0-7", bus.LaneName(0, 7))
}

// publishEvents publishes n events for each of users, as the ingress does; round makes
// the event ids unique.
func publishEvents(t *testing.T, js jetstream.JetStream, round string, users []string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		for _, u := range users {
			_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "events." + u, Data: []byte(`{}`)},
				jetstream.WithMsgID(round+u+"-"+strconv.Itoa(i)))
			require.NoError(t, err)
		}
	}
}

// consume fetches up to max messages from c; ack says which of them to ack.
func consume(t *testing.T, c jetstream.Consumer, most int, ack func(jetstream.Msg) bool) []jetstream.Msg {
	t.Helper()
	batch, err := c.FetchNoWait(most)
	require.NoError(t, err)
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
		if ack(m) {
			require.NoError(t, m.DoubleAck(context.Background()))
		}
	}
	require.NoError(t, batch.Error())
	return got
}

func engineConsumers(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.EventsStream)
	require.NoError(t, err)
	var names []string
	l := s.ListConsumers(context.Background())
	for info := range l.Info() {
		names = append(names, info.Name)
	}
	require.NoError(t, l.Err())
	sort.Strings(names)
	return names
}

// TestChangingTheConsumerLayoutLosesNoUnackedEvent is the guarantee behind
// CAMPAIGN_CONSUMERS: when the partitions are spread over a different number of durable
// consumers (or a consumer is left with unacked messages by a dead engine), every message
// not acked before is delivered again, each partition's messages still in stream order,
// and the consumers of the old layout are removed.
func TestChangingTheConsumerLayoutLosesNoUnackedEvent(t *testing.T) {
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 8})
	require.NoError(t, err)
	cfg := bus.ConsumerConfig{MaxAckPending: 1000}

	users := make([]string, 40)
	for i := range users {
		users[i] = fmt.Sprintf("u%02d", i)
	}
	publishEvents(t, js, "a", users, 5) // 200 events

	// Layout 1: one consumer per partition. Each acks every other message it fetches,
	// and leaves the rest unacked, as an engine that died mid-stream would.
	lanes, err := bus.EnsureConsumers(ctx, js, parts, 8, cfg)
	require.NoError(t, err)
	require.Len(t, lanes, 8)
	acked := map[uint64]bool{}
	for _, l := range lanes {
		k := 0
		consume(t, l.Consumer, 1000, func(m jetstream.Msg) bool {
			k++
			meta, err := m.Metadata()
			require.NoError(t, err)
			if k%2 == 1 {
				acked[meta.Sequence.Stream] = true
				return true
			}
			return false
		})
	}
	require.NotEmpty(t, acked)
	require.Less(t, len(acked), 200)

	// Layout 2: two consumers over four partitions each.
	lanes, err = bus.EnsureConsumers(ctx, js, parts, 2, cfg)
	require.NoError(t, err)
	require.Len(t, lanes, 2)
	require.Equal(t, []string{bus.LaneName(0, 3), bus.LaneName(4, 7)}, engineConsumers(t, js), "the old layout's consumers are gone")

	seen := map[uint64]bool{}
	lastByPartition := map[string]uint64{}
	for _, l := range lanes {
		for _, m := range consume(t, l.Consumer, 1000, func(jetstream.Msg) bool { return true }) {
			meta, err := m.Metadata()
			require.NoError(t, err)
			p, _, _ := strings.Cut(m.Subject(), ".")
			n, _ := strconv.Atoi(p)
			require.True(t, n >= l.First && n <= l.Last, "lane %s delivered partition %d", bus.LaneName(l.First, l.Last), n)
			require.Greater(t, meta.Sequence.Stream, lastByPartition[p], "partition %s out of order", p)
			lastByPartition[p] = meta.Sequence.Stream
			seen[meta.Sequence.Stream] = true
		}
	}
	for seq := uint64(1); seq <= 200; seq++ {
		if !acked[seq] {
			require.True(t, seen[seq], "stream message %d was never acked and is not delivered again", seq)
		}
	}

	// Same layout, nothing pending: the consumers are kept as they are (no redelivery).
	before := engineConsumers(t, js)
	lanes, err = bus.EnsureConsumers(ctx, js, parts, 2, cfg)
	require.NoError(t, err)
	require.Equal(t, before, engineConsumers(t, js))
	for _, l := range lanes {
		require.Empty(t, consume(t, l.Consumer, 1000, func(jetstream.Msg) bool { return true }))
	}

	// New events after a change back to one consumer per partition: only those arrive.
	lanes, err = bus.EnsureConsumers(ctx, js, parts, 8, cfg)
	require.NoError(t, err)
	publishEvents(t, js, "b", users[:4], 1)
	total := 0
	for _, l := range lanes {
		for _, m := range consume(t, l.Consumer, 1000, func(jetstream.Msg) bool { return true }) {
			meta, _ := m.Metadata()
			require.Greater(t, meta.Sequence.Stream, uint64(200), "an acked message came again")
			total++
		}
	}
	require.Equal(t, 4, total)
}
