package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

type jobKind int

const (
	jobCommit      jobKind = iota // commit a decision
	jobRedelivered                // an applied event came again: republish its rewards, ack
	jobPark                       // park the event in the DLQ, ack
)

// job is one unit of work for the writer. pid, when set, gets a DecisionCommitted; res,
// when set, is the lane's entry of the user, whose published state follows the commits.
type job struct {
	kind     jobKind
	ev       *EventReceived
	pid      *actor.PID
	res      *resident
	decision loyalty.Decision
	reason   string
	// more are the further decisions of the same user, each built on the one before,
	// committed with this one as a chain (whole or not at all); their pid is nil: the
	// answer for the chain goes to this job's pid.
	more []job
}

// pubJob is committed work waiting for its rewards to be published and its message acked.
type pubJob struct {
	ev      *EventReceived
	rewards []loyalty.Reward
	// expired are the expiry ledger entries to announce on LOYALTY.
	expired []loyalty.LedgerEntry
	// tier, when set, is the tier change to announce on LOYALTY.
	tier *loyalty.TierChange
	// park, when set, is why the (committed as rejected) event goes to the DLQ before
	// its ack.
	park string
}

// writer batches decisions from every actor into Postgres transactions, then hands the
// committed ones to the publisher, which publishes rewards and acks. It retries transient
// failures until its context ends, so the engine pauses while Postgres is away and goes
// on by itself when it returns.
type writer struct {
	store    *persistence.Store
	js       jetstream.JetStream
	engine   *actor.Engine
	log      *slog.Logger
	metrics  *metrics
	budgets  *budgets
	maxBatch int

	in   chan job
	pubs chan []pubJob
	side sync.WaitGroup
}

func newWriter(store *persistence.Store, js jetstream.JetStream, engine *actor.Engine, log *slog.Logger, m *metrics, b *budgets, maxBatch, queue int) *writer {
	return &writer{
		store: store, js: js, engine: engine, log: log, metrics: m, budgets: b, maxBatch: maxBatch,
		in:   make(chan job, queue),
		pubs: make(chan []pubJob, 64),
	}
}

// submit queues j. It blocks only when the queue is full, which the partitions' bounded
// in-flight work prevents.
func (w *writer) submit(j job) { w.in <- j }

// groupMin is the smallest batch worth a second concurrent transaction: below it the
// writer lets the batch grow while the commit in flight finishes (group commit).
const groupMin = 64

// run commits batches on up to n concurrent transactions until ctx ends. A batch is
// whatever is queued (up to maxBatch). While a commit is in flight another starts only
// for a batch of at least groupMin; a smaller one waits for the flight to land and grows
// meanwhile. Under light load that means one commit at a time with every decision that
// arrived during the previous one — each transaction costs ~1 ms of CPU (Postgres and
// ours) besides its decisions, and its WAL flush, so fewer and larger commits leave the
// CPU to the events; under heavy load batches are large and n commits overlap one's WAL
// flush with the next one's work. A user has at most one decision in flight, so
// concurrent batches never touch the same user.
func (w *writer) run(ctx context.Context, n int) {
	var flights sync.WaitGroup
	landed := make(chan struct{}, n)
	inflight := 0
	defer func() {
		flights.Wait()
		w.side.Wait()
		close(w.pubs)
	}()
	for {
		var batch []job
		select {
		case <-ctx.Done():
			return
		case j := <-w.in:
			batch = append(make([]job, 0, min(w.maxBatch, 64)), j)
		}
		batch = w.fill(batch)
		for inflight > 0 && (inflight >= n || len(batch) < groupMin) {
			in := w.in
			if len(batch) >= w.maxBatch {
				in = nil // full: only a landing commit can move things on
			}
			select {
			case <-ctx.Done():
				return
			case <-landed:
				inflight--
			case j := <-in:
				batch = w.fill(append(batch, j))
			}
		}
		commits := batch[:0:0]
		for _, j := range batch {
			if j.kind == jobCommit {
				commits = append(commits, j)
				continue
			}
			w.side.Add(1)
			go func() {
				defer w.side.Done()
				w.handleSide(ctx, j)
			}()
		}
		if len(commits) == 0 {
			continue
		}
		inflight++
		flights.Add(1)
		go func() {
			defer flights.Done()
			w.commit(ctx, commits)
			landed <- struct{}{}
		}()
	}
}

// fill appends the queued jobs to batch, up to maxBatch, without waiting.
func (w *writer) fill(batch []job) []job {
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

// commit stores the decisions of jobs, retrying transient failures with back-off.
func (w *writer) commit(ctx context.Context, jobs []job) {
	// flat holds every decision, a chain's members right after its head.
	flat := make([]job, 0, len(jobs))
	for _, j := range jobs {
		flat = append(flat, j)
		flat = append(flat, j.more...)
	}
	ds := make([]loyalty.Decision, len(flat))
	for i := range flat {
		ds[i] = flat[i].decision
	}
	var outs []persistence.Outcome
	lastProgress := time.Now()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		var err error
		outs, err = w.store.CommitBatch(ctx, ds)
		w.metrics.commitDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			break
		}
		var pe *persistence.PermanentError
		if errors.As(err, &pe) {
			if len(jobs) == 1 {
				for _, f := range flat {
					w.budgets.settle(f.decision.Budget, false)
				}
				if len(flat) > 1 {
					w.reply(jobs[0], DecisionCommitted{Outcome: outcomeChainFailed}) // one by one finds the culprit
				} else {
					w.reply(jobs[0], DecisionCommitted{Outcome: outcomeRejected, Err: err})
				}
				return
			}
			// Find the culprit: commit one by one.
			for _, j := range jobs {
				w.commit(ctx, []job{j})
			}
			return
		}
		if ctx.Err() != nil {
			return // shutting down: the messages stay unacked and come again
		}
		w.metrics.commitErrors.Inc()
		w.log.Warn("commit failed; retrying", "attempt", attempt, "batch", len(flat), "err", err)
		if time.Since(lastProgress) > 10*time.Second {
			for _, f := range flat {
				_ = f.ev.Msg.InProgress()
			}
			lastProgress = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff(attempt, 50*time.Millisecond, 5*time.Second))):
		}
	}
	// A chain that did not commit whole is answered once and redone one by one.
	k := 0
	settled := make([]job, 0, len(flat))
	settledOuts := make([]persistence.Outcome, 0, len(flat))
	for _, j := range jobs {
		n := 1 + len(j.more)
		chainOuts := outs[k : k+n]
		members := flat[k : k+n]
		k += n
		if n == 1 {
			settled = append(settled, j)
			settledOuts = append(settledOuts, chainOuts[0])
			continue
		}
		whole, fenced := true, false
		for _, o := range chainOuts {
			whole = whole && o == persistence.Committed
			fenced = fenced || o == persistence.Fenced
		}
		if whole {
			settled = append(settled, members...)
			settledOuts = append(settledOuts, chainOuts...)
			continue
		}
		for _, m := range members {
			w.budgets.settle(m.decision.Budget, false)
		}
		if fenced {
			j.res.state.Store(nil)
			w.metrics.fenced.Inc()
		}
		w.reply(j, DecisionCommitted{Outcome: outcomeChainFailed, Fenced: fenced})
	}
	jobs, outs = settled, settledOuts
	w.metrics.batchSize.Observe(float64(len(flat)))
	pubs := make([]pubJob, 0, len(jobs))
	debug := w.log.Enabled(ctx, slog.LevelDebug)
	reloaded := false
	for i, j := range jobs {
		// The budget reservations end here, whatever the actor does next.
		w.budgets.settle(j.decision.Budget, outs[i] == persistence.Committed)
		switch outs[i] {
		case persistence.Committed:
			if j.res != nil {
				u := j.decision.User // a copy: the job's other fields need not stay alive
				j.res.state.Store(&u)
			}
			if j.decision.Rejected != "" {
				w.metrics.processed.WithLabelValues("rejected").Inc()
			} else {
				w.metrics.processed.WithLabelValues("applied").Inc()
			}
			for _, r := range j.decision.Rewards {
				w.metrics.rewards.WithLabelValues(r.CampaignID, r.Type).Inc()
			}
			pj := pubJob{ev: j.ev, rewards: j.decision.Rewards, park: j.decision.Rejected, tier: j.decision.TierChange}
			for _, l := range j.decision.Ledger {
				if l.Kind == loyalty.LedgerExpire {
					pj.expired = append(pj.expired, l)
				}
			}
			pubs = append(pubs, pj)
			w.reply(j, DecisionCommitted{Outcome: outcomeCommitted})
			if debug {
				w.log.Debug("event committed", "event_id", j.decision.EventID, "user_id", j.decision.User.UserID,
					"partition", j.ev.Partition, "seq", j.ev.Seq, "rewards", len(j.decision.Rewards),
					"rejected", j.decision.Rejected, "correlation_id", j.ev.CorrelationID)
			}
		case persistence.Duplicate:
			w.metrics.processed.WithLabelValues("duplicate").Inc()
			pubs = append(pubs, pubJob{ev: j.ev})
			w.reply(j, DecisionCommitted{Outcome: outcomeDuplicate})
		case persistence.OverBudget:
			if !reloaded {
				// Another engine granted meanwhile: take the stored totals before the actor
				// decides again (it never reads Postgres itself).
				if err := w.budgets.load(ctx, w.store); err != nil {
					w.log.Warn("reload budgets after an over-budget commit", "err", err)
				}
				reloaded = true
			}
			w.reply(j, DecisionCommitted{Outcome: outcomeOverBudget})
		case persistence.Fenced:
			if j.res != nil {
				j.res.state.Store(nil)
			}
			w.metrics.fenced.Inc()
			w.reply(j, DecisionCommitted{Outcome: outcomeFenced})
		}
	}
	if len(pubs) > 0 {
		w.pubs <- pubs
	}
}

func (w *writer) reply(j job, m DecisionCommitted) {
	if j.pid != nil {
		w.engine.Send(j.pid, m)
	}
}

// handleSide runs the rare jobs: redeliveries and parking.
func (w *writer) handleSide(ctx context.Context, j job) {
	switch j.kind {
	case jobRedelivered:
		var rewards []loyalty.Reward
		var park string
		for attempt := 1; ; attempt++ {
			var err error
			rewards, err = w.store.RewardsOfEvent(ctx, j.ev.Event.ID)
			if err == nil {
				var outcome string
				outcome, park, err = w.store.ProcessedOutcome(ctx, j.ev.Event.ID)
				if errors.Is(err, persistence.ErrNotFound) {
					err = nil // a duplicate id: nothing of its own was recorded
				}
				if outcome != "rejected" {
					park = ""
				}
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("load rewards of redelivered event; retrying", "event_id", j.ev.Event.ID, "err", err)
			sleepCtx(ctx, backoff(attempt, 50*time.Millisecond, 5*time.Second))
		}
		w.metrics.processed.WithLabelValues("redelivered").Inc()
		w.reply(j, DecisionCommitted{Outcome: outcomeDuplicate})
		w.pubs <- []pubJob{{ev: j.ev, rewards: rewards, park: park}}
	case jobPark:
		entry := w.dlqEntry(j.ev, j.reason)
		for attempt := 1; ; attempt++ {
			err := bus.PublishDLQ(ctx, w.js, entry)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("park event in DLQ; retrying", "partition", j.ev.Partition, "seq", j.ev.Seq, "err", err)
			sleepCtx(ctx, backoff(attempt, 50*time.Millisecond, 5*time.Second))
		}
		w.log.Warn("event parked in DLQ", "event_id", j.ev.Event.ID, "user_id", j.ev.Event.UserID,
			"partition", j.ev.Partition, "seq", j.ev.Seq, "reason", j.reason, "correlation_id", j.ev.CorrelationID)
		w.metrics.processed.WithLabelValues("parked").Inc()
		w.metrics.dlq.Inc()
		_ = j.ev.Msg.Ack()
		j.ev.finish()
		w.reply(j, DecisionCommitted{Outcome: outcomeParked})
	}
}

// publish publishes rewards and loyalty notices and acks messages, batch by batch,
// until the writer closes its channel. Several may run at once. A message whose notices
// could not be published is not acked: JetStream delivers it again and the redelivery
// path republishes them.
func (w *writer) publish() {
	for pubs := range w.pubs {
		var futures []jetstream.PubAckFuture
		failed := make([]bool, len(pubs))
		owner := make([]int, 0)
		for i, p := range pubs {
			for _, n := range noticesOf(p) {
				f, err := w.js.PublishMsgAsync(n.Msg())
				if err != nil {
					w.log.Error("publish notice", "subject", n.Subject, "notice_id", n.ID, "err", err)
					failed[i] = true
					continue
				}
				futures = append(futures, f)
				owner = append(owner, i)
			}
		}
		for k, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				w.log.Error("publish notice", "err", err)
				failed[owner[k]] = true
			case <-time.After(10 * time.Second):
				failed[owner[k]] = true
			}
		}
		for i, p := range pubs {
			if p.park != "" && !failed[i] {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := bus.PublishDLQ(ctx, w.js, w.dlqEntry(p.ev, p.park)); err != nil {
					w.log.Error("park rejected event in DLQ", "event_id", p.ev.Event.ID, "err", err)
					failed[i] = true
				} else {
					w.metrics.dlq.Inc()
				}
				cancel()
			}
			if !failed[i] {
				_ = p.ev.Msg.Ack()
			}
			p.ev.finish()
		}
	}
}

// noticesOf is what committed work announces downstream: one REWARDS message per
// reward, a LOYALTY message per expiry entry and one for a tier change.
func noticesOf(p pubJob) []bus.Notice {
	if len(p.rewards) == 0 && len(p.expired) == 0 && p.tier == nil {
		return nil
	}
	userID := p.ev.Event.UserID
	token := event.Token(userID)
	out := make([]bus.Notice, 0, len(p.rewards)+len(p.expired)+1)
	for k := range p.rewards {
		r := &p.rewards[k]
		out = append(out, bus.RewardNotice(r.CampaignID, token, r.ID, p.ev.CorrelationID, mustJSON(r)))
	}
	for k := range p.expired {
		out = append(out, bus.PointsExpiredNotice(token, p.ev.Event.ID, k, mustJSON(loyalty.PointsExpiredOf(userID, &p.expired[k]))))
	}
	if p.tier != nil {
		out = append(out, bus.TierChangedNotice(token, p.ev.Event.ID, mustJSON(loyalty.TierChangedOf(userID, p.ev.Event.ID, p.tier))))
	}
	return out
}

// mustJSON encodes v, which is plain data that always encodes.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (w *writer) dlqEntry(ev *EventReceived, reason string) bus.DLQEntry {
	return bus.DLQEntry{
		Partition:  ev.Partition,
		StreamSeq:  ev.Seq,
		Subject:    ev.Subject,
		Deliveries: ev.Deliveries,
		Reason:     reason,
		Data:       ev.Msg.Data(),
		Header:     ev.Msg.Headers(),
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}
