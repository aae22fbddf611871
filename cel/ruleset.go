package cel

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Compiled is a valid campaign with its rule and points expression compiled.
type Compiled struct {
	Campaign campaign.Campaign
	rule     *Rule
	points   *Points
}

// Rule returns the compiled rule.
func (c *Compiled) Rule() *Rule { return c.rule }

// Points returns the compiled points expression, or nil when the reward is not points.
func (c *Compiled) Points() *Points { return c.points }

// RuleSet is the active campaigns, compiled and in evaluation order (priority
// descending, then id ascending). It is immutable after NewRuleSet and safe for
// concurrent use; build a new one when campaigns change.
type RuleSet struct {
	compiled []Compiled
	// byType lists the campaigns whose rule can match each event type (Rule.Matches);
	// byAttr the campaigns whose rule can match each value of an attribute several rules
	// compare (see index.go).
	byType ruleIndex
	byAttr []attrIndex
	// exprs are the compiled expressions of every campaign of the set, active or not,
	// for the next set to reuse.
	exprs *exprCache
}

// NewRuleSet validates and compiles every campaign in cs and keeps the active ones.
// Campaigns that fail are left out and each is reported as an error naming the campaign
// and wrapping its *CampaignError; a later campaign with an already seen id is left out
// too. The set never fails as a whole: it holds every good active campaign.
func NewRuleSet(cs []campaign.Campaign) (*RuleSet, []error) { return NewRuleSetFrom(nil, cs) }

// NewRuleSetFrom is NewRuleSet reusing the compiled rules and points expressions of prev
// (nil: none) whose source is unchanged, so that a change of one campaign compiles one
// campaign. prev is not modified.
func NewRuleSetFrom(prev *RuleSet, cs []campaign.Campaign) (*RuleSet, []error) {
	var prevExprs *exprCache
	if prev != nil {
		prevExprs = prev.exprs
	}
	rs := &RuleSet{exprs: newExprCache(prevExprs)}
	defer func() { rs.exprs.prev = nil }() // keep one set's worth, not a chain
	var errs []error
	seen := make(map[string]bool, len(cs))
	for i := range cs {
		c := &cs[i]
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("campaign %s: duplicate id, left out", c.ID))
			continue
		}
		seen[c.ID] = true
		comp, err := compileCampaignWith(c, rs.exprs)
		if err != nil {
			errs = append(errs, fmt.Errorf("campaign %q: %w", c.ID, err))
			continue
		}
		if c.Status == campaign.StatusActive {
			rs.compiled = append(rs.compiled, *comp)
		}
	}
	slices.SortFunc(rs.compiled, func(a, b Compiled) int {
		if a.Campaign.Priority != b.Campaign.Priority {
			return cmp.Compare(b.Campaign.Priority, a.Campaign.Priority)
		}
		return cmp.Compare(a.Campaign.ID, b.Campaign.ID)
	})
	rs.index()
	return rs, errs
}

// Len returns the number of active campaigns in the set.
func (rs *RuleSet) Len() int { return len(rs.compiled) }

// Campaigns returns copies of the active campaigns in evaluation order.
func (rs *RuleSet) Campaigns() []campaign.Campaign {
	out := make([]campaign.Campaign, len(rs.compiled))
	for i := range rs.compiled {
		out[i] = rs.compiled[i].Campaign
	}
	return out
}

// Evaluate runs the active campaigns against in, in evaluation order, and returns those
// that match. A campaign is skipped when its rule cannot match the event's type (see
// Rule.Matches: the engine's own types only reach rules that name them) or the value of
// an attribute the event carries (see analyze); the set is indexed by both, so such
// rules cost nothing. It is skipped too when
// in.Event.OccurredAt is before its starts_at or at or after its ends_at, when
// limits.per_user is set and User.RewardCounts[id] has reached it, or when
// limits.per_user_per_day is set and User.RewardDays[id] has reached it on the event's
// day in the campaign's time zone. Campaigns for which in.Skip is true are left out.
// A runtime error in a rule or points expression means no match and is reported in
// ruleErrs. When an exclusive campaign matches, lower campaigns are not evaluated.
// Budgets (limits.total_rewards, limits.total_points) are the caller's (see Input.Skip).
//
// err is set, with matches and ruleErrs nil, when in has no event or when evaluation
// panicked (the error wraps ErrPanic): the event should go to the dead-letter stream.
// Evaluate is safe for concurrent use.
func (rs *RuleSet) Evaluate(in *Input) (matches []campaign.Match, ruleErrs []EvalError, err error) {
	act, err := newActivation(in)
	if err != nil {
		return nil, nil, err
	}
	return rs.evaluate(act, in.Skip, rs.candidates(act.ev))
}

// evaluateAll is Evaluate without the index: every rule is evaluated, but for the
// engine's own event types, which only reach the rules that name them. Tests and
// benchmarks compare the two.
func (rs *RuleSet) evaluateAll(in *Input) ([]campaign.Match, []EvalError, error) {
	act, err := newActivation(in)
	if err != nil {
		return nil, nil, err
	}
	all := make([]int32, 0, len(rs.compiled))
	for i := range rs.compiled {
		if !event.IsReserved(act.ev.Type) || rs.compiled[i].rule.Matches(act.ev.Type) {
			all = append(all, int32(i))
		}
	}
	return rs.evaluate(act, in.Skip, all)
}

// evaluate runs the campaigns at positions cands (ascending) against act.
func (rs *RuleSet) evaluate(act *activation, skip func(*campaign.Campaign) bool, cands []int32) (matches []campaign.Match, ruleErrs []EvalError, err error) {
	for _, i := range cands {
		c := &rs.compiled[i]
		camp := &c.Campaign
		if (skip != nil && skip(camp)) || !c.inForce(act) {
			continue
		}
		m, ok, err := c.eval(act)
		if err != nil {
			if errors.Is(err, ErrPanic) {
				return nil, nil, fmt.Errorf("campaign %s: %w", camp.ID, err)
			}
			ruleErrs = append(ruleErrs, EvalError{CampaignID: camp.ID, Err: err})
			continue
		}
		if !ok {
			continue
		}
		matches = append(matches, m)
		if camp.Exclusive {
			break
		}
	}
	return matches, ruleErrs, nil
}

// inForce reports whether the campaign applies to act: the event's time is in its
// [starts_at, ends_at) and the user is under its per-user limits.
func (c *Compiled) inForce(act *activation) bool {
	camp := &c.Campaign
	t := act.ev.OccurredAt
	if camp.StartsAt != nil && t.Before(*camp.StartsAt) {
		return false
	}
	if camp.EndsAt != nil && !t.Before(*camp.EndsAt) {
		return false
	}
	if l := camp.Limits.PerUser; l > 0 && act.user.u.RewardCounts[camp.ID] >= l {
		return false
	}
	if l := camp.Limits.PerUserPerDay; l > 0 {
		if dc, ok := act.user.u.RewardDays[camp.ID]; ok && dc.Count >= l && dc.Day == camp.Day(t) {
			return false
		}
	}
	return true
}

// eval evaluates the campaign's rule and, when it matches, its points expression.
func (c *Compiled) eval(act *activation) (campaign.Match, bool, error) {
	ok, err := c.rule.eval(act)
	if err != nil || !ok {
		return campaign.Match{}, false, err
	}
	m := campaign.Match{Campaign: &c.Campaign}
	if c.points != nil {
		if m.Points, err = c.points.eval(act); err != nil {
			return campaign.Match{}, false, err
		}
	}
	return m, true, nil
}
