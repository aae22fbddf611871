package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type harness struct {
	t      testing.TB
	js     jetstream.JetStream
	store  *persistence.Store
	engine *Engine
	pub    *bus.Publisher
}

// newHarness runs an engine over a real embedded JetStream and a throwaway database, with
// one active campaign granting a point per purchase. evaluate, when set, wraps rule
// evaluation to inject faults.
func newHarness(t *testing.T, evaluate func(rs *cel.RuleSet, in *cel.Input) ([]campaign.Match, []cel.EvalError, error)) *harness {
	return newHarnessConfig(t, evaluate, Config{})
}

func newHarnessConfig(t testing.TB, evaluate func(rs *cel.RuleSet, in *cel.Input) ([]campaign.Match, []cel.EvalError, error), cfg Config) *harness {
	t.Helper()
	ctx := context.Background()
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	parts, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	store, err := persistence.Open(ctx, pgtest.New(t))
	require.NoError(t, err)
	t.Cleanup(store.Close)
	campaigns, err := bus.OpenBucket(ctx, js, bus.CampaignsKV)
	require.NoError(t, err)
	point, err := json.Marshal(&campaign.Campaign{
		ID: "point", Name: "a point per purchase", Status: campaign.StatusActive, Version: 1,
		Rule: `event.type == "purchase"`, Reward: campaign.Reward{Type: campaign.RewardPoints, Points: "1"},
	})
	require.NoError(t, err)
	require.NoError(t, campaigns.Put(ctx, "point", point))
	leases, err := bus.OpenLeases(ctx, js)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := New(Deps{JS: js, Store: store, Campaigns: campaigns, Leases: leases, Logger: log, Registerer: prometheus.NewRegistry()},
		func() Config { cfg.Partitions, cfg.Consumers = parts, 2; cfg.Consumer.MaxAckPending = 64; return cfg }())
	require.NoError(t, err)
	if evaluate != nil {
		eng.evaluate = func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error) { return evaluate(eng.Rules(), in) }
	}
	require.NoError(t, eng.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, eng.Close(ctx))
	})
	return &harness{t: t, js: js, store: store, engine: eng, pub: bus.NewPublisher(js)}
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) publish(evs ...*event.Event) {
	h.t.Helper()
	for _, ev := range evs {
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = time.Now().UTC()
		}
	}
	for _, r := range h.pub.PublishEvents(context.Background(), evs, "") {
		require.NoError(h.t, r.Err)
	}
}

func (h *harness) waitEvents(userID string, n int64) loyalty.User {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		u, err := h.store.GetUser(context.Background(), userID)
		var total int64
		for _, c := range u.EventCounts {
			total += c
		}
		if err == nil && total >= n {
			return u
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("user %s: %d of %d events applied within 20s (err %v)", userID, total, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) dlq(n int) []*jetstream.RawStreamMsg {
	h.t.Helper()
	s, err := h.js.Stream(context.Background(), bus.DLQStream)
	require.NoError(h.t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := s.Info(context.Background())
		require.NoError(h.t, err)
		if info.State.Msgs >= uint64(n) {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("DLQ holds %d of %d entries after 20s", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); len(out) < n; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		require.NoError(h.t, err)
		out = append(out, m)
	}
	return out
}

func purchase(id, user string) *event.Event {
	return &event.Event{ID: id, UserID: user, Type: "purchase", Amount: 10}
}

func TestPanickingRuleParksEventAndLaterEventsApply(t *testing.T) {
	var attempts sync.Map
	h := newHarness(t, func(rs *cel.RuleSet, in *cel.Input) ([]campaign.Match, []cel.EvalError, error) {
		if in.Event.ID == "bad" {
			n, _ := attempts.LoadOrStore("bad", new(int))
			*n.(*int)++
			return nil, nil, fmt.Errorf("rule %q: %w", "point", cel.ErrPanic)
		}
		return rs.Evaluate(in)
	})
	h.publish(purchase("good-1", "u1"), purchase("bad", "u1"), purchase("good-2", "u1"))
	u := h.waitEvents("u1", 2)
	require.Equal(t, int64(2), u.Points)
	entries := h.dlq(1)
	require.Contains(t, entries[0].Header.Get(bus.HeaderDLQReason), "rule evaluation failed 3 times")
	var parked event.Event
	require.NoError(t, json.Unmarshal(entries[0].Data, &parked))
	require.Equal(t, "bad", parked.ID)
	n, _ := attempts.Load("bad")
	// maxRuleAttempts on its own turn, plus one when it was tried as part of good-1's
	// chain (a failure there just ends the chain).
	require.Contains(t, []int{maxRuleAttempts, maxRuleAttempts + 1}, *n.(*int))
}

func TestPanickingHandlerDoesNotStopTheProcess(t *testing.T) {
	h := newHarness(t, func(rs *cel.RuleSet, in *cel.Input) ([]campaign.Match, []cel.EvalError, error) {
		if in.Event.ID == "boom" {
			panic("boom")
		}
		return rs.Evaluate(in)
	})
	h.publish(purchase("boom", "u2"), purchase("after", "u2"))
	u := h.waitEvents("u2", 1)
	require.Equal(t, int64(1), u.Points)
	entries := h.dlq(1)
	require.Contains(t, entries[0].Header.Get(bus.HeaderDLQReason), "handler panicked: boom")
}

func TestUserEventsApplyInStreamOrder(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{}
	h := newHarness(t, func(rs *cel.RuleSet, in *cel.Input) ([]campaign.Match, []cel.EvalError, error) {
		mu.Lock()
		seen[in.Event.UserID] = append(seen[in.Event.UserID], in.Event.ID)
		mu.Unlock()
		return rs.Evaluate(in)
	})
	const users, per = 12, 40
	var evs []*event.Event
	for i := 0; i < per; i++ {
		for u := 0; u < users; u++ {
			evs = append(evs, purchase(fmt.Sprintf("o-%d-%03d", u, i), fmt.Sprintf("user-%d", u)))
		}
	}
	h.publish(evs...)
	for u := 0; u < users; u++ {
		require.Equal(t, int64(per), h.waitEvents(fmt.Sprintf("user-%d", u), per).Points)
	}
	mu.Lock()
	defer mu.Unlock()
	for u := 0; u < users; u++ {
		ids := seen[fmt.Sprintf("user-%d", u)]
		require.Len(t, ids, per)
		for i, id := range ids {
			require.Equal(t, fmt.Sprintf("o-%d-%03d", u, i), id)
		}
	}
}

func TestCommitBatchReportsDuplicatesAndFencing(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	u := loyalty.NewUser("fence")
	next := decided(&u, purchase("f1", "fence"), 1)
	outs, err := h.store.CommitBatch(ctx, []loyalty.Decision{{EventID: "f1", EventType: "purchase", StreamSeq: 1, User: next}}, nil)
	require.NoError(t, err)
	require.Equal(t, []persistence.Outcome{persistence.Committed}, outs)
	// Same event id again: duplicate. A decision built on the old version: fenced.
	other := loyalty.NewUser("fence2")
	n2 := decided(&other, purchase("f2", "fence2"), 2)
	stale := decided(&u, purchase("f3", "fence"), 3) // built on version 0, stored is 1
	dup := decided(&next, purchase("f1", "fence"), 4)
	dup.UserID = "fence3"
	outs, err = h.store.CommitBatch(ctx, []loyalty.Decision{
		{EventID: "f2", EventType: "purchase", StreamSeq: 2, User: n2},
		{EventID: "f3", EventType: "purchase", StreamSeq: 3, User: stale},
		{EventID: "f1", EventType: "purchase", StreamSeq: 4, User: dup},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, []persistence.Outcome{persistence.Committed, persistence.Fenced, persistence.Duplicate}, outs)
	got, err := h.store.GetUser(ctx, "fence")
	require.NoError(t, err)
	require.Equal(t, int64(1), got.Version)
	_, err = h.store.GetUser(ctx, "fence3")
	require.True(t, errors.Is(err, persistence.ErrNotFound))
}

// decided is the state after ev when no campaign matches.
func decided(u *loyalty.User, ev *event.Event, seq uint64) loyalty.User {
	d, err := loyalty.Step(u, loyalty.Input{Event: ev, Seq: seq}, func(*event.Event, *loyalty.User) ([]campaign.Match, map[string]loyalty.BudgetDelta, error) {
		return nil, nil, nil
	})
	if err != nil {
		panic(err)
	}
	return d.User
}

func TestIdleActorsStopAndTheirCompactStateServesTheNextEvent(t *testing.T) {
	h := newHarnessConfig(t, nil, Config{IdleTimeout: 50 * time.Millisecond})
	h.publish(purchase("a1", "sleepy"), purchase("a2", "sleepy"))
	require.Equal(t, int64(2), h.waitEvents("sleepy", 2).Points)
	deadline := time.Now().Add(10 * time.Second)
	for h.engine.Actors() != 0 {
		require.True(t, time.Now().Before(deadline), "actor not passivated")
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, 1, h.engine.Resident(), "the user stays in memory in compact form")
	require.Equal(t, 1.0, testutil.ToFloat64(h.engine.metrics.compact))
	loads := testutil.ToFloat64(h.engine.metrics.loads)

	h.publish(purchase("a3", "sleepy"))
	u := h.waitEvents("sleepy", 3)
	require.Equal(t, int64(3), u.Points, "the new actor builds on the committed state")
	require.Equal(t, int64(3), u.Version)
	require.Equal(t, loads, testutil.ToFloat64(h.engine.metrics.loads), "no load from Postgres")
	// (the new actor may be idle and passivated again already: 50 ms)
	require.Equal(t, 1, h.engine.Resident(), "one user in memory, by an actor or compact")

	// Another owner moves the user while only the compact state is held: the next event
	// is fenced, the user reloaded, and nothing counted twice.
	for h.engine.Actors() != 0 {
		require.True(t, time.Now().Before(deadline), "actor not passivated")
		time.Sleep(10 * time.Millisecond)
	}
	stored, err := h.store.GetUser(context.Background(), "sleepy")
	require.NoError(t, err)
	other := decided(&stored, purchase("a4", "sleepy"), uint64(stored.LastSeq))
	outs, err := h.store.CommitBatch(context.Background(), []loyalty.Decision{{EventID: "a4", EventType: "purchase", StreamSeq: stored.LastSeq, User: other}}, nil)
	require.NoError(t, err)
	require.Equal(t, persistence.Committed, outs[0])
	h.publish(purchase("a5", "sleepy"))
	u = h.waitEvents("sleepy", 5)
	require.Equal(t, int64(4), u.Points, "a4 (no campaign) and a5 both counted, a5 once")
	require.Equal(t, int64(5), u.Version)
	require.Equal(t, int64(5), u.EventCounts["purchase"])
	require.GreaterOrEqual(t, testutil.ToFloat64(h.engine.metrics.fenced), 1.0)
}

func TestResidentCapPassivatesLeastRecentlyUsedWithoutLosingEvents(t *testing.T) {
	h := newHarnessConfig(t, nil, Config{IdleTimeout: -1, MaxResident: 8})
	const users, rounds = 60, 3
	for r := 0; r < rounds; r++ {
		var evs []*event.Event
		for u := 0; u < users; u++ {
			evs = append(evs, purchase(fmt.Sprintf("cap-%d-%d", r, u), fmt.Sprintf("cu-%d", u)))
		}
		h.publish(evs...)
	}
	for u := 0; u < users; u++ {
		require.Equal(t, int64(rounds), h.waitEvents(fmt.Sprintf("cu-%d", u), rounds).Points)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.engine.Resident() > 8 {
		require.True(t, time.Now().Before(deadline), "resident %d over the cap", h.engine.Resident())
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAHotUsersBurstCommitsAsChains: a burst of one user's events is applied in order and
// exactly once, in far fewer commits than events (queued events commit as one chain).
func TestAHotUsersBurstCommitsAsChains(t *testing.T) {
	h := newHarness(t, nil)
	const n = 300
	evs := make([]*event.Event, n)
	for i := range evs {
		evs[i] = purchase(fmt.Sprintf("hot-%d", i), "whale")
	}
	h.publish(evs...)
	u := h.waitEvents("whale", n)
	require.Equal(t, int64(n), u.Points)
	require.Equal(t, int64(n), u.PurchaseCount)
	var m dto.Metric
	require.NoError(t, h.engine.metrics.batchSize.Write(&m))
	require.Less(t, m.GetHistogram().GetSampleCount(), uint64(n/2), "%d commits for %d events: not chained", m.GetHistogram().GetSampleCount(), n)
	ledger, err := h.store.LedgerSum(context.Background(), "whale")
	require.NoError(t, err)
	require.Equal(t, int64(n), ledger)
}

// TestAChainWithADuplicateFallsBackToOneByOne: an event id processed long ago (outside
// JetStream's dedup window, here published under another message id) inside a hot user's
// burst breaks the chain; the events are applied again one by one, the duplicate is
// recognised and acked, and the others count once.
func TestAChainWithADuplicateFallsBackToOneByOne(t *testing.T) {
	h := newHarness(t, nil)
	h.publish(purchase("d-1", "dupe"))
	h.waitEvents("dupe", 1)
	raw := func(msgID string, ev *event.Event) {
		ev.OccurredAt = time.Now().UTC()
		data, err := json.Marshal(ev)
		require.NoError(t, err)
		_, err = h.js.PublishMsg(context.Background(), &nats.Msg{Subject: "events." + event.Token(ev.UserID), Data: data},
			jetstream.WithMsgID(msgID))
		require.NoError(t, err)
	}
	// A burst: the actor is busy with the first while the rest queue up and chain.
	for i := 2; i <= 40; i++ {
		raw(fmt.Sprintf("d-%d", i), purchase(fmt.Sprintf("d-%d", i), "dupe"))
		if i == 20 {
			raw("again-d-1", purchase("d-1", "dupe"))
		}
	}
	u := h.waitEvents("dupe", 40)
	require.Equal(t, int64(40), u.Points, "d-1 counted once")
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(h.engine.metrics.processed.WithLabelValues("duplicate")) < 1 {
		require.True(t, time.Now().Before(deadline), "the duplicate was never recognised")
		time.Sleep(20 * time.Millisecond)
	}
	ledger, err := h.store.LedgerSum(context.Background(), "dupe")
	require.NoError(t, err)
	require.Equal(t, int64(40), ledger)
}

// TestEveryAppliedEventIsTimedThroughEachStage: each applied event is observed once in
// each stage of campaign_event_stage_seconds, and the stages add up to its total.
func TestEveryAppliedEventIsTimedThroughEachStage(t *testing.T) {
	h := newHarness(t, nil)
	const users, per = 5, 8
	var evs []*event.Event
	for i := range per {
		for u := range users {
			evs = append(evs, purchase(fmt.Sprintf("st-%d-%d", u, i), fmt.Sprintf("stage-%d", u)))
		}
	}
	h.publish(evs...)
	for u := range users {
		h.waitEvents(fmt.Sprintf("stage-%d", u), per)
	}
	histogram := func(stage string) *dto.Histogram {
		var m dto.Metric
		require.NoError(t, h.engine.metrics.stages.vec.WithLabelValues(stage).(prometheus.Metric).Write(&m))
		return m.GetHistogram()
	}
	deadline := time.Now().Add(20 * time.Second)
	for histogram(stageTotal).GetSampleCount() < users*per && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the publisher observes after the commit the state shows
	}
	var parts float64
	for _, s := range stageNames {
		require.Equal(t, uint64(users*per), histogram(s).GetSampleCount(), "stage %s", s)
		if s != stageTotal {
			parts += histogram(s).GetSampleSum()
		}
	}
	total := histogram(stageTotal).GetSampleSum()
	require.Greater(t, total, 0.0)
	require.InDelta(t, total, parts, total*1e-6, "the stages add up to the total")
}
