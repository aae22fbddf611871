package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// maxRuleAttempts is how often an event whose evaluation panics is tried before it is
// parked in the DLQ.
const maxRuleAttempts = 3

// userDeps are what a user actor needs; shared by every actor of the engine.
type userDeps struct {
	// evaluate runs the rule set in force against one event.
	evaluate func(in *cel.Input) ([]cel.Match, []cel.EvalError, error)
	store    *persistence.Store
	budgets  *budgets
	tiers    func() *persistence.TierConfig
	loader   *loader
	writer   *writer
	metrics  *metrics
}

// userActor serialises one user's events: it holds the user's committed state, evaluates
// events in order and has one job with the writer at a time (one decision, or a chain of
// decisions for the events that queued up meanwhile), waiting for its answer before the
// next.
type userActor struct {
	deps   userDeps
	id     string
	pid    *actor.PID
	engine *actor.Engine

	res      *resident         // the lane's entry for this user
	state    *persistence.User // committed state; nil until loaded
	loading  bool
	queue    []*EventReceived
	inflight *EventReceived    // submitted or waiting for a retry
	chain    []*EventReceived  // further events submitted with inflight as one chain
	single   int               // how many of the next events to apply one by one (after a failed chain)
	alone    bool              // inflight is applied alone, not as the head of a chain
	waiting  bool              // a decision or park is with the writer
	pending  *persistence.User // state after inflight, adopted once committed
	attempts int
	loadFail int
}

// newUserActor makes the actor of userID; initial, when set, is its committed state (kept
// in memory while no actor ran), else the actor loads it from Postgres.
func newUserActor(d userDeps, userID string, res *resident, initial *persistence.User) actor.Producer {
	return func() actor.Receiver { return &userActor{deps: d, id: userID, res: res, state: initial} }
}

// Receive handles one message. It never panics over data: failures are messages.
func (a *userActor) Receive(c *actor.Context) {
	switch m := c.Message().(type) {
	case actor.Initialized:
		a.pid, a.engine = c.PID(), c.Engine()
	case actor.Started:
		a.pid, a.engine = c.PID(), c.Engine()
	case *EventReceived:
		a.queue = append(a.queue, m)
		a.pump()
	case UserLoaded:
		a.loaded(m)
	case DecisionCommitted:
		a.committed(m)
	case retryEvent:
		if a.inflight != nil && !a.waiting {
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
	if a.state == nil {
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
		delay := backoff(a.loadFail, 50*time.Millisecond, 5*time.Second)
		a.deps.metrics.loadErrors.Inc()
		time.AfterFunc(delay, func() { a.engine.Send(a.pid, retryLoad{}) })
		return
	}
	a.loadFail = 0
	a.deps.metrics.loads.Inc()
	u := m.User
	if !m.Found {
		u = newUser(a.id)
	}
	a.state = &u
	a.res.state.Store(a.state)
	if a.inflight != nil && !a.waiting {
		a.process(a.inflight)
		return
	}
	a.pump()
}

// process evaluates ev against the current rules and submits the decision.
func (a *userActor) process(ev *EventReceived) {
	if a.state == nil {
		// State was dropped (fenced or rejected commit): reload, then come back here.
		a.loading = true
		a.deps.loader.load(a.id, a.pid)
		return
	}
	if int64(ev.Seq) <= a.state.LastSeq {
		// Already applied (a redelivery after a crash): republish its rewards, ack.
		a.waiting = true
		a.deps.writer.submit(job{kind: jobRedelivered, ev: ev, pid: a.pid, res: a.res})
		return
	}
	st := prepare(a.state, &ev.Event)
	var orig *persistence.EventEffect
	if ev.Event.Type == typeRefund {
		if id := originalEventID(&ev.Event); id != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e, err := a.deps.store.GetEventEffect(ctx, id)
			cancel()
			switch {
			case err == nil:
				orig = &e
			case !errors.Is(err, persistence.ErrNotFound):
				a.deps.metrics.loadErrors.Inc()
				a.attempts++
				time.AfterFunc(backoff(a.attempts, 50*time.Millisecond, 5*time.Second), func() { a.engine.Send(a.pid, retryEvent{}) })
				return
			}
		}
	}
	if reason := st.refusal(&ev.Event, orig); reason != "" {
		st.reject(&ev.Event, ev.Seq, reason, a.state)
		a.submit(ev, st)
		return
	}
	view := ruleView(&st.user)
	matches, err := a.evaluate(ev, &view, st)
	if err != nil {
		a.attempts++
		if a.attempts < maxRuleAttempts {
			delay := backoff(a.attempts, 20*time.Millisecond, time.Second)
			time.AfterFunc(delay, func() { a.engine.Send(a.pid, retryEvent{}) })
			return
		}
		a.park(ev, fmt.Sprintf("rule evaluation failed %d times: %v", a.attempts, err))
		return
	}
	st.apply(&ev.Event, ev.Seq, matches, orig, a.state)
	st.reviewTier(a.deps.tiers(), &ev.Event)
	if orig != nil || ev.Event.Type == typeRefund || a.alone || len(a.queue) == 0 {
		a.submit(ev, st)
		return
	}
	a.submitChain(ev, st)
}

// maxChain bounds the events of one user committed together.
const maxChain = 32

// submitChain applies the user's queued events after ev on top of st, in order, and
// submits them all as one chain: one commit for a hot user's burst instead of one per
// event (each waits for the one before: a user's events are strictly ordered). It stops
// at an event that needs the database (a refund reads its original's effects, which may
// be in this very chain), a redelivery, or a rule failure; those wait for their turn.
func (a *userActor) submitChain(ev *EventReceived, st *step) {
	steps := []*step{st}
	evs := []*EventReceived{ev}
	defer func() {
		if r := recover(); r != nil {
			// The event being added panicked: it goes back to the queue and is applied alone
			// (where a panic parks it); the chain built so far is unaffected.
			a.single = max(a.single, 1)
		}
		a.submitSteps(evs, steps)
	}()
	for len(evs) < maxChain && len(a.queue) > 0 {
		next := a.queue[0]
		prev := &steps[len(steps)-1].user
		if next.Event.Type == typeRefund || int64(next.Seq) <= prev.LastSeq {
			return
		}
		nst := prepare(prev, &next.Event)
		if reason := nst.refusal(&next.Event, nil); reason != "" {
			nst.reject(&next.Event, next.Seq, reason, prev)
		} else {
			view := ruleView(&nst.user)
			matches, err := a.evaluate(next, &view, nst)
			if err != nil {
				return
			}
			nst.apply(&next.Event, next.Seq, matches, nil, prev)
			nst.reviewTier(a.deps.tiers(), &next.Event)
		}
		a.take()
		evs = append(evs, next)
		steps = append(steps, nst)
	}
}

// evaluate runs the rules and reserves the budgets of the matches. A campaign whose
// budget cannot hold its reward is left out and the rules run again (an exclusive
// campaign that cannot pay must not stop the ones below it).
func (a *userActor) evaluate(ev *EventReceived, view *cel.User, st *step) ([]cel.Match, error) {
	b := a.deps.budgets
	var skipped map[string]bool
	in := &cel.Input{Event: &ev.Event, User: view, Skip: func(c *cel.Campaign) bool {
		return skipped[c.ID] || (limited(c) && b.exhausted(c))
	}}
	for {
		start := time.Now()
		matches, ruleErrs, err := a.deps.evaluate(in)
		a.deps.metrics.evalDuration.Observe(time.Since(start).Seconds())
		for _, re := range ruleErrs {
			a.deps.metrics.ruleErrors.WithLabelValues(re.CampaignID).Inc()
		}
		if err != nil {
			return nil, err
		}
		deltas := map[string]persistence.BudgetDelta{}
		short := ""
		for _, m := range matches {
			c := m.Campaign
			if !limited(c) {
				continue
			}
			if !b.reserve(c, m.Points) {
				short = c.ID
				break
			}
			deltas[c.ID] = persistence.BudgetDelta{Rewards: 1, Points: m.Points,
				MaxRewards: c.Limits.TotalRewards, MaxPoints: c.Limits.TotalPoints}
		}
		if short == "" {
			st.budget = deltas
			return matches, nil
		}
		b.settle(deltas, false)
		if skipped == nil {
			skipped = map[string]bool{}
		}
		skipped[short] = true
	}
}

// submit hands the step's decision to the writer and waits for its answer.
func (a *userActor) submit(ev *EventReceived, st *step) {
	a.submitSteps([]*EventReceived{ev}, []*step{st})
}

// submitSteps hands the decisions of evs (one step each, each built on the one before) to
// the writer as one job and waits for its answer.
func (a *userActor) submitSteps(evs []*EventReceived, steps []*step) {
	last := steps[len(steps)-1].user // a copy: holding &st.user would keep the step's rewards and ledger alive
	a.pending = &last
	a.waiting = true
	a.chain = evs[1:]
	if len(a.chain) == 0 {
		a.chain = nil
	}
	head := job{kind: jobCommit, ev: evs[0], pid: a.pid, res: a.res, decision: decisionOf(evs[0], steps[0])}
	for i := 1; i < len(evs); i++ {
		head.more = append(head.more, job{kind: jobCommit, ev: evs[i], res: a.res, decision: decisionOf(evs[i], steps[i])})
	}
	a.deps.writer.submit(head)
}

func decisionOf(ev *EventReceived, st *step) persistence.Decision {
	return persistence.Decision{
		EventID:    ev.Event.ID,
		EventType:  ev.Event.Type,
		StreamSeq:  int64(ev.Seq),
		User:       st.user,
		Rewards:    st.rewards,
		Ledger:     st.ledger,
		Effect:     st.effect,
		Refund:     st.refund,
		Budget:     st.budget,
		TierChange: st.tierChange,
		Rejected:   st.rejected,
	}
}

func (a *userActor) park(ev *EventReceived, reason string) {
	a.waiting = true
	a.deps.writer.submit(job{kind: jobPark, ev: ev, pid: a.pid, res: a.res, reason: reason})
}

func (a *userActor) committed(m DecisionCommitted) {
	a.waiting = false
	ev := a.inflight
	if ev == nil {
		return
	}
	switch m.Outcome {
	case outcomeCommitted, outcomeDuplicate, outcomeParked:
		if m.Outcome == outcomeCommitted && a.pending != nil {
			a.state = a.pending
		}
		a.pending = nil
		a.inflight, a.chain = nil, nil
		a.pump()
	case outcomeChainFailed:
		// Nothing of the chain committed: apply its events again, one by one.
		a.pending = nil
		evs := append([]*EventReceived{ev}, a.chain...)
		a.queue = append(evs, a.queue...)
		a.single = len(evs)
		a.inflight, a.chain = nil, nil
		if m.Fenced {
			a.state = nil
		}
		a.pump()
	case outcomeOverBudget:
		// Another engine granted meanwhile: take the stored totals and decide again.
		a.pending = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.deps.budgets.load(ctx, a.deps.store)
		cancel()
		a.process(ev)
	case outcomeFenced:
		a.pending = nil
		// Another owner moved the user: drop what we hold and build on the stored state
		// (the writer cleared the published state).
		a.state = nil
		a.process(ev)
	case outcomeRejected:
		a.pending = nil
		a.state = nil
		a.res.state.Store(nil)
		a.park(ev, fmt.Sprintf("database refused the event's effects: %v", m.Err))
	}
}

// backoff is an exponential delay for attempt n (1-based), capped.
func backoff(n int, base, limit time.Duration) time.Duration {
	d := base << min(n-1, 20)
	if d > limit || d <= 0 {
		d = limit
	}
	return d
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
