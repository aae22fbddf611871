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

// TestEnginesOwnEventsShareTheUsersPartitionAcrossAnUpgrade: an EVENTS stream created
// with the earlier layout (events.* alone) is updated to take ops.* as well, a user's
// events keep their partition, and the user's ops.* events land in that same partition.
func TestEnginesOwnEventsShareTheUsersPartitionAcrossAnUpgrade(t *testing.T) {
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: bus.EventsStream, Subjects: []string{"events.*"}, Storage: jetstream.FileStorage,
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "events.*", Destination: "{{partition(16,1)}}.events.{{wildcard(1)}}"},
	})
	require.NoError(t, err)
	users := []string{"alice", "bob", "carol", "dave", "erin"}
	before := map[string]string{}
	for _, u := range users {
		ack, err := js.Publish(ctx, bus.EventSubject(u), []byte(`{}`))
		require.NoError(t, err)
		before[u] = storedSubject(t, js, ack.Sequence)
	}

	parts, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 64})
	require.NoError(t, err)
	require.Equal(t, 16, parts, "the stored partition count wins")
	for _, u := range users {
		for _, subject := range []string{bus.EventSubject(u), bus.OpsSubject(u)} {
			ack, err := js.Publish(ctx, subject, []byte(`{}`))
			require.NoError(t, err, subject)
			got, ok := bus.ParseStoredSubject(storedSubject(t, js, ack.Sequence))
			require.True(t, ok)
			old, _ := bus.ParseStoredSubject(before[u])
			require.Equal(t, old.Partition, got.Partition, "%s keeps the user's partition", subject)
			require.Equal(t, subject, got.Published())
		}
	}
	// Running it again changes nothing.
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 64})
	require.NoError(t, err)
}

func storedSubject(t *testing.T, js jetstream.JetStream, seq uint64) string {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.EventsStream)
	require.NoError(t, err)
	m, err := s.GetMsg(context.Background(), seq)
	require.NoError(t, err)
	return m.Subject
}
