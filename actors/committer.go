package actors

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// commitJob is one user's decision for the committer, with the further decisions of the
// same user's chain (each built on the one before) committed with it, whole or not at
// all. pid gets the DecisionCommitted answer for them all; res is the lane's entry of the
// user, whose published state becomes state (the user after the last decision, which the
// actor adopts too: one copy for both) once the job commits.
type commitJob struct {
	ev       *EventReceived
	pid      *actor.PID
	res      *resident
	state    *loyalty.User
	decision loyalty.Decision
	more     []chainMember
}

// chainMember is a further decision of a commitJob's chain.
type chainMember struct {
	ev       *EventReceived
	decision loyalty.Decision
}

// redelivery is an event the user's state says was applied already (it came again after
// a crash or a handover): its rewards are read back and published again, then it is acked.
type redelivery struct {
	ev  *EventReceived
	pid *actor.PID
}

// committer batches the decisions of every actor into Postgres transactions, answers
// each actor, and hands the committed work to the publisher. It retries transient
// failures with the retry policy until its context ends, so the engine pauses while
// Postgres is away and goes on by itself when it returns.
type committer struct {
	store     *persistence.Store
	engine    *actor.Engine
	log       *slog.Logger
	metrics   *metrics
	budgets   *budgets
	pools     *pools
	publisher *publisher
	retry     supervisor.Policy
	maxBatch  int
	flights   int // most batches committing at once
	// onStale is told the partition of a commit refused for a stale owner epoch.
	onStale func(partition int)

	in    chan commitJob
	again chan redelivery
	side  sync.WaitGroup // redelivery lookups
}

// groupMin is the smallest batch worth a second concurrent transaction: below it the
// committer lets the batch grow while the commit in flight finishes (group commit).
const groupMin = 64

// submit queues j. It blocks only when the queue is full, which the partitions' bounded
// in-flight work prevents.
func (w *committer) submit(j commitJob) {
	now := time.Now()
	j.ev.stages.decided = now
	for _, m := range j.more {
		m.ev.stages.decided = now
	}
	w.in <- j
}

// redeliver queues the republication of an applied event's rewards.
func (w *committer) redeliver(r redelivery) { w.again <- r }

// Run commits batches on up to w.flights concurrent transactions until ctx ends, then
// waits for the commits and lookups in flight. A batch is whatever is queued (up to
// maxBatch). While a commit is in flight another starts only for a batch of at least
// groupMin; a smaller one waits for the flight to land and grows meanwhile. Under light
// load that means one commit at a time with every decision that arrived during the
// previous one — each transaction costs ~1 ms of CPU (Postgres and ours) besides its
// decisions, and its WAL flush, so fewer and larger commits leave the CPU to the events;
// under heavy load batches are large and the commits overlap one's WAL flush with the
// next one's work. A user has at most one job in flight, so concurrent batches never
// touch the same user.
func (w *committer) Run(ctx context.Context) error {
	var flights sync.WaitGroup
	landed := make(chan struct{}, w.flights)
	inflight := 0
	defer func() {
		flights.Wait()
		w.side.Wait()
	}()
	for {
		var batch []commitJob
		select {
		case <-ctx.Done():
			return nil
		case r := <-w.again:
			w.side.Go(func() { w.republish(ctx, r) })
			continue
		case j := <-w.in:
			batch = append(make([]commitJob, 0, min(w.maxBatch, 64)), j)
		}
		batch = w.fill(batch)
		for inflight > 0 && (inflight >= w.flights || len(batch) < groupMin) {
			in := w.in
			if len(batch) >= w.maxBatch {
				in = nil // full: only a landing commit can move things on
			}
			select {
			case <-ctx.Done():
				return nil
			case <-landed:
				inflight--
			case j := <-in:
				batch = w.fill(append(batch, j))
			}
		}
		inflight++
		flights.Go(func() {
			w.commit(ctx, batch)
			landed <- struct{}{}
		})
	}
}

// fill appends the queued jobs to batch, up to maxBatch, without waiting.
func (w *committer) fill(batch []commitJob) []commitJob {
	for len(batch) < w.maxBatch {
		select {
		case j := <-w.in:
			batch = append(batch, j)
		default:
			return batch
		}
	}
	return batch
}

// flatten lists every decision of jobs, a chain's members right after its head.
func flatten(jobs []commitJob) (evs []*EventReceived, ds []loyalty.Decision) {
	n := 0
	for _, j := range jobs {
		n += 1 + len(j.more)
	}
	evs, ds = make([]*EventReceived, 0, n), make([]loyalty.Decision, 0, n)
	for _, j := range jobs {
		evs = append(evs, j.ev)
		ds = append(ds, j.decision)
		for _, m := range j.more {
			evs = append(evs, m.ev)
			ds = append(ds, m.decision)
		}
	}
	return evs, ds
}

// commit stores the decisions of jobs, retrying transient failures, and settles what
// became of each.
func (w *committer) commit(ctx context.Context, jobs []commitJob) {
	evs, ds := flatten(jobs)
	began := time.Now()
	for _, ev := range evs {
		ev.stages.batched = began
	}
	outs, err := w.commitBatch(ctx, evs, ds)
	if err == nil {
		committed := time.Now()
		for _, ev := range evs {
			ev.stages.committed = committed
		}
	}
	var pe *persistence.PermanentError
	switch {
	case errors.As(err, &pe) && len(jobs) > 1:
		// The data of one job is refused: commit one by one to find it.
		for _, j := range jobs {
			w.commit(ctx, []commitJob{j})
		}
		return
	case errors.As(err, &pe):
		w.settleReservations(ds, nil)
		if len(ds) > 1 {
			w.reply(jobs[0], DecisionCommitted{Outcome: persistence.ChainBroken}) // one by one finds the culprit
		} else {
			w.reply(jobs[0], DecisionCommitted{Err: err})
		}
		return
	case err != nil:
		return // shutting down: the messages stay unacked and come again
	}
	w.metrics.batchSize.Observe(float64(len(ds)))
	w.settle(ctx, jobs, outs)
}

// commitBatch calls CommitBatch until it succeeds, fails for good (a
// *persistence.PermanentError) or ctx ends. While Postgres is away the messages are kept
// from redelivery every ten seconds.
func (w *committer) commitBatch(ctx context.Context, evs []*EventReceived, ds []loyalty.Decision) ([]persistence.Outcome, error) {
	var outs []persistence.Outcome
	owners := make([]persistence.Owner, len(evs))
	for i, ev := range evs {
		owners[i] = persistence.Owner{Partition: ev.Partition, Epoch: ev.Epoch}
	}
	lastProgress := time.Now()
	policy := w.retry
	policy.OnRetry = func(attempt int, err error, _ time.Duration) {
		w.metrics.commitErrors.Inc()
		w.log.Warn("commit failed; retrying", "attempt", attempt, "batch", len(ds), "err", err)
		if time.Since(lastProgress) > 10*time.Second {
			for _, ev := range evs {
				_ = ev.Msg.InProgress()
			}
			lastProgress = time.Now()
		}
	}
	err := policy.Do(ctx, func(ctx context.Context) error {
		start := time.Now()
		var err error
		outs, err = w.store.CommitBatch(ctx, ds, owners)
		w.metrics.commitDuration.Observe(time.Since(start).Seconds())
		var pe *persistence.PermanentError
		if errors.As(err, &pe) {
			return supervisor.Permanent(err)
		}
		return err
	})
	return outs, err
}

// settle answers every job with its outcome and hands the committed ones to the
// publisher. A chain that did not commit whole is answered once (ChainBroken, with
// Fenced when a member was fenced) and redone by its actor one by one.
func (w *committer) settle(ctx context.Context, jobs []commitJob, outs []persistence.Outcome) {
	var pubs []pubJob
	reloaded, poolsReloaded := false, false
	k := 0
	for _, j := range jobs {
		n := 1 + len(j.more)
		chain := outs[k : k+n]
		k += n
		if slices.Contains(chain, persistence.Stale) {
			w.stale(j)
			continue
		}
		if n > 1 && !allCommitted(chain) {
			fenced := false
			for _, o := range chain {
				fenced = fenced || o == persistence.Fenced
			}
			_, ds := flatten([]commitJob{j})
			w.settleReservations(ds, nil)
			if slices.Contains(chain, persistence.PoolChanged) && !poolsReloaded {
				w.reloadPools(ctx)
				poolsReloaded = true
			}
			if fenced {
				j.res.state.Store(nil)
				w.metrics.fenced.Inc()
			}
			w.reply(j, DecisionCommitted{Outcome: persistence.ChainBroken, Fenced: fenced})
			continue
		}
		evs, ds := flatten([]commitJob{j})
		w.settleReservations(ds, chain)
		switch o := chain[0]; o {
		case persistence.Committed:
			if j.res != nil && j.state != nil {
				j.res.state.Store(&heldState{user: j.state})
			}
			for i := range ds {
				pubs = append(pubs, w.committed(ctx, evs[i], &ds[i]))
			}
		case persistence.Duplicate:
			w.metrics.processed.WithLabelValues("duplicate").Inc()
			pubs = append(pubs, pubJob{ev: j.ev})
		case persistence.OverBudget:
			if !reloaded {
				// Another engine granted meanwhile: take the stored totals before the actor
				// decides again (it never reads Postgres itself).
				if err := w.budgets.load(ctx, w.store); err != nil {
					w.log.Warn("reload budgets after an over-budget commit", "err", err)
				}
				reloaded = true
			}
		case persistence.PoolChanged:
			if !poolsReloaded {
				w.reloadPools(ctx)
				poolsReloaded = true
			}
		case persistence.Fenced:
			if j.res != nil {
				j.res.state.Store(nil)
			}
			w.metrics.fenced.Inc()
		}
		w.reply(j, DecisionCommitted{Outcome: chain[0]})
	}
	if len(pubs) > 0 {
		w.publisher.hand(pubs)
	}
}

// stale answers a job whose partition another engine claimed: nothing of it committed,
// the user's state is dropped, and the engine stops the lane (onStale).
func (w *committer) stale(j commitJob) {
	_, ds := flatten([]commitJob{j})
	w.settleReservations(ds, nil)
	if j.res != nil {
		j.res.state.Store(nil)
	}
	w.metrics.epochFenced.Inc()
	if w.onStale != nil {
		w.onStale(j.ev.Partition)
	}
	w.reply(j, DecisionCommitted{Outcome: persistence.Stale})
}

func allCommitted(outs []persistence.Outcome) bool {
	for _, o := range outs {
		if o != persistence.Committed {
			return false
		}
	}
	return true
}

// settleReservations ends the budget and pool code reservations of ds: those whose
// outcome is Committed become used, the others are released (outs nil: none committed).
func (w *committer) settleReservations(ds []loyalty.Decision, outs []persistence.Outcome) {
	for i := range ds {
		committed := outs != nil && outs[i] == persistence.Committed
		w.budgets.settle(ds[i].Budget, committed)
		w.pools.settle(ds[i].Rewards, committed)
	}
}

// reloadPools takes the pools' stored counts after a commit found the engine's view of
// a pool wrong, before the actors decide again (they never read Postgres themselves).
func (w *committer) reloadPools(ctx context.Context) {
	if err := w.pools.load(ctx, w.store); err != nil {
		w.log.Warn("reload coupon pools after a commit found a pool changed", "err", err)
	}
}

// committed records one committed decision: the metrics, and the work left for the
// publisher (notices, a parked rejection, the ack).
func (w *committer) committed(ctx context.Context, ev *EventReceived, d *loyalty.Decision) pubJob {
	if d.Rejected != "" {
		w.metrics.processed.WithLabelValues("rejected").Inc()
	} else {
		w.metrics.processed.WithLabelValues("applied").Inc()
	}
	for _, r := range d.Rewards {
		w.metrics.rewards.WithLabelValues(r.CampaignID, r.Type).Inc()
		if r.Pool != "" {
			w.metrics.codesIssued.WithLabelValues(r.Pool).Inc()
		}
	}
	for _, f := range d.Refused {
		w.metrics.refused.WithLabelValues(f.CampaignID, f.Reason).Inc()
	}
	if w.log.Enabled(ctx, slog.LevelDebug) {
		w.log.Debug("event committed", "event_id", d.EventID, "user_id", d.User.UserID,
			"partition", ev.Partition, "seq", ev.Seq, "rewards", len(d.Rewards),
			"rejected", d.Rejected, "correlation_id", ev.CorrelationID)
	}
	pj := pubJob{ev: ev, rewards: d.Rewards, park: d.Rejected, tier: d.TierChange}
	for _, l := range d.Ledger {
		if l.Kind == loyalty.LedgerExpire {
			pj.expired = append(pj.expired, l)
		}
	}
	return pj
}

func (w *committer) reply(j commitJob, m DecisionCommitted) {
	if j.pid != nil {
		w.engine.Send(j.pid, m)
	}
}

// republish reads back what an applied event granted (and, for a refused one, why) and
// hands it to the publisher, retrying until ctx ends.
func (w *committer) republish(ctx context.Context, r redelivery) {
	var rewards []loyalty.Reward
	var park string
	policy := w.retry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		w.log.Warn("load rewards of redelivered event; retrying", "event_id", r.ev.Event.ID, "err", err)
	}
	err := policy.Do(ctx, func(ctx context.Context) error {
		var err error
		if rewards, err = w.store.RewardsOfEvent(ctx, r.ev.Event.ID); err != nil {
			return err
		}
		outcome, reason, err := w.store.ProcessedOutcome(ctx, r.ev.Event.ID)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			park = "" // a duplicate id: nothing of its own was recorded
		case err != nil:
			return err
		case outcome == "rejected":
			park = reason
		}
		return nil
	})
	if err != nil {
		return // shutting down: the message stays unacked
	}
	w.metrics.processed.WithLabelValues("redelivered").Inc()
	w.engine.Send(r.pid, DecisionCommitted{Outcome: persistence.Duplicate})
	w.publisher.hand([]pubJob{{ev: r.ev, rewards: rewards, park: park}})
}
