package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// maxRuleAttempts is how often an event whose evaluation panics is tried before it is
// parked in the DLQ.
const maxRuleAttempts = 3

// userDeps are what a user actor needs; shared by every actor of the engine.
type userDeps struct {
	engine *actor.Engine
	log    *slog.Logger
	// evaluate runs the rule set in force against one event.
	evaluate  func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error)
	budgets   *budgets
	pools     *pools
	tiers     func() *loyalty.TierConfig
	loader    *loader
	committer *committer
	publisher *publisher
	metrics   *metrics
	// ruleErrors counts and logs the campaigns whose rules failed at run time.
	ruleErrors *ruleErrorLog
	// retry spaces the attempts of a blocked event (a load, a rule evaluation).
	retry supervisor.Policy
}

// userActor serialises one user's events: it holds the user's committed state, evaluates
// events in order and has one job with the committer at a time (one decision, or a chain
// of decisions for the events that queued up meanwhile), waiting for its answer before
// the next.
type userActor struct {
	deps *userDeps
	id   string
	pid  *actor.PID

	res      *resident     // the lane's entry for this user
	state    *loyalty.User // committed state; nil until loaded, or while packed (see pack)
	loading  bool
	queue    []*EventReceived
	inflight *EventReceived   // submitted or waiting for a retry
	chain    []*EventReceived // further events submitted with inflight as one chain
	pending  *loyalty.User    // state after inflight, adopted once committed
	single   int32            // how many of the next events to apply one by one (after a failed chain)
	attempts int32
	loadFail int32
	alone    bool // inflight is applied alone, not as the head of a chain
	waiting  bool // a decision is with the committer or a park with the publisher
	// fetching: the loader is reading the effect of the event a refund names;
	// effect (nil: none) is that effect, for the event effectFor.
	fetching  bool
	effect    *loyalty.EventEffect
	effectFor string
	// stale: another engine owns the user's partition now; the actor finishes what
	// reaches it without acting until its lane stops it.
	stale bool
}

// newUserActor makes the actor of userID; its committed state is the one res holds (kept
// in memory while no actor ran), else the actor loads it from Postgres.
func newUserActor(d *userDeps, userID string, res *resident) actor.Producer {
	return func() actor.Receiver { return &userActor{deps: d, id: userID, res: res} }
}

// Receive handles one message. It never panics over data: failures are messages.
func (a *userActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Initialized, actor.Started:
		a.pid = c.PID()
	case *EventReceived:
		if a.stale {
			m.finish() // the partition has another owner: its events are theirs
			return
		}
		a.queue = append(a.queue, m)
		a.pump()
	case UserLoaded:
		a.loaded(m)
	case EffectLoaded:
		a.effectLoaded(m)
	case DecisionCommitted:
		a.committed(m)
	case EventParked:
		a.parked()
	case retryEvent:
		if a.inflight != nil && !a.waiting && !a.fetching {
			a.process(a.inflight)
		}
	case retryLoad:
		a.pump()
	}
}

// pump starts the next step if the actor is free.
func (a *userActor) pump() {
	if a.loading || a.inflight != nil || len(a.queue) == 0 {
		return
	}
	if a.state == nil && !a.unpack() {
		a.loading = true
		a.deps.loader.load(a.id, a.pid)
		return
	}
	a.alone = a.single > 0
	ev := a.take()
	a.inflight = ev
	a.attempts = 0
	a.process(ev)
}

// take removes the head of the queue.
func (a *userActor) take() *EventReceived {
	ev := a.queue[0]
	a.queue[0] = nil
	a.queue = a.queue[1:]
	if len(a.queue) == 0 {
		a.queue = nil
	}
	if a.single > 0 {
		a.single--
	}
	return ev
}

func (a *userActor) loaded(m UserLoaded) {
	a.loading = false
	if m.Err != nil {
		a.loadFail++
		delay := a.deps.retry.Delay(int(a.loadFail))
		a.deps.metrics.loadErrors.Inc()
		pid, engine := a.pid, a.deps.engine
		time.AfterFunc(delay, func() { engine.Send(pid, retryLoad{}) })
		return
	}
	a.loadFail = 0
	a.deps.metrics.loads.Inc()
	u := m.User
	if !m.Found {
		u = loyalty.NewUser(a.id)
	}
	a.state = &u
	a.res.state.Store(&heldState{user: a.state})
	if a.inflight != nil && !a.waiting {
		a.process(a.inflight)
		return
	}
	a.pump()
}

// process evaluates ev against the current rules and submits the decision.
func (a *userActor) process(ev *EventReceived) {
	if a.state == nil && !a.unpack() {
		// State was dropped (fenced or rejected commit): reload, then come back here.
		a.effectFor = "" // what the refund's original did may have moved as well
		a.loading = true
		a.deps.loader.load(a.id, a.pid)
		return
	}
	if int64(ev.Seq) <= a.state.LastSeq {
		// Already applied (a redelivery after a crash): republish its rewards, ack.
		a.waiting = true
		a.deps.committer.redeliver(redelivery{ev: ev, pid: a.pid})
		return
	}
	if loyalty.NeedsOriginal(&ev.Event) && a.effectFor != ev.Event.ID {
		if id := loyalty.OriginalEventID(&ev.Event); id != "" {
			// A refund needs the effect of the event it names: the loader reads it and
			// answers with EffectLoaded (the actor never waits on Postgres itself).
			a.fetching = true
			a.deps.loader.loadEffect(ev.Event.ID, id, a.pid)
			return
		}
	}
	var orig *loyalty.EventEffect
	if a.effectFor == ev.Event.ID {
		orig = a.effect
	}
	d, err := a.step(a.state, loyalty.Input{Event: &ev.Event, Seq: ev.Seq, Original: orig, Tiers: a.deps.tiers()})
	if err != nil {
		a.attempts++
		if a.attempts < maxRuleAttempts {
			a.retryLater(a.deps.retry.Delay(int(a.attempts)))
			return
		}
		a.park(ev, fmt.Sprintf("rule evaluation failed %d times: %v", a.attempts, err))
		return
	}
	if orig != nil || loyalty.NeedsOriginal(&ev.Event) || a.alone || len(a.queue) == 0 {
		a.submit([]*EventReceived{ev}, []loyalty.Decision{d})
		return
	}
	a.submitChain(ev, d)
}

// effectLoaded takes the loader's answer to a refund's request for its original event.
func (a *userActor) effectLoaded(m EffectLoaded) {
	a.fetching = false
	ev := a.inflight
	if ev == nil || ev.Event.ID != m.EventID || a.waiting {
		return
	}
	if m.Err != nil {
		a.deps.metrics.loadErrors.Inc()
		a.attempts++
		a.retryLater(a.deps.retry.Delay(int(a.attempts)))
		return
	}
	a.effect, a.effectFor = m.Effect, m.EventID
	a.process(ev)
}

// retryLater asks for the blocked event to be tried again after d.
func (a *userActor) retryLater(d time.Duration) {
	pid, engine := a.pid, a.deps.engine
	time.AfterFunc(d, func() { engine.Send(pid, retryEvent{}) })
}

// maxChain bounds the events of one user committed together.
const maxChain = 32

// submitChain applies the user's queued events after ev on top of its decision d, in
// order, and submits them all as one chain: one commit for a hot user's burst instead of
// one per event (each waits for the one before: a user's events are strictly ordered).
// It stops at an event that needs the database (a refund reads its original's effects,
// which may be in this very chain), a redelivery, or a rule failure; those wait for
// their turn.
func (a *userActor) submitChain(ev *EventReceived, d loyalty.Decision) {
	ds := []loyalty.Decision{d}
	evs := []*EventReceived{ev}
	defer func() {
		if r := recover(); r != nil {
			// The event being added panicked: it goes back to the queue and is applied alone
			// (where a panic parks it); the chain built so far is unaffected.
			a.single = max(a.single, 1)
		}
		a.submit(evs, ds)
	}()
	for len(evs) < maxChain && len(a.queue) > 0 {
		next := a.queue[0]
		prev := &ds[len(ds)-1].User
		if loyalty.NeedsOriginal(&next.Event) || int64(next.Seq) <= prev.LastSeq {
			return
		}
		nd, err := a.step(prev, loyalty.Input{Event: &next.Event, Seq: next.Seq, Tiers: a.deps.tiers()})
		if err != nil {
			return
		}
		a.take()
		evs = append(evs, next)
		ds = append(ds, nd)
	}
}

// step is loyalty.Step with the actor's evaluator. A decision that takes no budget (or
// no pool code) after the rules reserved some (the event was refused once its rewards
// were known, such as a balance that would pass its maximum) releases the reservation at
// once. The rewards refused for lack of pool codes go with a decision that applies.
func (a *userActor) step(base *loyalty.User, in loyalty.Input) (loyalty.Decision, error) {
	var reserved map[string]loyalty.BudgetDelta
	var codes []string
	var notes evalNotes
	d, err := loyalty.Step(base, in, func(ev *event.Event, view *loyalty.User) ([]campaign.Match, map[string]loyalty.BudgetDelta, error) {
		matches, deltas, n, err := a.evaluate(ev, view)
		reserved, notes = deltas, n
		for _, m := range matches {
			if m.Campaign.Reward.TakesCode() {
				codes = append(codes, m.Campaign.Reward.Pool)
			}
		}
		return matches, deltas, err
	})
	if len(reserved) > 0 && (err != nil || d.Budget == nil) {
		a.deps.budgets.settle(reserved, false)
	}
	if len(codes) > 0 && (err != nil || d.Rejected != "") {
		a.deps.pools.release(codes)
	}
	if err == nil && d.Rejected == "" {
		d.Refused = notes.refused
	}
	d.RuleErrors = notes.ruleErrors
	return d, err
}

// evalNotes is what evaluate learnt besides the matches: the campaigns refused for lack
// of pool codes and those whose rules failed at run time.
type evalNotes struct {
	refused    []loyalty.Refusal
	ruleErrors []string
}

// evaluate runs the rules for the actor's loyalty.Evaluator (see step) and reserves the
// budgets and pool codes of the matches; it also returns the campaigns whose rules failed
// at run time. A campaign whose budget cannot hold its reward is left out and the rules
// run again (an exclusive campaign that cannot pay must not stop the ones below it); so
// is one whose pool has no code left, and that is returned as a refusal.
func (a *userActor) evaluate(ev *event.Event, view *loyalty.User) ([]campaign.Match, map[string]loyalty.BudgetDelta, evalNotes, error) {
	b, p := a.deps.budgets, a.deps.pools
	var notes evalNotes
	var skipped map[string]bool
	in := &cel.Input{Event: ev, User: view, Skip: func(c *campaign.Campaign) bool {
		return skipped[c.ID] || (limited(c) && b.exhausted(c))
	}}
	for {
		start := time.Now()
		matches, ruleErrs, err := a.deps.evaluate(in)
		a.deps.metrics.evalDuration.Observe(time.Since(start).Seconds())
		a.deps.ruleErrors.record(ev.ID, ruleErrs)
		if err != nil {
			return nil, nil, evalNotes{}, err
		}
		deltas := map[string]loyalty.BudgetDelta{}
		var codes []string
		short := ""
		for _, m := range matches {
			c := m.Campaign
			if limited(c) {
				if !b.reserve(c, m.Points) {
					short = c.ID
					break
				}
				deltas[c.ID] = loyalty.BudgetDelta{Rewards: 1, Points: m.Points,
					MaxRewards: c.Limits.TotalRewards, MaxPoints: c.Limits.TotalPoints}
			}
			if c.Reward.TakesCode() {
				if !p.reserve(c.Reward.Pool) {
					short = c.ID
					notes.refused = append(notes.refused, loyalty.Refusal{CampaignID: c.ID, Pool: c.Reward.Pool, Reason: loyalty.RefusedPoolExhausted})
					break
				}
				codes = append(codes, c.Reward.Pool)
			}
		}
		if short == "" {
			for _, re := range ruleErrs {
				notes.ruleErrors = append(notes.ruleErrors, re.CampaignID)
			}
			return matches, deltas, notes, nil
		}
		b.settle(deltas, false)
		p.release(codes)
		if skipped == nil {
			skipped = map[string]bool{}
		}
		skipped[short] = true
	}
}

// submit hands the decisions of evs (one each, each built on the one before) to the
// committer as one job and waits for its answer.
func (a *userActor) submit(evs []*EventReceived, ds []loyalty.Decision) {
	last := ds[len(ds)-1].User // a copy: holding &d.User would keep the decision's rewards and ledger alive
	a.pending = &last
	a.waiting = true
	a.chain = evs[1:]
	if len(a.chain) == 0 {
		a.chain = nil
	}
	head := commitJob{ev: evs[0], pid: a.pid, res: a.res, state: a.pending, decision: ds[0]}
	for i := 1; i < len(evs); i++ {
		head.more = append(head.more, chainMember{ev: evs[i], decision: ds[i]})
	}
	a.deps.committer.submit(head)
}

// park sends ev to the DLQ with reason and waits for the publisher's EventParked.
func (a *userActor) park(ev *EventReceived, reason string) {
	a.waiting = true
	a.deps.publisher.park(parkJob{ev: ev, pid: a.pid, reason: reason})
}

// committed takes the committer's answer for the job in flight.
func (a *userActor) committed(m DecisionCommitted) {
	a.waiting = false
	ev := a.inflight
	if ev == nil {
		return
	}
	if m.Err == nil && m.Outcome == persistence.Committed && a.pending != nil {
		a.state = a.pending
	}
	a.pending, a.effect, a.effectFor = nil, nil, ""
	switch {
	case m.Err != nil:
		// The database refused the data for good: park the event, reload the state.
		a.state = nil
		a.res.state.Store(nil)
		a.park(ev, fmt.Sprintf("database refused the event's effects: %v", m.Err))
	case m.Outcome == persistence.Committed || m.Outcome == persistence.Duplicate:
		a.inflight, a.chain = nil, nil
		a.pump()
		a.pack()
	case m.Outcome == persistence.ChainBroken:
		// Nothing of the chain committed: apply its events again, one by one.
		evs := append([]*EventReceived{ev}, a.chain...)
		a.queue = append(evs, a.queue...)
		a.single = int32(len(evs))
		a.inflight, a.chain = nil, nil
		if m.Fenced {
			a.state = nil
		}
		a.pump()
	case m.Outcome == persistence.Stale:
		a.dropAll()
	case m.Outcome == persistence.OverBudget, m.Outcome == persistence.PoolChanged:
		// Another engine granted meanwhile, or a pool's codes are not what the engine
		// thought: the committer took the stored totals before it answered; decide again.
		a.process(ev)
	case m.Outcome == persistence.Fenced:
		// Another owner moved the user: drop what we hold and build on the stored state
		// (the committer cleared the published state).
		a.state = nil
		a.process(ev)
	}
}

// dropAll gives up on the user's events: another engine claimed the partition (its
// commit was refused for a stale epoch), so they are the new owner's, delivered to it
// again; none is acked here. The lane is being stopped.
func (a *userActor) dropAll() {
	a.stale = true
	a.state = nil
	a.res.state.Store(nil)
	for _, ev := range append(append([]*EventReceived{a.inflight}, a.chain...), a.queue...) {
		if ev != nil {
			ev.finish()
		}
	}
	a.inflight, a.chain, a.queue = nil, nil, nil
}

// parked takes the publisher's answer for a parked event: it is done.
func (a *userActor) parked() {
	a.waiting = false
	if a.inflight == nil {
		return
	}
	a.pending, a.effect, a.effectFor = nil, nil, ""
	a.inflight, a.chain = nil, nil
	a.pump()
	a.pack()
}

// recovered restores a consistent actor after a panic in Receive: the state is dropped
// (it is reloaded from Postgres) and the event being handled is parked.
func (a *userActor) recovered(reason string) {
	a.state, a.pending, a.loading = nil, nil, false
	a.res.state.Store(nil)
	if !a.waiting && len(a.chain) > 0 {
		a.queue = append(a.chain, a.queue...)
		a.chain = nil
	}
	if a.inflight != nil && !a.waiting {
		a.park(a.inflight, "handler panicked: "+reason)
		return
	}
	a.pump()
}
