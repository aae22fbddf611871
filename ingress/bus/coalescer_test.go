package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// coalescerEnv is the server campaignd embeds, a connection as campaignd and a running
// Coalescer over it.
type coalescerEnv struct {
	js jetstream.JetStream
	c  *bus.Coalescer
}

func startCoalescer(t *testing.T, cfg bus.CoalescerConfig) *coalescerEnv {
	t.Helper()
	s := bustest.StartSecure(t)
	nc, err := nats.Connect(s.ClientURL(), s.Identities().Campaignd...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = bus.EnsureStreams(context.Background(), js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	c := bus.NewCoalescer(js, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return &coalescerEnv{js: js, c: c}
}

func testEvent(id string) *event.Event {
	return &event.Event{ID: id, UserID: "user " + id, Type: "purchase", Amount: 3, OccurredAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// storedIDs reads EVENTS from the start and counts each Nats-Msg-Id.
func storedIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.EventsStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	ids := map[string]int{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		ids[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	return ids
}

// TestCoalescedPublishesAreEachStoredOnceAndAnsweredAfterTheirAck: many concurrent
// callers, single events and batches larger than the window, each id sent twice: every
// event is stored once, the second send of an id is a duplicate, and every result names
// the sequence the event is stored at.
func TestCoalescedPublishesAreEachStoredOnceAndAnsweredAfterTheirAck(t *testing.T) {
	env := startCoalescer(t, bus.CoalescerConfig{Window: 16, Burst: 4})
	s, err := env.js.Stream(context.Background(), bus.EventsStream)
	require.NoError(t, err)
	const callers, perCaller = 24, 10
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var evs []*event.Event
			for i := range perCaller {
				evs = append(evs, testEvent(fmt.Sprintf("c%d-e%d", w, i)))
			}
			if w%3 == 0 { // one batch of more events than the window holds
				evs = append(evs, evs...)
				for i, res := range env.c.PublishEvents(ctx, evs, "corr") {
					if !assertStored(t, s, evs[i], res) {
						return
					}
					if dup := i >= perCaller; res.Duplicate != dup {
						t.Errorf("%s (#%d in the batch): duplicate = %v", evs[i].ID, i, res.Duplicate)
					}
				}
				return
			}
			for round := range 2 {
				for _, ev := range evs {
					res := env.c.PublishEvents(ctx, []*event.Event{ev}, "")[0]
					if !assertStored(t, s, ev, res) {
						return
					}
					if res.Duplicate != (round == 1) {
						t.Errorf("%s: duplicate = %v on send %d", ev.ID, res.Duplicate, round+1)
					}
				}
			}
		})
	}
	wg.Wait()
	ids := storedIDs(t, env.js)
	require.Len(t, ids, callers*perCaller)
	for id, n := range ids {
		require.Equal(t, 1, n, "event %s stored %d times", id, n)
	}
}

// assertStored checks that res is a success and that the stream holds ev at res.Seq
// when the caller gets it: acknowledged means stored.
func assertStored(t *testing.T, s jetstream.Stream, ev *event.Event, res bus.PublishResult) bool {
	t.Helper()
	if res.Err != nil {
		t.Errorf("%s: %v", ev.ID, res.Err)
		return false
	}
	m, err := s.GetMsg(context.Background(), res.Seq)
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != ev.ID {
		t.Errorf("%s answered with seq %d, which holds %v (%v)", ev.ID, res.Seq, m, err)
		return false
	}
	return true
}

// TestCoalescerFailureAnswersOnlyItsCaller: a caller out of time gets an error and
// publishes nothing, while a caller filling the window at the same time is stored.
func TestCoalescerFailureAnswersOnlyItsCaller(t *testing.T) {
	env := startCoalescer(t, bus.CoalescerConfig{Window: 4})
	ctx := context.Background()
	var evs []*event.Event
	for i := range 4 {
		evs = append(evs, testEvent(fmt.Sprintf("held-%d", i)))
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	var wg sync.WaitGroup
	var held []bus.PublishResult
	wg.Go(func() { held = env.c.PublishEvents(ctx, evs, "") })
	late := env.c.PublishEvents(expired, []*event.Event{testEvent("late")}, "")[0]
	wg.Wait()
	require.ErrorIs(t, late.Err, context.Canceled)
	for i, r := range held {
		require.NoError(t, r.Err, evs[i].ID)
	}
	ids := storedIDs(t, env.js)
	require.Equal(t, 0, ids["late"])
	require.Len(t, ids, 4)
}

// TestCoalescerAnswersAStoppedPublisherAtOnce: once Run has returned, PublishEvents
// fails with ErrCoalescerStopped instead of waiting for its deadline.
func TestCoalescerAnswersAStoppedPublisherAtOnce(t *testing.T) {
	s := bustest.StartSecure(t)
	nc, err := nats.Connect(s.ClientURL(), s.Identities().Campaignd...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	c := bus.NewCoalescer(js, bus.CoalescerConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, c.Run(ctx))
	res := c.PublishEvents(context.Background(), []*event.Event{testEvent("after-stop")}, "")[0]
	require.True(t, errors.Is(res.Err, bus.ErrCoalescerStopped), "err = %v", res.Err)
}
