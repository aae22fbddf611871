package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

func TestRedeemDebitsPointsAndOverRedeemIsRefused(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "buy-1", "user_id": "r1", "type": "purchase", "amount": 200}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "use-1", "user_id": "r1", "type": "redeem", "amount": 5}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "use-2", "user_id": "r1", "type": "redeem", "amount": 100}, http.StatusAccepted)
	reason := e.waitRejection("r1", "use-2")
	require.Contains(t, reason, "cannot redeem 100 points, the balance is 15")
	u := e.state("r1")
	require.Equal(t, int64(15), u.Points)
	require.Equal(t, int64(20), u.LifetimePoints)
	require.Equal(t, []string{"earn", "redeem"}, e.ledgerKinds("r1"))
	require.Contains(t, strings.Join(e.waitDLQReasons(1), "\n"), "cannot redeem 100 points")
	// Replaying the refused event changes nothing.
	out := e.postEvent(map[string]any{"id": "use-2", "user_id": "r1", "type": "redeem", "amount": 100}, http.StatusOK)
	require.Equal(t, true, out["duplicate"])
}

func TestRefundsReversePointsProportionallyAndOnlyOnce(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "o-1", "user_id": "f1", "type": "purchase", "amount": 100}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "rf-1", "user_id": "f1", "type": "refund", "amount": 40,
		"attributes": map[string]any{"original_event_id": "o-1"}}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "rf-2", "user_id": "f1", "type": "refund",
		"attributes": map[string]any{"original_event_id": "o-1"}}, http.StatusAccepted)
	e.waitUser("f1", 3)
	u := e.state("f1")
	require.Equal(t, int64(0), u.Points)
	require.Equal(t, int64(0), u.PurchaseCount)
	require.InDelta(t, 0.0, u.TotalSpent, 1e-9)
	require.Equal(t, int64(10), u.LifetimePoints, "lifetime points record what was earned")
	require.Equal(t, []string{"earn", "reverse", "reverse"}, e.ledgerKinds("f1"))

	e.postEvent(map[string]any{"id": "rf-3", "user_id": "f1", "type": "refund",
		"attributes": map[string]any{"original_event_id": "o-1"}}, http.StatusAccepted)
	require.Contains(t, e.waitRejection("f1", "rf-3"), `event "o-1" is already fully refunded`)
	e.postEvent(map[string]any{"id": "rf-4", "user_id": "f1", "type": "refund",
		"attributes": map[string]any{"original_event_id": "nope"}}, http.StatusAccepted)
	require.Contains(t, e.waitRejection("f1", "rf-4"), `unknown event "nope"`)
	require.Equal(t, int64(0), e.state("f1").Points)
	reasons := strings.Join(e.waitDLQReasons(2), "\n")
	require.Contains(t, reasons, "already fully refunded")
	require.Contains(t, reasons, "unknown event")
}

func TestAdminAdjustmentsAreLedgeredAndCannotGoNegative(t *testing.T) {
	e := newEnv(t)
	var acc struct {
		EventID string `json:"event_id"`
	}
	e.do("POST", "/v1/users/"+url.PathEscape("a 1")+"/adjustments", e.token, map[string]any{"points": 50, "reason": "goodwill"}, http.StatusAccepted, &acc)
	require.NotEmpty(t, acc.EventID)
	poll(t, patience, "the first adjustment applied", func() bool { u, ok := e.user("a 1"); return ok && u.Points == 50 })
	e.do("POST", "/v1/users/"+url.PathEscape("a 1")+"/adjustments", e.token, map[string]any{"points": -80, "reason": "oops"}, http.StatusAccepted, &acc)
	require.Contains(t, e.waitRejection("a 1", acc.EventID), "below zero")
	require.Equal(t, []string{"adjust"}, e.ledgerKinds("a 1"))
	// Storefronts cannot send the engine's own event types.
	var p struct{ Field string }
	e.do("POST", "/v1/events", "key:"+e.apiKey, map[string]any{"id": "x", "user_id": "a 1", "type": "points.adjust"}, http.StatusBadRequest, &p)
	require.Equal(t, "type", p.Field)
	// Audited.
	var audit struct {
		Entries []struct{ Action string } `json:"entries"`
	}
	e.do("GET", "/v1/audit?target_type=user", e.token, nil, http.StatusOK, &audit)
	require.Len(t, audit.Entries, 2)
	require.Equal(t, "user.adjust_points", audit.Entries[0].Action)
}

func TestPointsExpireOldestFirstAndAreAnnounced(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "short-lived", "name": "points valid one day", "status": "active",
		"rule":   `event.type == "purchase"`,
		"reward": map[string]any{"type": "points", "points": "int(event.amount)", "expires_in": "24h"},
	})
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	e.postEvent(map[string]any{"id": "x-1", "user_id": "x1", "type": "purchase", "amount": 10, "occurred_at": at(-72 * time.Hour)}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "x-2", "user_id": "x1", "type": "purchase", "amount": 7, "occurred_at": at(-30 * time.Hour)}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "x-3", "user_id": "x1", "type": "redeem", "amount": 3, "occurred_at": at(-29 * time.Hour)}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "x-4", "user_id": "x1", "type": "page.view", "occurred_at": at(0)}, http.StatusAccepted)
	poll(t, patience, "x-4 applied", func() bool { return e.state("x1").EventCounts["page.view"] == 1 })
	// x-1's 10 points expired before x-2; x-3 took 3 of x-2's 7; the other 4 expired by x-4.
	require.Equal(t, int64(0), e.state("x1").Points)
	require.Equal(t, []string{"earn", "expire", "earn", "redeem", "expire"}, e.ledgerKinds("x1"))
	e.waitStreamMsgs(bus.LoyaltyStream, "", 2)
	s, err := e.jetStream().Stream(context.Background(), bus.LoyaltyStream)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "loyalty.points_expired."+event.Token("x1"))
	require.NoError(t, err)
	require.Contains(t, string(m.Data), `"points":4`)
}

func TestRulesSeeRecentHistoryWindows(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "third-in-a-month", "name": "third purchase within 30 days", "status": "active",
		"rule":   `event.type == "purchase" && user.count_within("purchase", duration("720h")) >= 2 && user.spent_within(duration("720h")) > 50.0`,
		"reward": map[string]any{"type": "points", "points": 100},
	})
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	post := func(id string, amount float64, ago time.Duration) {
		e.postEvent(map[string]any{"id": id, "user_id": "h1", "type": "purchase", "amount": amount, "occurred_at": at(-ago)}, http.StatusAccepted)
	}
	post("h-1", 40, 60*24*time.Hour) // outside the window
	post("h-2", 30, 10*24*time.Hour)
	post("h-3", 10, 5*24*time.Hour) // two in window but spend 30 (h-2 only before h-3)
	post("h-4", 10, 0)              // window: h-2, h-3 = 2 purchases, spend 40: no
	post("h-5", 10, 0)              // window: h-2, h-3, h-4 = 3, spend 50: no (not > 50)
	post("h-6", 10, 0)              // spend 60: yes
	e.waitUser("h1", 6)
	rs := e.rewards("h1")
	require.Len(t, rs, 1)
	require.Equal(t, "h-6", rs[0].EventID)
	var u struct {
		History []struct{ D int32 } `json:"history"`
	}
	e.do("GET", "/v1/users/h1", e.token, nil, http.StatusOK, &u)
	require.Len(t, u.History, 4, "one bucket per active day")
}

func TestPointsOfIdleUsersExpireWithoutNewEvents(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "one-hour", "name": "points valid one hour", "status": "active",
		"rule":   `event.type == "purchase"`,
		"reward": map[string]any{"type": "points", "points": 5, "expires_in": "1h"},
	})
	e.postEvent(map[string]any{"id": "i-1", "user_id": "idle", "type": "purchase", "amount": 1,
		"occurred_at": time.Now().UTC().Add(-90 * time.Minute).Format(time.RFC3339Nano)}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "i-2", "user_id": "idle", "type": "purchase", "amount": 1}, http.StatusAccepted)
	e.waitUser("idle", 2)
	// i-1's points were already gone when i-2 came; i-2's expire in an hour: not yet.
	require.Equal(t, int64(5), e.state("idle").Points)
	require.Equal(t, []string{"earn", "expire", "earn"}, e.ledgerKinds("idle"))

	e.postEvent(map[string]any{"id": "j-1", "user_id": "sleeper", "type": "purchase", "amount": 1,
		"occurred_at": time.Now().UTC().Add(-61 * time.Minute).Format(time.RFC3339Nano)}, http.StatusAccepted)
	// The sweep finds the due points and expires them with no further event of the user.
	poll(t, patience, "the sweep expired the sleeper's points", func() bool {
		u, ok := e.user("sleeper")
		return ok && u.LifetimePoints == 5 && u.Points == 0
	})
	require.Equal(t, []string{"earn", "expire"}, e.ledgerKinds("sleeper"))
	require.Equal(t, map[string]int64{"purchase": 1}, e.state("sleeper").EventCounts)
}

func TestBudgetsAreNeverExceededUnderConcurrentLoad(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "first-seven", "name": "seven rewards in all", "status": "active", "priority": 10,
		"rule": `event.type == "purchase"`, "limits": map[string]any{"total_rewards": 7},
		"reward": map[string]any{"type": "coupon"},
	})
	e.createCampaign(map[string]any{
		"id": "hundred-points", "name": "100 points in all", "status": "active",
		"rule": `event.type == "purchase"`, "limits": map[string]any{"total_points": 100},
		"reward": map[string]any{"type": "points", "points": 15},
	})
	const users, per = 40, 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, together(users, func(u int) error {
		evs := make([]map[string]any, per)
		for i := range evs {
			evs[i] = map[string]any{"id": fmt.Sprintf("b-%d-%d", u, i), "user_id": fmt.Sprintf("bu-%d", u), "type": "purchase", "amount": 1}
		}
		res, err := e.try(ctx, "POST", "/v1/events/batch", "key:"+e.apiKey, map[string]any{"events": evs})
		if err == nil && res.status != http.StatusOK {
			err = fmt.Errorf("batch of bu-%d: %d %s", u, res.status, res.body)
		}
		return err
	}))
	for u := 0; u < users; u++ {
		e.waitUser(fmt.Sprintf("bu-%d", u), per)
	}
	var coupons, pointsGranted, pointRewards int
	for u := 0; u < users; u++ {
		for _, r := range e.rewards(fmt.Sprintf("bu-%d", u)) {
			switch r.CampaignID {
			case "first-seven":
				coupons++
			case "hundred-points":
				pointRewards++
				pointsGranted += int(r.Points)
			}
		}
	}
	require.Equal(t, 7, coupons, "total_rewards is reached exactly")
	require.Equal(t, 6, pointRewards, "a seventh reward of 15 would pass 100 points")
	require.Equal(t, 90, pointsGranted)
	var st struct {
		Rewards int64 `json:"rewards"`
		Budget  struct {
			RewardsUsed int64 `json:"rewards_used"`
			RewardsLeft int64 `json:"rewards_left"`
			Exhausted   bool  `json:"exhausted"`
		} `json:"budget"`
	}
	e.do("GET", "/v1/campaigns/first-seven/stats", e.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(7), st.Rewards)
	require.Equal(t, int64(7), st.Budget.RewardsUsed)
	require.Equal(t, int64(0), st.Budget.RewardsLeft)
	require.True(t, st.Budget.Exhausted)
}

func TestTiersUpgradeAtOnceAndDowngradeMonthlyOneStepAtATime(t *testing.T) {
	e := newEnv(t)
	tiers := map[string]any{"basis": "spend", "window": "720h", "tiers": []map[string]any{
		{"name": "silver", "threshold": 100}, {"name": "gold", "threshold": 300}}}
	var cfg struct{ Version int64 }
	e.do("PUT", "/v1/tiers", e.token, tiers, http.StatusOK, &cfg)
	require.Equal(t, int64(1), cfg.Version)
	status, body := e.raw("PUT", "/v1/tiers", e.token, map[string]any{"basis": "spend", "tiers": []map[string]any{{"name": "Gold!", "threshold": 0}}})
	require.Equal(t, http.StatusBadRequest, status, string(body))
	require.Contains(t, string(body), "window")
	poll(t, patience, "the tiers reached the engine", func() bool { return e.app.engine.Tiers() != nil })

	e.createCampaign(map[string]any{
		"id": "gold-bonus", "name": "gold members get 50", "status": "active",
		"rule":   `event.type == "purchase" && user.tier == "gold"`,
		"reward": map[string]any{"type": "points", "points": 50},
	})
	post := func(id, typ string, amount float64, at string) {
		ev := map[string]any{"id": id, "user_id": "t1", "type": typ, "occurred_at": at}
		if amount > 0 {
			ev["amount"] = amount
		}
		e.postEvent(ev, http.StatusAccepted)
	}
	tier := func() string {
		var u struct{ Tier string }
		e.do("GET", "/v1/users/t1", e.token, nil, http.StatusOK, &u)
		return u.Tier
	}
	post("t-1", "purchase", 150, "2026-01-05T10:00:00Z")
	e.waitUser("t1", 1)
	require.Equal(t, "silver", tier(), "an upgrade applies at once")
	post("t-2", "purchase", 200, "2026-01-06T10:00:00Z")
	post("t-3", "purchase", 10, "2026-01-07T10:00:00Z")
	e.waitUser("t1", 3)
	require.Equal(t, "gold", tier())
	rs := e.rewards("t1")
	require.Len(t, rs, 1, "rules see the tier reached by the earlier event")
	require.Equal(t, "t-3", rs[0].EventID)

	post("t-4", "page.view", 0, "2026-03-15T10:00:00Z")
	e.waitUser("t1", 4)
	require.Equal(t, "silver", tier(), "one tier down at the first event of a later month")
	post("t-5", "page.view", 0, "2026-03-20T10:00:00Z")
	e.waitUser("t1", 5)
	require.Equal(t, "silver", tier(), "at most one step a month")
	post("t-6", "page.view", 0, "2026-04-02T10:00:00Z")
	e.waitUser("t1", 6)
	require.Equal(t, "", tier())

	e.waitStreamMsgs(bus.LoyaltyStream, "loyalty.tier_changed.>", 4)
	// Without If-Match any version is replaced; a stale If-Match is refused.
	status, _ = e.raw("PUT", "/v1/tiers", e.token, tiers)
	require.Equal(t, http.StatusOK, status)
	res := e.request("PUT", "/v1/tiers", e.token, `{"basis":"lifetime_points","tiers":[{"name":"vip","threshold":10}]}`, "If-Match", `"1"`)
	require.Equal(t, http.StatusPreconditionFailed, res.status, string(res.body))
}

func TestPerDayLimitFollowsTheCampaignsTimeZone(t *testing.T) {
	e := newEnv(t)
	e.createCampaign(map[string]any{
		"id": "daily-ny", "name": "one a day in New York", "status": "active", "time_zone": "America/New_York",
		"rule": `event.type == "purchase"`, "limits": map[string]any{"per_user_per_day": 1},
		"reward": map[string]any{"type": "points", "points": 1},
	})
	for i, at := range []string{
		"2026-01-01T15:00:00Z", // 1 Jan in New York: granted
		"2026-01-01T20:00:00Z", // same New York day: limit reached
		"2026-01-02T03:00:00Z", // 2 Jan in UTC but still 1 Jan in New York: limit reached
		"2026-01-02T06:00:00Z", // 2 Jan in New York: granted
	} {
		e.postEvent(map[string]any{"id": fmt.Sprintf("d-%d", i), "user_id": "daily", "type": "purchase", "amount": 1, "occurred_at": at}, http.StatusAccepted)
	}
	e.waitUser("daily", 4)
	var got []string
	for _, r := range e.rewards("daily") {
		got = append(got, r.EventID)
	}
	require.Equal(t, []string{"d-0", "d-3"}, got)
	status, body := e.raw("POST", "/v1/campaigns", e.token, map[string]any{"id": "bad-zone", "name": "x", "time_zone": "Nowhere/Land",
		"rule": "true", "reward": map[string]any{"type": "coupon"}})
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, string(body), "time_zone")
}

func TestAdminsChangeTheirOwnPassword(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/v1/admins", e.token, map[string]any{"username": "vera", "password": "viewer-pass-1", "role": "viewer"}, http.StatusCreated, nil)
	tok := e.login("vera", "viewer-pass-1")
	status, _ := e.raw("PUT", "/v1/auth/password", tok, map[string]any{"current_password": "wrong-one", "new_password": "viewer-pass-2"})
	require.Equal(t, http.StatusForbidden, status)
	status, body := e.raw("PUT", "/v1/auth/password", tok, map[string]any{"current_password": "viewer-pass-1", "new_password": "viewer-pass-2"})
	require.Equal(t, http.StatusNoContent, status, string(body))
	status, _ = e.raw("POST", "/v1/auth/token", "", map[string]any{"username": "vera", "password": "viewer-pass-1"})
	require.Equal(t, http.StatusUnauthorized, status)
	e.login("vera", "viewer-pass-2")
}
