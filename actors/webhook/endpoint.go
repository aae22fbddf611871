package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// fetchWait bounds one pull request; an idle endpoint asks again this often.
const fetchWait = 2 * time.Second

// retryConcurrency is the most manual retries (WEBHOOKS) of an endpoint in flight.
const retryConcurrency = 4

// endpointStage delivers one endpoint's notices on this replica: a fetch loop per
// consumer (REWARDS, LOYALTY, WEBHOOKS), each pulling only as many notices as it has free
// attempt slots, so no notice waits here while its ack wait runs; each notice is
// attempted on a goroutine of its own and then acked, handed back with a delay, or
// terminated after its last attempt.
type endpointStage struct {
	d   *Dispatcher
	id  string
	log *slog.Logger

	mu      sync.Mutex
	hook    persistence.Webhook
	sources []bus.WebhookSource
	// floors are the last ack floors sampled, by stream: where a consumer that
	// disappeared is created again.
	floors map[string]uint64
	gone   atomic.Bool
}

// Run loads the endpoint from Postgres (the authority, and the only holder of its
// secrets), makes its consumers match it and delivers until ctx ends; then it stops
// fetching and lets the attempts in flight finish by the drain's deadline, handing back
// the rest. A consumer that disappears fails the stage, which the supervisor restarts.
func (e *endpointStage) Run(ctx context.Context) error {
	var w persistence.Webhook
	err := e.d.retry.Do(ctx, func(ctx context.Context) error {
		var err error
		w, err = e.d.deps.Store.GetWebhook(ctx, e.id)
		if errors.Is(err, persistence.ErrNotFound) {
			return supervisor.Permanent(err)
		}
		return err
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, persistence.ErrNotFound) || (err == nil && !w.Enabled):
		<-ctx.Done() // deleted or disabled meanwhile: the bucket says so next
		return nil
	case err != nil:
		return err
	}
	sources, err := e.d.deps.Bus.Ensure(ctx, specOf(&w), e.floorsCopy())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	e.mu.Lock()
	e.hook, e.sources = w, sources
	e.mu.Unlock()

	attempts, stopAttempts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAttempts()
	loops, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var inflight, running sync.WaitGroup
	errc := make(chan error, len(sources))
	for _, src := range sources {
		slots := e.d.cfg.Concurrency
		if src.Stream == bus.WebhooksStream {
			slots = retryConcurrency
		}
		running.Go(func() { errc <- e.fetch(loops, attempts, src, make(chan struct{}, slots), &inflight) })
	}
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
	}
	stopLoops()
	running.Wait()
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-supervisor.Draining(ctx).Done():
		stopAttempts() // their notices are handed back
		<-done
	}
	return failed
}

// fetch pulls src's notices while ctx lasts, each attempt holding one of slots.
func (e *endpointStage) fetch(ctx, attempts context.Context, src bus.WebhookSource, slots chan struct{}, inflight *sync.WaitGroup) error {
	release := func(n int) {
		for range n {
			<-slots
		}
	}
	failures := 0
	for ctx.Err() == nil && !e.gone.Load() {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
	more:
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := src.Consumer.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			release(n)
			if missing(err) {
				return fmt.Errorf("consumer %s on %s: %w", bus.WebhookConsumerName(e.id), src.Stream, err)
			}
			failures++
			e.log.Warn("fetch webhook notices", "stream", src.Stream, "err", err)
			supervisor.Sleep(ctx, e.d.retry.Delay(failures))
			continue
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if ctx.Err() != nil || e.gone.Load() {
				_ = m.Nak()
				release(1)
				continue
			}
			inflight.Go(func() {
				defer release(1)
				e.handle(attempts, m)
			})
		}
		cancel()
		release(n - got)
		if err := batch.Error(); err != nil && missing(err) {
			return fmt.Errorf("consumer %s on %s: %w", bus.WebhookConsumerName(e.id), src.Stream, err)
		}
		failures = 0
	}
	return nil
}

// missing reports whether err says the consumer is gone.
func missing(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrStreamNotFound)
}

// handle makes one attempt of the notice m and settles it: after a 2xx, acked once the
// recorder has written its record (so a crash in between sends it again rather than
// leave it unrecorded); after a 410 the endpoint is disabled and m handed back (it waits in the consumer until the
// endpoint is enabled again); after its last attempt it is recorded failed and
// terminated; otherwise handed back to come again after the schedule's delay (to any
// replica).
func (e *endpointStage) handle(ctx context.Context, m jetstream.Msg) {
	n, err := bus.ParseWebhookNotice(m)
	if err != nil {
		e.log.Error("webhook notice unreadable; dropped", "err", err)
		_ = m.Term()
		return
	}
	cls, ok := classify(n.Subject)
	if !ok {
		e.log.Error("webhook notice on an unexpected subject; dropped", "subject", n.Subject)
		_ = m.Term()
		return
	}
	e.mu.Lock()
	w := e.hook
	e.mu.Unlock()
	if !wanted(w.Filter, cls, n.Body) {
		_ = m.Ack()
		e.d.metrics.deliveries.WithLabelValues(e.id, outcomeSkipped).Inc()
		return
	}
	attempt := n.Earlier + int(min(n.Delivered, 1<<20))
	a := e.d.deps.Sender.Send(ctx, &w, n.ID, envelope(cls.typ, n.Time, n.Body))
	if !a.OK() && ctx.Err() != nil {
		_ = m.Nak() // stopping: the next owner attempts it at once
		return
	}
	e.d.metrics.latency.WithLabelValues(e.id).Observe(a.Latency.Seconds())
	rec := a.Record(e.id, n.ID, cls.typ, attempt)
	rec.Subject, rec.Stream, rec.StreamSeq = n.Subject, n.Stream, n.StreamSeq
	switch {
	case a.OK():
		e.d.metrics.deliveries.WithLabelValues(e.id, outcomeDelivered).Inc()
		e.d.rec.addThenAck(rec, m) // acked once its record is written
	case a.Gone():
		e.d.metrics.deliveries.WithLabelValues(e.id, outcomeGone).Inc()
		e.d.rec.add(rec)
		_ = m.NakWithDelay(time.Second)
		if e.gone.CompareAndSwap(false, true) {
			e.d.disable(ctx, e.id, fmt.Sprintf("the endpoint answered 410 Gone at %s", a.At.UTC().Format(time.RFC3339)))
		}
	case int(n.Delivered) >= e.d.cfg.MaxAttempts:
		rec.Status = persistence.DeliveryFailed
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := e.d.rec.write(wctx, rec)
		cancel()
		if err != nil {
			e.log.Error("record failed webhook delivery; it is attempted again", "notice_id", n.ID, "err", err)
			_ = m.NakWithDelay(e.d.delay(int(n.Delivered), 0))
			return
		}
		_ = m.Term()
		e.d.metrics.deliveries.WithLabelValues(e.id, outcomeFailed).Inc()
		e.log.Warn("webhook delivery failed for good", "notice_id", n.ID, "attempts", attempt, "err", a.Err)
	default:
		delay := e.d.delay(int(n.Delivered), a.RetryAfter)
		next := time.Now().Add(delay).UTC()
		rec.NextAttemptAt = &next
		_ = m.NakWithDelay(delay)
		e.d.metrics.deliveries.WithLabelValues(e.id, outcomeRetrying).Inc()
		e.d.rec.add(rec)
	}
}

// sample returns the endpoint's backlog over its consumers and remembers their ack
// floors; ok is false before the stage has its consumers or when NATS does not answer.
func (e *endpointStage) sample(ctx context.Context) (uint64, bool) {
	e.mu.Lock()
	sources := e.sources
	e.mu.Unlock()
	if len(sources) == 0 {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var n uint64
	for _, s := range sources {
		info, err := s.Consumer.Info(ctx)
		if err != nil {
			return 0, false
		}
		n += info.NumPending + uint64(max(info.NumAckPending, 0))
		e.mu.Lock()
		e.floors[s.Stream] = info.AckFloor.Stream
		e.mu.Unlock()
	}
	return n, true
}

func (e *endpointStage) floorsCopy() map[string]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.floors)
}
