package main

// The guarantee suite: one table of guarantees (DESIGN §4–§6), each run over every way an
// event reaches campaignd, after watermill's tests.TestPubSub. Where the paths
// legitimately differ, a case asks the ingester's features.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// guarantee is one promise of DESIGN §4–§6 that every ingest path keeps.
type guarantee struct {
	name string
	run  func(t *testing.T, in ingester)
}

var guarantees = []guarantee{
	{"grants the reward", grantsTheReward},
	{"a duplicate id grants once", duplicateIDGrantsOnce},
	{"an invalid event is refused with its reason", invalidEventIsRefusedWithItsReason},
	{"a reserved points type is refused", reservedTypeIsRefused},
	{"per-user order holds", perUserOrderHolds},
	{"exactly once across a kill -9 restart", exactlyOnceAcrossKillNine},
	{"a paused campaign stops granting", pausedCampaignStopsGranting},
}

// TestEveryIngestPathKeepsTheGuarantees runs every guarantee over every ingester, each on
// a campaignd of its own.
func TestEveryIngestPathKeepsTheGuarantees(t *testing.T) {
	for _, in := range ingesters {
		t.Run(in.name, func(t *testing.T) {
			for _, g := range guarantees {
				t.Run(g.name, func(t *testing.T) { g.run(t, in) })
			}
		})
	}
}

var welcomeCoupon = map[string]any{
	"id": "welcome", "name": "Welcome coupon", "status": "active", "priority": 10,
	"rule": `user.purchase_count == 0 && event.type == "purchase"`, "limits": map[string]any{"per_user": 1},
	"reward": map[string]any{"type": "coupon", "data": map[string]any{"template": "WELCOME10"}},
}

// grantsTheReward: matching events become rewards, stored with their campaign and version
// and published once each to REWARDS; the user's loyalty state follows the events.
func grantsTheReward(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.createCampaign(welcomeCoupon)
	user := "Zoë 🙂/with.dots*"
	for _, ev := range []map[string]any{
		{"id": "e1", "user_id": user, "type": "purchase", "amount": 120.0, "currency": "EUR"},
		{"id": "e2", "user_id": user, "type": "purchase", "amount": 80},
		{"id": "e3", "user_id": user, "type": "review", "attributes": map[string]any{"rating": 5}},
	} {
		require.Equal(t, receipt{}, in.send(t, &e.client, ev), "event %v: stored the first time", ev["id"])
	}

	u := e.waitUser(user, 3)
	require.Equal(t, user, u.UserID)
	require.Equal(t, int64(20), u.Points) // 12 + 8
	require.Equal(t, int64(20), u.LifetimePoints)
	require.Equal(t, int64(2), u.PurchaseCount)
	require.InDelta(t, 200.0, u.TotalSpent, 1e-9)
	require.Equal(t, map[string]int64{"purchase": 2, "review": 1}, u.EventCounts)
	require.Equal(t, int64(1), u.RewardCounts["welcome"])

	rs := e.rewards(user)
	require.Len(t, rs, 3)
	// Oldest first; within e1 the higher priority campaign first.
	require.Equal(t, "welcome", rs[0].CampaignID)
	require.Equal(t, "coupon", rs[0].Type)
	require.Equal(t, "e1", rs[0].EventID)
	require.Equal(t, int64(1), rs[0].CampaignVersion)
	require.Equal(t, "ten-percent", rs[1].CampaignID)
	require.Equal(t, "points", rs[1].Type)
	require.Equal(t, "e1", rs[1].EventID)
	require.Equal(t, int64(12), rs[1].Points)
	require.Equal(t, int64(1), rs[1].CampaignVersion)
	require.Equal(t, "ten-percent", rs[2].CampaignID)
	require.Equal(t, "e2", rs[2].EventID)
	require.Equal(t, int64(8), rs[2].Points)

	// Rewards reach the REWARDS stream, one message per reward, with Nats-Msg-Id = reward
	// id, on rewards.<campaign>.<token>. (Publication order across a user's events is not
	// promised.)
	e.waitStreamMsgs(bus.RewardsStream, "", 3)
	stream, err := e.jetStream().Stream(context.Background(), bus.RewardsStream)
	require.NoError(t, err)
	published := map[string]string{}
	created := map[string]time.Time{}
	for seq := uint64(1); seq <= 3; seq++ {
		msg, err := stream.GetMsg(context.Background(), seq)
		require.NoError(t, err)
		published[msg.Header.Get(jetstream.MsgIDHeader)] = msg.Subject
		var body rewardView
		require.NoError(t, json.Unmarshal(msg.Data, &body))
		created[body.ID] = body.CreatedAt
	}
	for _, r := range rs {
		require.Equal(t, bus.RewardSubject(r.CampaignID, event.Token(user)), published[r.ID], "reward %s", r.ID)
		require.False(t, r.CreatedAt.IsZero(), "reward %s has its commit time", r.ID)
		require.True(t, r.CreatedAt.Equal(created[r.ID]), "reward %s: created_at %v in the API, %v on REWARDS", r.ID, r.CreatedAt, created[r.ID])
	}

	// A user id with a space and a dot.
	require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": "n1", "user_id": "svc user.1", "type": "purchase", "amount": 300}))
	require.Equal(t, int64(30), e.waitUser("svc user.1", 1).Points)

	_, found := e.user("never-seen")
	require.False(t, found)
}

// duplicateIDGrantsOnce: an event id is applied once, whether the duplicate comes inside
// JetStream's window (also after a restart) or outside it (the processed record).
func duplicateIDGrantsOnce(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	ev := map[string]any{"id": "dup-1", "user_id": "u-dup", "type": "purchase", "amount": 100}
	require.Equal(t, receipt{}, in.send(t, &e.client, ev))
	require.Equal(t, receipt{duplicate: true}, in.send(t, &e.client, ev), "the second send is a duplicate")
	e.waitUser("u-dup", 1)

	// After a restart, JetStream's window still knows the id.
	e.restart()
	require.Equal(t, receipt{duplicate: true}, in.send(t, &e.client, ev), "a duplicate after a restart")

	// Outside the window (simulated: another Nats-Msg-Id), the processed record drops it.
	data, err := json.Marshal(ev)
	require.NoError(t, err)
	publishRaw(t, e.jetStream(), bus.EventSubject("u-dup"), "dup-1-replayed-later", data)
	// A later event shows the engine went past the duplicate.
	require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": "dup-2", "user_id": "u-dup", "type": "signup"}))
	u := e.waitUser("u-dup", 2)
	require.Equal(t, int64(10), u.Points)
	require.Equal(t, int64(1), u.PurchaseCount)
	require.Equal(t, map[string]int64{"purchase": 1, "signup": 1}, u.EventCounts)
	require.Len(t, e.rewards("u-dup"), 1)
}

// invalidEventIsRefusedWithItsReason: an event breaking a rule of DESIGN §4 changes
// nothing; HTTP answers 400 naming the field, NATS parks it in the DLQ with a reason
// naming the field.
func invalidEventIsRefusedWithItsReason(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	const user = "careless-shop"
	invalid := []struct {
		field string
		ev    map[string]any
	}{
		{"amount", map[string]any{"id": "bad-amount", "user_id": user, "type": "purchase", "amount": -1}},
		{"type", map[string]any{"id": "bad-type", "user_id": user, "type": "Purchase", "amount": 100}},
		{"currency", map[string]any{"id": "bad-currency", "user_id": user, "type": "purchase", "amount": 100, "currency": "XYZ"}},
	}
	for _, tc := range invalid {
		r := in.send(t, &e.client, tc.ev)
		if in.features.refusesSynchronously {
			require.NotNil(t, r.refused, "event %v: refused at once", tc.ev["id"])
			require.Equal(t, http.StatusBadRequest, r.refused.Status)
			require.Equal(t, tc.field, r.refused.Field, "event %v: the problem names the field", tc.ev["id"])
		} else {
			require.Equal(t, receipt{}, r, "event %v: stored, to be parked by the engine", tc.ev["id"])
		}
	}
	// The user's events are applied in order: once this one is, the invalid ones were
	// dealt with.
	require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": "good-1", "user_id": user, "type": "purchase", "amount": 100}))
	u := e.waitUser(user, 1)
	require.Equal(t, map[string]int64{"purchase": 1}, u.EventCounts, "the invalid events changed nothing")
	require.Equal(t, int64(1), u.PurchaseCount)
	require.InDelta(t, 100.0, u.TotalSpent, 1e-9)
	require.Equal(t, int64(10), u.Points)
	require.Len(t, e.rewards(user), 1)
	for _, tc := range invalid {
		id := tc.ev["id"].(string)
		if in.features.refusesSynchronously {
			_, parked := e.parked(id)
			require.False(t, parked, "event %s: refused at once, never stored, never parked", id)
			continue
		}
		en := e.waitParked(id)
		require.Contains(t, en.Reason, tc.field+":", "event %s: the DLQ reason names the field", id)
		sent, err := json.Marshal(tc.ev)
		require.NoError(t, err)
		require.JSONEq(t, string(sent), string(en.Event), "event %s: the DLQ keeps the event as sent", id)
	}
}

// reservedTypeIsRefused: the engine's own types (points.*) are refused from outside on
// every path (DESIGN §4, §11): HTTP answers 400 naming the type; over NATS the event is
// parked in the DLQ with a reason; neither changes the user.
func reservedTypeIsRefused(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	const user = "forger"
	require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": "honest-1", "user_id": user, "type": "purchase", "amount": 100}))
	before := e.waitUser(user, 1)
	ledgerBefore := e.ledger(user)

	forged := []map[string]any{
		{"id": "forged-adjust", "user_id": user, "type": "points.adjust",
			"attributes": map[string]any{"points": 500, "reason": "free points", "admin": "admin"}},
		{"id": "forged-expire", "user_id": user, "type": "points.expire"},
	}
	for _, ev := range forged {
		r := in.send(t, &e.client, ev)
		if in.features.refusesSynchronously {
			require.NotNil(t, r.refused, "event %v: refused at once", ev["id"])
			require.Equal(t, http.StatusBadRequest, r.refused.Status)
			require.Equal(t, "type", r.refused.Field, "event %v: the problem names the field", ev["id"])
		} else {
			require.Equal(t, receipt{}, r, "event %v: stored, to be parked by the engine", ev["id"])
		}
	}
	// Applied in order after the forged events.
	require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": "honest-2", "user_id": user, "type": "signup"}))
	var after userView
	poll(t, patience, "honest-2 applied", func() bool {
		after, _ = e.user(user)
		return after.EventCounts["signup"] == 1
	})
	// Not fatal, so that every difference shows.
	assert.Equal(t, before.Points, after.Points, "points: a points.* event from outside the engine changed the balance")
	assert.Equal(t, before.LifetimePoints, after.LifetimePoints, "lifetime points")
	assert.Equal(t, map[string]int64{"purchase": 1, "signup": 1}, after.EventCounts, "event counts: a points.* event from outside the engine was applied")
	assert.Equal(t, ledgerBefore, e.ledger(user), "ledger: a points.* event from outside the engine wrote to it")
	for _, ev := range forged {
		id := ev["id"].(string)
		if in.features.refusesSynchronously {
			_, parked := e.parked(id)
			require.False(t, parked, "event %s: refused at once, never stored, never parked", id)
			continue
		}
		en := e.waitParked(id)
		require.Contains(t, en.Reason, "points.", "event %s: the DLQ reason names the reserved type", id)
	}
}

// perUserOrderHolds: a user's events are applied in the order they were stored. Each
// user sends purchases of 1, 2, 4, …: each is above all the user spent before it, so a
// rule granting "above everything spent so far" grants every one of them only if none was
// applied after a later one.
func perUserOrderHolds(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "new-high", "name": "a purchase above all earlier spend", "status": "active",
		"rule":   `event.type == "purchase" && event.amount > user.total_spent`,
		"reward": map[string]any{"type": "points", "points": 1},
	})
	const users, n = 8, 16
	c := &e.client
	c.jetStream() // connect on the test's goroutine
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, together(users, func(u int) error {
		for i := range n {
			ev := map[string]any{"id": fmt.Sprintf("order-%d-%d", u, i), "user_id": fmt.Sprintf("order-user-%d", u),
				"type": "purchase", "amount": float64(int(1) << i)}
			if err := in.store(ctx, c, ev, nil); err != nil {
				return err
			}
		}
		return nil
	}))
	for u := range users {
		id := fmt.Sprintf("order-user-%d", u)
		v := e.waitUser(id, n)
		require.Equal(t, int64(n), v.PurchaseCount, id)
		require.InDelta(t, float64(int(1)<<n-1), v.TotalSpent, 1e-9, id)
		var want, granted []string
		for i := range n {
			want = append(want, fmt.Sprintf("order-%d-%d", u, i))
		}
		for _, r := range e.rewards(id) {
			granted = append(granted, r.EventID)
		}
		require.ElementsMatch(t, want, granted, "%s: a purchase not granted was applied after a later one", id)
		require.Equal(t, int64(n), v.Points, id)
	}
}

// exactlyOnceAcrossKillNine: under load through the ingester, campaignd is SIGKILLed and
// restarted on the same data; every stored event is applied exactly once.
func exactlyOnceAcrossKillNine(t *testing.T, in ingester) {
	if testing.Short() {
		t.Skip("crash test: builds and kills a campaignd process")
	}
	const rounds = 2
	l := purchaseLoad{name: "k9-" + in.name, users: 8, perUser: 40}
	d, c := startCrashDaemon(t, in)
	var st ingestStats
	killedAt := killUnderLoad(t, d, c, in, l, rounds, &st)
	t.Logf("%s: %d SIGKILL rounds at %v events stored; %d events of %d users; %s",
		in.name, rounds, killedAt, l.users*l.perUser, l.users, &st)
	l.requireExactlyOnce(t, c, 30*time.Second)
}

// pausedCampaignStopsGranting: pausing a campaign through the admin API takes effect
// without a restart, and activating it again grants again.
func pausedCampaignStopsGranting(t *testing.T, in ingester) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	purchase := func(id string) {
		t.Helper()
		require.Equal(t, receipt{}, in.send(t, &e.client, map[string]any{"id": id, "user_id": "u-pause", "type": "purchase", "amount": 100}))
	}
	purchase("p1")
	require.Equal(t, int64(10), e.waitUser("u-pause", 1).Points)

	e.do("POST", "/v1/campaigns/ten-percent/pause", e.token, nil, http.StatusOK, nil)
	poll(t, patience, "the paused campaign left the engine's rules", func() bool { return e.app.engine.Rules().Len() == 0 })
	purchase("p2")
	u := e.waitUser("u-pause", 2)
	require.Equal(t, int64(10), u.Points, "a paused campaign granted")
	require.Len(t, e.rewards("u-pause"), 1)

	e.do("POST", "/v1/campaigns/ten-percent/activate", e.token, nil, http.StatusOK, nil)
	poll(t, patience, "the activated campaign is back in the engine's rules", func() bool { return e.app.engine.Rules().Len() == 1 })
	purchase("p3")
	u = e.waitUser("u-pause", 3)
	require.Equal(t, int64(20), u.Points)
	var events []string
	for _, r := range e.rewards("u-pause") {
		events = append(events, r.EventID)
	}
	require.Equal(t, []string{"p1", "p3"}, events)
}
