package loyalty

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

var day0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// noRules matches nothing.
func noRules(*event.Event, *User) ([]campaign.Match, map[string]BudgetDelta, error) {
	return nil, nil, nil
}

// pointsEach grants p points from campaign id for every purchase.
func pointsEach(id string, p int64, expiresIn string) Evaluator {
	c := &campaign.Campaign{ID: id, Version: 3, Reward: campaign.Reward{Type: campaign.RewardPoints, ExpiresIn: expiresIn}}
	return func(ev *event.Event, _ *User) ([]campaign.Match, map[string]BudgetDelta, error) {
		if ev.Type != event.TypePurchase {
			return nil, nil, nil
		}
		return []campaign.Match{{Campaign: c, Points: p}}, nil, nil
	}
}

// steps applies evs in order from a new user and returns every decision.
func steps(t *testing.T, eval Evaluator, tiers *TierConfig, evs ...event.Event) []Decision {
	t.Helper()
	u := NewUser("u")
	var out []Decision
	var effects = map[string]*EventEffect{}
	for i := range evs {
		ev := &evs[i]
		var orig *EventEffect
		if NeedsOriginal(ev) {
			orig = effects[OriginalEventID(ev)]
		}
		d, err := Step(&u, Input{Event: ev, Seq: uint64(i + 1), Original: orig, Tiers: tiers}, eval)
		if err != nil {
			t.Fatal(err)
		}
		if d.Effect != nil {
			effects[d.EventID] = d.Effect
		}
		if d.Refund != nil {
			e := effects[d.Refund.EventID]
			e.RefundedAmount += d.Refund.Amount
			e.RefundedPoints += d.Refund.Points
		}
		out = append(out, d)
		u = d.User
	}
	return out
}

func ev(id, typ string, amount float64, at time.Time, attrs map[string]any) event.Event {
	return event.Event{ID: id, UserID: "u", Type: typ, Amount: amount, OccurredAt: at, Attributes: attrs}
}

func TestStepKeepsTheLedgerAndTheBalanceEqual(t *testing.T) {
	ds := steps(t, pointsEach("ten", 10, ""), nil,
		ev("p1", event.TypePurchase, 100, day0, nil),
		ev("p2", event.TypePurchase, 50, day0.Add(time.Hour), nil),
		ev("r1", event.TypeRedeem, 15, day0.Add(2*time.Hour), nil),
		ev("a1", event.TypeAdjust, 0, day0.Add(3*time.Hour), map[string]any{"points": -3.0, "reason": "goodwill", "admin": "ann"}),
	)
	var sum int64
	for _, d := range ds {
		for _, l := range d.Ledger {
			sum += l.Points
		}
	}
	last := ds[len(ds)-1].User
	if sum != last.Points || last.Points != 2 || last.LifetimePoints != 20 {
		t.Fatalf("ledger sum %d, balance %d, lifetime %d; want 2, 2, 20", sum, last.Points, last.LifetimePoints)
	}
	if last.Version != 4 || last.LastSeq != 4 || last.PurchaseCount != 2 || last.TotalSpent != 150 {
		t.Fatalf("state %+v", last)
	}
	if last.EventCounts[event.TypeAdjust] != 0 {
		t.Fatal("the engine's own events are not counted as activity")
	}
}

func TestStepRefusesWhatTheLoyaltyModelForbids(t *testing.T) {
	cases := []struct {
		name   string
		events []event.Event
		reason string
	}{
		{"redeem over the balance", []event.Event{ev("r", event.TypeRedeem, 5, day0, nil)}, "cannot redeem 5 points"},
		{"redeem of a fraction", []event.Event{ev("r", event.TypeRedeem, 1.5, day0, nil)}, "whole number"},
		{"refund of an unknown event", []event.Event{ev("f", event.TypeRefund, 1, day0, map[string]any{"original_event_id": "nope"})}, "unknown event"},
		{"refund without an original", []event.Event{ev("f", event.TypeRefund, 1, day0, nil)}, "original_event_id is required"},
		{"refund of more than is left", []event.Event{ev("p", event.TypePurchase, 10, day0, nil),
			ev("f", event.TypeRefund, 11, day0, map[string]any{"original_event_id": "p"})}, "exceeds"},
		{"adjustment below zero", []event.Event{ev("a", event.TypeAdjust, 0, day0, map[string]any{"points": -1.0})}, "below zero"},
		{"adjustment over the maximum", []event.Event{ev("a", event.TypeAdjust, 0, day0, map[string]any{"points": 1e12 + 1})}, "between -1000000000000 and 1000000000000"},
		{"a grant past the maximum balance", maxedOut(ev("p", event.TypePurchase, 10, day0, nil)), "the balance would be 1000000000000001, over the maximum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eval := pointsEach("ten", 10, "")
			if tc.name == "a grant past the maximum balance" {
				eval = pointsEach("max", MaxPoints, "")
			}
			ds := steps(t, eval, nil, tc.events...)
			d := ds[len(ds)-1]
			if !strings.Contains(d.Rejected, tc.reason) {
				t.Fatalf("rejected = %q, want it to say %q", d.Rejected, tc.reason)
			}
			if d.User.LastRejection == nil || d.User.LastRejection.EventID != d.EventID || len(d.Rewards) != 0 {
				t.Fatalf("a refusal records last_rejection and grants nothing: %+v", d)
			}
		})
	}
}

// maxedOut is the adjustments that bring a balance to MaxBalance-MaxPoints+1, then last.
func maxedOut(last event.Event) []event.Event {
	var evs []event.Event
	for i := range MaxBalance/MaxPoints - 1 {
		evs = append(evs, ev(fmt.Sprint("a", i), event.TypeAdjust, 0, day0, map[string]any{"points": float64(MaxPoints)}))
	}
	evs = append(evs, ev("one", event.TypeAdjust, 0, day0, map[string]any{"points": 1.0}), last)
	return evs
}

func TestRefundsReversePointsInProportionAndTheLastTakesTheRest(t *testing.T) {
	ds := steps(t, pointsEach("ten", 33, ""), nil,
		ev("p", event.TypePurchase, 90, day0, nil),
		ev("f1", event.TypeRefund, 30, day0.Add(time.Hour), map[string]any{"original_event_id": "p"}),
		ev("f2", event.TypeRefund, 0, day0.Add(2*time.Hour), map[string]any{"original_event_id": "p"}), // all that is left
	)
	if got := ds[1].Refund.Points; got != 11 {
		t.Fatalf("a third of the amount reverses %d points, want 11", got)
	}
	last := ds[2]
	if last.Refund.Points != 22 || last.User.Points != 0 || last.User.PurchaseCount != 0 || last.User.TotalSpent != 0 {
		t.Fatalf("the final refund takes the rest: %+v, user %+v", last.Refund, last.User)
	}
	if last.User.LifetimePoints != 33 {
		t.Fatal("refunds do not lower lifetime points")
	}
	var back int64
	for _, d := range ds[1:] {
		back += -d.Budget["ten"].Points
	}
	if back != 33 {
		t.Fatalf("%d points go back to the campaign's budget, want 33", back)
	}
}

func TestPointsExpireOldestFirstOnEventTimeAndRedeemSpendsSoonestFirst(t *testing.T) {
	month := 30 * 24 * time.Hour
	short, long := pointsEach("short", 10, "720h"), pointsEach("long", 10, "1440h")
	u := NewUser("u")
	var d Decision
	var err error
	for i, x := range []struct {
		e    event.Event
		eval Evaluator
	}{
		{ev("p1", event.TypePurchase, 1, day0, nil), long},
		{ev("p2", event.TypePurchase, 1, day0, nil), short},
		{ev("r", event.TypeRedeem, 5, day0.Add(time.Hour), nil), noRules},
		{ev("v", "view", 0, day0.Add(month+time.Hour), nil), noRules},
	} {
		d, err = Step(&u, Input{Event: &x.e, Seq: uint64(i + 1)}, x.eval)
		if err != nil {
			t.Fatal(err)
		}
		u = d.User
	}
	// The redeem took 5 of the short lot; a month later its 5 left expired, the long lot stays.
	if u.Points != 10 || len(u.Lots) != 1 || u.Lots[0].Points != 10 {
		t.Fatalf("balance %d, lots %+v; want 10 in the long lot", u.Points, u.Lots)
	}
	if len(d.Ledger) != 1 || d.Ledger[0].Kind != LedgerExpire || d.Ledger[0].Points != -5 {
		t.Fatalf("expiry entry %+v", d.Ledger)
	}
}

func TestTiersUpgradeAtOnceAndDropOneStepAtTheNextMonth(t *testing.T) {
	tiers := &TierConfig{Basis: TierBasisLifetimePoints, Tiers: []Tier{{Name: "silver", Threshold: 10}, {Name: "gold", Threshold: 20}}}
	ds := steps(t, pointsEach("ten", 25, ""), tiers, ev("p", event.TypePurchase, 1, day0, nil))
	if ds[0].User.Tier != "gold" || ds[0].TierChange == nil || ds[0].TierChange.Reason != "upgrade" {
		t.Fatalf("upgrade: tier %q change %+v", ds[0].User.Tier, ds[0].TierChange)
	}
	// Thresholds rise: gold no longer qualifies; nothing changes until a later month.
	harder := &TierConfig{Basis: TierBasisLifetimePoints, Tiers: []Tier{{Name: "silver", Threshold: 10}, {Name: "gold", Threshold: 100}}}
	u := ds[0].User
	same, err := Step(&u, Input{Event: &event.Event{ID: "v1", UserID: "u", Type: "view", OccurredAt: day0.Add(time.Hour)}, Seq: 2, Tiers: harder}, noRules)
	if err != nil || same.User.Tier != "gold" {
		t.Fatalf("same month: %q %v", same.User.Tier, err)
	}
	u = same.User
	next, err := Step(&u, Input{Event: &event.Event{ID: "v2", UserID: "u", Type: "view", OccurredAt: day0.AddDate(0, 1, 0)}, Seq: 3, Tiers: harder}, noRules)
	if err != nil || next.User.Tier != "silver" || next.TierChange == nil {
		t.Fatalf("next month drops one step: %q %+v %v", next.User.Tier, next.TierChange, err)
	}
}

func TestStepNeverModifiesItsBase(t *testing.T) {
	base := NewUser("u")
	base.Points = 10
	base.Lots = []Lot{{Points: 10}}
	before := EncodeCompact(&base)
	e := ev("p", event.TypePurchase, 5, day0, nil)
	if _, err := Step(&base, Input{Event: &e, Seq: 1}, pointsEach("ten", 3, "")); err != nil {
		t.Fatal(err)
	}
	if string(EncodeCompact(&base)) != string(before) {
		t.Fatal("Step changed the state it was given")
	}
}

// TestRewardsFromAPoolWaitForTheirCodeFromTheCommit: a coupon or free_shipping reward
// that names a pool carries the pool and no code (the commit assigns one); a coupon
// without a pool keeps its deterministic code.
func TestRewardsFromAPoolWaitForTheirCodeFromTheCommit(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reward   campaign.Reward
		pool     string
		wantCode bool
	}{
		{"coupon from a pool", campaign.Reward{Type: campaign.RewardCoupon, Pool: "spring"}, "spring", false},
		{"free shipping from a pool", campaign.Reward{Type: campaign.RewardFreeShipping, Pool: "ship"}, "ship", false},
		{"coupon without a pool", campaign.Reward{Type: campaign.RewardCoupon}, "", true},
		{"free shipping without a pool", campaign.Reward{Type: campaign.RewardFreeShipping}, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &campaign.Campaign{ID: "c", Version: 1, Reward: tt.reward}
			eval := func(*event.Event, *User) ([]campaign.Match, map[string]BudgetDelta, error) {
				return []campaign.Match{{Campaign: c}}, nil, nil
			}
			ds := steps(t, eval, nil, event.Event{ID: "e1", UserID: "u", Type: event.TypePurchase, Amount: 5, OccurredAt: day0})
			r := ds[0].Rewards[0]
			if r.Pool != tt.pool {
				t.Errorf("Pool = %q, want %q", r.Pool, tt.pool)
			}
			code, has := r.Payload["coupon_code"]
			if has != tt.wantCode || (has && code != CouponCode(r.ID)) {
				t.Errorf("payload %v: coupon_code present %v, want %v", r.Payload, has, tt.wantCode)
			}
			if tt.pool != "" && r.Payload["pool"] != tt.pool {
				t.Errorf("payload %v: pool not named", r.Payload)
			}
		})
	}
}
