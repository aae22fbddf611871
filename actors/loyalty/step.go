package loyalty

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Input is what Step needs besides the user's committed state.
type Input struct {
	Event *event.Event
	// Seq is the event's EVENTS stream sequence; it becomes the user's LastSeq.
	Seq uint64
	// Original is the effect of the earlier event a refund names; nil when there is none
	// (the refund is then refused).
	Original *EventEffect
	// Tiers is the tier configuration in force; nil means no tiers.
	Tiers *TierConfig
}

// Evaluator runs the campaign rules for ev against user, the state rules see (the
// user's state before the event, after the points that expired by its time have left).
// It returns the matching campaigns and what their rewards take from the campaigns'
// budgets (reserved by the caller until the decision's commit settles them).
type Evaluator func(ev *event.Event, user *User) ([]campaign.Match, map[string]BudgetDelta, error)

// Step applies one event to base, a user's committed state, and returns the decision:
// the new state (Version base.Version+1, LastSeq in.Seq) and everything to store with it
// (rewards, ledger entries, the event's effect, a refund, budget deltas, a tier change).
// An event the loyalty model refuses (a redeem over the balance, a refund of an unknown
// event, an adjustment below zero, ...) is not an error: the decision says why in
// Rejected and changes nothing but LastRejection (points that expired by the event's
// time still leave). Only an error from evaluate is returned, with no decision. Step
// never modifies base; it is a pure function of its arguments and evaluate.
func Step(base *User, in Input, evaluate Evaluator) (Decision, error) {
	ev := in.Event
	s := prepare(base, ev)
	if reason := s.refusal(ev, in.Original); reason != "" {
		s.reject(ev, in.Seq, reason, base)
		return s.decision(ev, in.Seq), nil
	}
	matches, budget, err := evaluate(ev, &s.user)
	if err != nil {
		return Decision{}, err
	}
	s.budget = budget
	s.apply(ev, in.Seq, matches, in.Original, base)
	if reason := overMaximum(&s.user); reason != "" {
		s = prepare(base, ev) // refused whole: nothing of the event applies
		s.reject(ev, in.Seq, reason, base)
		return s.decision(ev, in.Seq), nil
	}
	s.reviewTier(in.Tiers, ev)
	return s.decision(ev, in.Seq), nil
}

// overMaximum says why u's points are past their bounds, or "".
func overMaximum(u *User) string {
	switch {
	case u.Points > MaxBalance:
		return fmt.Sprintf("points: the balance would be %d, over the maximum of %d", u.Points, int64(MaxBalance))
	case u.LifetimePoints > MaxBalance:
		return fmt.Sprintf("points: lifetime points would be %d, over the maximum of %d", u.LifetimePoints, int64(MaxBalance))
	}
	return ""
}

// NeedsOriginal reports whether Step needs the effect of an earlier event to apply ev (a
// refund), which only the store can give; such an event is never applied in a chain.
func NeedsOriginal(ev *event.Event) bool { return ev.Type == event.TypeRefund }

func (s *step) decision(ev *event.Event, seq uint64) Decision {
	return Decision{
		EventID:    ev.ID,
		EventType:  ev.Type,
		StreamSeq:  int64(seq),
		OccurredAt: ev.OccurredAt.UTC(),
		User:       s.user,
		Rewards:    s.rewards,
		Ledger:     s.ledger,
		Effect:     s.effect,
		Refund:     s.refund,
		Budget:     s.budget,
		TierChange: s.tierChange,
		Rejected:   s.rejected,
	}
}

// step is what one event does to a user while Step builds its decision.
type step struct {
	user       User
	rewards    []Reward
	ledger     []LedgerEntry
	effect     *EventEffect
	refund     *RefundApplied
	budget     map[string]BudgetDelta
	tierChange *TierChange
	rejected   string
}

// prepare starts a step for ev from the committed state u: a copy that the step may
// change (u itself is never changed), with the points that expired by the event's time
// taken out. Rules see the state prepare returns.
func prepare(u *User, ev *event.Event) *step {
	next := *u
	next.EventCounts = cloneMap(u.EventCounts)
	next.RewardCounts = cloneMap(u.RewardCounts)
	next.RewardDays = maps.Clone(u.RewardDays) // usually nil: only per-day limited campaigns
	next.History = slices.Clone(u.History)     // buckets' maps are copied when written
	next.Lots = slices.Clone(u.Lots)
	s := &step{user: next}
	s.expire(ev)
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}

// expire takes out the lots whose expiry is at or before the event's time, oldest first.
func (s *step) expire(ev *event.Event) {
	u := &s.user
	at := ev.OccurredAt.UTC()
	n := 0
	for n < len(u.Lots) && u.Lots[n].ExpiresAt != nil && !u.Lots[n].ExpiresAt.After(at) {
		lot := u.Lots[n]
		u.Points -= lot.Points
		s.ledger = append(s.ledger, LedgerEntry{
			Kind: LedgerExpire, Points: -lot.Points, BalanceAfter: u.Points,
			EventID: ev.ID, ExpiresAt: lot.ExpiresAt, OccurredAt: *lot.ExpiresAt, Reason: "points expired",
		})
		n++
	}
	u.Lots = u.Lots[n:]
	s.setNextExpiry()
}

func (s *step) setNextExpiry() {
	s.user.NextExpiry = nil
	if len(s.user.Lots) > 0 && s.user.Lots[0].ExpiresAt != nil {
		t := *s.user.Lots[0].ExpiresAt
		s.user.NextExpiry = &t
	}
}

// OriginalEventID is the event a refund names.
func OriginalEventID(ev *event.Event) string {
	id, _ := ev.Attributes["original_event_id"].(string)
	return id
}

// wholePoints reads a whole number of points from a JSON number.
func wholePoints(v any) (int64, bool) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1e15 {
		return 0, false
	}
	return int64(f), true
}

// refundAmount is the amount a refund takes back: its amount, or all that is left.
func refundAmount(ev *event.Event, orig *EventEffect) float64 {
	if ev.Amount > 0 {
		return ev.Amount
	}
	return orig.Amount - orig.RefundedAmount
}

// refusal says why ev cannot apply to the prepared state, or "" when it can. orig is the
// effect of the event a refund names (nil when unknown).
func (s *step) refusal(ev *event.Event, orig *EventEffect) string {
	u := &s.user
	switch ev.Type {
	case event.TypeRedeem:
		p, ok := wholePoints(ev.Amount)
		if !ok || p <= 0 {
			return "redeem: amount must be a whole number of points greater than 0"
		}
		if p > u.Points {
			return fmt.Sprintf("redeem: cannot redeem %d points, the balance is %d", p, u.Points)
		}
	case event.TypeRefund:
		id := OriginalEventID(ev)
		switch {
		case id == "":
			return "refund: attributes.original_event_id is required"
		case orig == nil || orig.UserID != ev.UserID:
			return fmt.Sprintf("refund: unknown event %q for this user (never processed, or before the refund horizon)", id)
		case orig.Amount <= 0:
			return fmt.Sprintf("refund: event %q had no amount to refund", id)
		case orig.Amount-orig.RefundedAmount <= 1e-9:
			return fmt.Sprintf("refund: event %q is already fully refunded", id)
		case refundAmount(ev, orig) > orig.Amount-orig.RefundedAmount+1e-9:
			return fmt.Sprintf("refund: %.2f exceeds the %.2f left to refund of event %q",
				refundAmount(ev, orig), orig.Amount-orig.RefundedAmount, id)
		}
	case event.TypeAdjust:
		p, ok := wholePoints(ev.Attributes["points"])
		if !ok || p == 0 || p > MaxPoints || p < -MaxPoints {
			return fmt.Sprintf("points.adjust: attributes.points must be a whole number other than 0, between %d and %d", -int64(MaxPoints), int64(MaxPoints))
		}
		if u.Points+p < 0 {
			return fmt.Sprintf("points.adjust: %d would take the balance %d below zero", p, u.Points)
		}
	}
	return ""
}

// reject records that ev was refused: nothing changes but the last rejection.
func (s *step) reject(ev *event.Event, seq uint64, reason string, base *User) {
	s.rejected = reason
	s.user.LastRejection = &Rejection{EventID: ev.ID, Type: ev.Type, Reason: reason, At: ev.OccurredAt.UTC()}
	s.user.LastSeq = int64(seq)
	s.user.Version = base.Version + 1
}

// day returns the history bucket of day d for writing, creating it in order.
func (s *step) day(d int32) *DayStat {
	h := s.user.History
	i, found := slices.BinarySearchFunc(h, d, func(b DayStat, d int32) int { return int(b.Day - d) })
	if !found {
		h = slices.Insert(h, i, DayStat{Day: d})
	}
	h[i].Counts = cloneMap(h[i].Counts) // copy on write: the committed state shares it
	s.user.History = h
	return &h[i]
}

// apply adds ev and the rewards of matches to the prepared state.
func (s *step) apply(ev *event.Event, seq uint64, matches []campaign.Match, orig *EventEffect, base *User) {
	u := &s.user
	at := ev.OccurredAt.UTC()
	if u.FirstSeen.IsZero() || at.Before(u.FirstSeen) {
		u.FirstSeen = at
	}
	s.applyType(ev, orig, at)
	var earned int64
	var byCampaign map[string]int64
	for _, m := range matches {
		if p := s.grant(ev, m, at); p > 0 {
			earned += p
			if byCampaign == nil {
				byCampaign = map[string]int64{}
			}
			byCampaign[m.Campaign.ID] += p
		}
	}
	if (ev.Type == event.TypePurchase && ev.Amount > 0) || earned > 0 {
		f := &EventEffect{EventID: ev.ID, UserID: u.UserID, EventType: ev.Type,
			Points: earned, CampaignPoints: byCampaign, OccurredAt: at}
		if ev.Type == event.TypePurchase {
			f.Amount = ev.Amount
		}
		s.effect = f
	}
	s.pruneHistory(at)
	s.setNextExpiry()
	u.LastSeq = int64(seq)
	u.Version = base.Version + 1
}

// applyType applies what ev means by its type: activity counts (not for the engine's own
// types), a purchase's spend, a refund, a redeem, an admin adjustment.
func (s *step) applyType(ev *event.Event, orig *EventEffect, at time.Time) {
	u := &s.user
	var today *DayStat
	if !event.IsReserved(ev.Type) { // the engine's own events are not activity
		today = s.day(DayOf(at))
		u.EventCounts[ev.Type]++
		today.Counts[ev.Type]++
	}
	switch ev.Type {
	case event.TypePurchase:
		u.PurchaseCount++
		u.TotalSpent += ev.Amount
		today.Spent += ev.Amount
		if u.LastPurchaseAt == nil || at.After(*u.LastPurchaseAt) {
			u.LastPurchaseAt = &at
		}
	case event.TypeRefund:
		s.applyRefund(ev, orig)
	case event.TypeRedeem:
		p, _ := wholePoints(ev.Amount)
		s.debit(p)
		s.ledger = append(s.ledger, LedgerEntry{Kind: LedgerRedeem, Points: -p,
			BalanceAfter: u.Points, EventID: ev.ID, OccurredAt: at})
	case event.TypeAdjust:
		p, _ := wholePoints(ev.Attributes["points"])
		if p > 0 {
			s.credit(p, nil)
		} else {
			s.debit(-p)
		}
		admin, _ := ev.Attributes["admin"].(string)
		reason, _ := ev.Attributes["reason"].(string)
		s.ledger = append(s.ledger, LedgerEntry{Kind: LedgerAdjust, Points: p,
			BalanceAfter: u.Points, EventID: ev.ID, Actor: admin, Reason: reason, OccurredAt: at})
	}
}

// grant adds the reward of the matched campaign m: points in a lot (with its expiry) and
// an earn entry, a coupon's code (or, for a reward from a pool, the pool the commit takes
// its code from), the counters per-user limits read. It returns the points earned.
func (s *step) grant(ev *event.Event, m campaign.Match, at time.Time) int64 {
	u := &s.user
	c := m.Campaign
	r := Reward{
		ID: RewardID(ev.ID, c.ID), UserID: u.UserID, CampaignID: c.ID, CampaignVersion: c.Version,
		EventID: ev.ID, Type: c.Reward.Type, OccurredAt: at,
	}
	payload := map[string]any{}
	if len(c.Reward.Data) > 0 {
		payload["data"] = c.Reward.Data
	}
	var earned int64
	switch c.Reward.Type {
	case campaign.RewardPoints:
		r.Points = m.Points
		if m.Points > 0 {
			var exp *time.Time
			if d, err := time.ParseDuration(c.Reward.ExpiresIn); err == nil && d > 0 {
				t := at.Add(d)
				exp = &t
				payload["expires_at"] = t
			}
			s.credit(m.Points, exp)
			u.LifetimePoints += m.Points
			earned = m.Points
			s.ledger = append(s.ledger, LedgerEntry{Kind: LedgerEarn, Points: m.Points,
				BalanceAfter: u.Points, EventID: ev.ID, RewardID: r.ID, CampaignID: c.ID,
				CampaignVersion: c.Version, ExpiresAt: exp, OccurredAt: at})
		}
	case campaign.RewardCoupon, campaign.RewardFreeShipping:
		if c.Reward.TakesCode() {
			// The code comes from the pool, assigned in the reward's own commit.
			r.Pool = c.Reward.Pool
			payload["pool"] = c.Reward.Pool
		} else if c.Reward.Type == campaign.RewardCoupon {
			payload["coupon_code"] = CouponCode(r.ID)
		}
	}
	r.Payload = payload
	u.RewardCounts[c.ID]++
	if c.Limits.PerUserPerDay > 0 { // only per-day limits need the day's count
		if u.RewardDays == nil {
			u.RewardDays = map[string]DayCount{}
		}
		dc := u.RewardDays[c.ID]
		if day := c.Day(at); dc.Day != day {
			dc = DayCount{Day: day}
		}
		dc.Count++
		u.RewardDays[c.ID] = dc
	}
	s.rewards = append(s.rewards, r)
	return earned
}

// applyRefund reverses the refunded share of the original event: points in proportion
// (all that is left on the last refund), spend, and on a full refund the purchase count.
func (s *step) applyRefund(ev *event.Event, orig *EventEffect) {
	u := &s.user
	amt := refundAmount(ev, orig)
	left := orig.Amount - orig.RefundedAmount
	final := amt >= left-1e-9
	reversed := orig.Points - orig.RefundedPoints
	if !final {
		reversed = min(reversed, int64(math.Round(float64(orig.Points)*amt/orig.Amount)))
	}
	u.TotalSpent -= amt
	if day := DayOf(orig.OccurredAt); day >= DayOf(ev.OccurredAt)-HistoryDays {
		b := s.day(day)
		b.Spent -= amt
		if final && orig.EventType == event.TypePurchase && b.Counts[event.TypePurchase] > 0 {
			b.Counts[event.TypePurchase]--
		}
	}
	if final && orig.EventType == event.TypePurchase && u.PurchaseCount > 0 {
		u.PurchaseCount--
	}
	if reversed > 0 {
		s.debit(reversed)
		s.ledger = append(s.ledger, LedgerEntry{Kind: LedgerReverse, Points: -reversed,
			BalanceAfter: u.Points, EventID: ev.ID, Reason: "refund of " + orig.EventID, OccurredAt: ev.OccurredAt.UTC()})
	}
	s.refund = &RefundApplied{EventID: orig.EventID, Amount: amt, Points: reversed}
	// Give the reversed points back to the campaigns' budgets, in proportion.
	if reversed > 0 && orig.Points > 0 {
		if s.budget == nil {
			s.budget = map[string]BudgetDelta{}
		}
		left := reversed
		ids := slices.Sorted(maps.Keys(orig.CampaignPoints))
		for k, id := range ids {
			share := reversed * orig.CampaignPoints[id] / orig.Points
			if k == len(ids)-1 {
				share = left
			}
			left -= share
			d := s.budget[id]
			d.Points -= share
			s.budget[id] = d
		}
	}
}

// credit adds p points in a lot expiring at exp (nil: never). Points first pay back a
// negative balance (left by reversing points already spent); only the rest is a lot.
func (s *step) credit(p int64, exp *time.Time) {
	u := &s.user
	lot := p
	if u.Points < 0 {
		lot = max(0, p+u.Points)
	}
	u.Points += p
	if lot == 0 {
		return
	}
	lots := u.Lots
	i := 0
	for i < len(lots) && lots[i].ExpiresAt != nil && (exp == nil || !lots[i].ExpiresAt.After(*exp)) {
		if exp != nil && lots[i].ExpiresAt.Equal(*exp) {
			lots[i].Points += lot
			return
		}
		i++
	}
	if exp == nil && i < len(lots) && lots[i].ExpiresAt == nil {
		lots[i].Points += lot
		return
	}
	u.Lots = slices.Insert(lots, i, Lot{Points: lot, ExpiresAt: exp})
}

// debit takes p points, from the soonest-expiring lots first. The balance may go below
// zero only when reversing points that were already spent.
func (s *step) debit(p int64) {
	u := &s.user
	u.Points -= p
	for p > 0 && len(u.Lots) > 0 {
		take := min(p, u.Lots[0].Points)
		u.Lots[0].Points -= take
		p -= take
		if u.Lots[0].Points == 0 {
			u.Lots = u.Lots[1:]
		}
	}
}

// pruneHistory drops days older than the history keeps.
func (s *step) pruneHistory(at time.Time) {
	oldest := DayOf(at) - HistoryDays + 1
	h := s.user.History
	n := 0
	for n < len(h) && h[n].Day < oldest {
		n++
	}
	if n > 0 {
		s.user.History = h[n:]
	}
}

// RewardID is derived from the event and the campaign, so a reprocessed event yields the
// same id and the REWARDS stream deduplicates it.
func RewardID(eventID, campaignID string) string {
	h := sha256.Sum256([]byte(eventID + "\x00" + campaignID))
	return "rw_" + hex.EncodeToString(h[:16])
}

// CouponCode is a deterministic, human-typable code for a coupon reward.
func CouponCode(rewardID string) string {
	h := sha256.Sum256([]byte("coupon\x00" + rewardID))
	return "CPN-" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:8])
}

// reviewTier moves the user to the tier the configuration gives after the event:
// upgrades at once; when the user no longer qualifies, down one tier at the first event
// of a month later than the last change or review.
func (s *step) reviewTier(cfg *TierConfig, ev *event.Event) {
	if cfg == nil {
		return
	}
	u := &s.user
	at := ev.OccurredAt.UTC()
	var value float64
	switch cfg.Basis {
	case TierBasisLifetimePoints:
		value = float64(u.LifetimePoints)
	case TierBasisSpend:
		from := DayOf(at) - int32(cfg.WindowDuration()/(24*time.Hour)) + 1
		for _, d := range u.History {
			if d.Day >= from && d.Day <= DayOf(at) {
				value += d.Spent
			}
		}
	}
	qualifies := -1
	for i, t := range cfg.Tiers {
		if value >= t.Threshold {
			qualifies = i
		}
	}
	current := -1
	known := u.Tier == ""
	for i, t := range cfg.Tiers {
		if t.Name == u.Tier {
			current, known = i, true
		}
	}
	month := at.Format("2006-01")
	name := func(i int) string {
		if i < 0 {
			return ""
		}
		return cfg.Tiers[i].Name
	}
	var to int
	var reason string
	switch {
	case !known: // the tier left the configuration: take what the user qualifies for
		to, reason = qualifies, "tier no longer configured"
	case qualifies > current:
		to, reason = qualifies, "upgrade"
	case qualifies < current && u.TierReviewed < month:
		to, reason = current-1, "monthly review: below the threshold of "+u.Tier
	default:
		return
	}
	if name(to) == u.Tier {
		return
	}
	s.tierChange = &TierChange{From: u.Tier, To: name(to), Reason: reason, OccurredAt: at}
	u.Tier = name(to)
	u.TierReviewed = month
}
