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

func dlqFixture(t *testing.T) (jetstream.JetStream, *bus.DLQ) {
	t.Helper()
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	return js, bus.NewDLQ(js)
}

func park(t *testing.T, js jetstream.JetStream, origSeq uint64, subject, eventID, data string) {
	t.Helper()
	h := nats.Header{}
	if eventID != "" {
		h.Set(jetstream.MsgIDHeader, eventID)
	}
	require.NoError(t, bus.PublishDLQ(context.Background(), js, bus.DLQEntry{Partition: 2, StreamSeq: origSeq,
		Subject: subject, Deliveries: 3, Reason: "test reason", Data: []byte(data), Header: h}))
}

func TestDLQListPagesInStreamOrderAndSkipsDeleted(t *testing.T) {
	js, d := dlqFixture(t)
	ctx := context.Background()
	for i := uint64(1); i <= 5; i++ {
		park(t, js, 100+i, "2.events.u", "", `{}`)
	}
	require.NoError(t, d.Delete(ctx, 3))
	cases := []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"first page", 0, 2, []uint64{1, 2}},
		{"a deleted entry is skipped", 2, 2, []uint64{4, 5}},
		{"past the end is empty", 5, 10, nil},
		{"a large limit returns the rest", 1, 100, []uint64{2, 4, 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := d.List(ctx, tc.after, tc.limit)
			require.NoError(t, err)
			var got []uint64
			for _, m := range ms {
				got = append(got, m.ID)
				require.Equal(t, 2, m.Partition)
				require.Equal(t, uint64(3), m.Deliveries)
				require.Equal(t, m.ID+100, m.StreamSeq)
				require.Equal(t, "test reason", m.Reason)
				require.False(t, m.ParkedAt.IsZero())
			}
			require.Equal(t, tc.want, got)
		})
	}
	n, err := d.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), n)
	require.ErrorIs(t, d.Delete(ctx, 3), bus.ErrDLQNotFound)
	_, err = d.Get(ctx, 99)
	require.ErrorIs(t, err, bus.ErrDLQNotFound)
}

func TestDLQReplayRepublishesWithTheEventIDOnce(t *testing.T) {
	js, d := dlqFixture(t)
	ctx := context.Background()
	park(t, js, 7, "1.events.alice", "ev-1", `{"id":"ev-1","user_id":"alice","type":"purchase"}`)
	park(t, js, 8, "1.events.alice", "ev-1", `{"id":"ev-1","user_id":"alice","type":"purchase"}`)
	park(t, js, 9, "", "", `x`)

	m, err := d.Replay(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "ev-1", m.EventID)
	events, err := js.Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	got, err := events.GetLastMsgForSubject(ctx, "*.events.alice")
	require.NoError(t, err)
	require.Equal(t, "ev-1", got.Header.Get(jetstream.MsgIDHeader))
	require.JSONEq(t, `{"id":"ev-1","user_id":"alice","type":"purchase"}`, string(got.Data))
	_, err = d.Get(ctx, 1)
	require.ErrorIs(t, err, bus.ErrDLQNotFound, "a replayed entry is deleted")

	_, err = d.Replay(ctx, 2)
	require.ErrorIs(t, err, bus.ErrReplayDuplicate, "the same event id is dropped by JetStream's window")
	_, err = d.Get(ctx, 2)
	require.NoError(t, err, "an entry whose replay was dropped is kept")
	info, err := events.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)

	_, err = d.Replay(ctx, 3)
	require.ErrorIs(t, err, bus.ErrDLQNotReplayable)
	_, err = d.Replay(ctx, 42)
	require.ErrorIs(t, err, bus.ErrDLQNotFound)
}
