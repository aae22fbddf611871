package webhook

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// recorder writes delivery records to Postgres in batches (one statement per batch), so
// a delivery costs the database a share of a statement, not a transaction. A record a
// caller waits for (a final failure, which must be listed before its notice is let go)
// is never dropped. A success's notice is acked by the recorder once its batch is
// written, so every delivered notice is recorded (a crash before the write sends it
// again). Records are dropped when the queue is full (Postgres away or behind), and a
// batch that cannot be written after its retries is given up; both are counted in
// campaign_webhook_records_dropped_total, and their notices are acked all the same: the
// deliveries were made.
type recorder struct {
	store   *persistence.Store
	log     *slog.Logger
	metrics *metrics
	retry   supervisor.Policy
	batch   int
	every   time.Duration
	in      chan recordJob
}

type recordJob struct {
	d    persistence.Delivery
	done chan error // nil: nobody waits
	// ack, when set, is the notice to acknowledge once the record is written.
	ack jetstream.Msg
}

func newRecorder(store *persistence.Store, log *slog.Logger, m *metrics, batch int, every time.Duration) *recorder {
	return &recorder{store: store, log: log, metrics: m, retry: supervisor.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second},
		batch: batch, every: every, in: make(chan recordJob, 16*batch)}
}

// add queues d; it does not block (a full queue drops it).
func (r *recorder) add(d persistence.Delivery) {
	select {
	case r.in <- recordJob{d: d}:
	default:
		r.metrics.dropped.Inc()
	}
}

// addThenAck queues d and acknowledges m once d is written; it does not block (a full
// queue drops d and acknowledges m at once).
func (r *recorder) addThenAck(d persistence.Delivery, m jetstream.Msg) {
	select {
	case r.in <- recordJob{d: d, ack: m}:
	default:
		r.metrics.dropped.Inc()
		_ = m.Ack()
	}
}

// write queues d and waits until it is written or ctx ends.
func (r *recorder) write(ctx context.Context, d persistence.Delivery) error {
	done := make(chan error, 1)
	select {
	case r.in <- recordJob{d: d, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes batches until ctx ends, then what is queued by the drain's deadline.
func (r *recorder) Run(ctx context.Context) error {
	t := time.NewTicker(r.every)
	defer t.Stop()
	var jobs []recordJob
	flush := func(ctx context.Context) {
		if len(jobs) == 0 {
			return
		}
		ds := make([]persistence.Delivery, len(jobs))
		for i, j := range jobs {
			ds[i] = j.d
		}
		policy := r.retry
		policy.MaxAttempts = 5
		err := policy.Do(ctx, func(ctx context.Context) error { return r.store.RecordDeliveries(ctx, ds) })
		if err != nil {
			r.log.Error("write webhook delivery records", "records", len(ds), "err", err)
		}
		for _, j := range jobs {
			if j.done != nil {
				j.done <- err
			}
			if j.ack != nil {
				if err != nil {
					r.metrics.dropped.Inc()
				}
				_ = j.ack.Ack()
			}
		}
		jobs = jobs[:0]
	}
	for {
		select {
		case <-ctx.Done():
		queued:
			for {
				select {
				case j := <-r.in:
					jobs = append(jobs, j)
				default:
					break queued
				}
			}
			flush(supervisor.Draining(ctx))
			return nil
		case j := <-r.in:
			jobs = append(jobs, j)
			if len(jobs) >= r.batch {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		}
	}
}

// prune deletes the records of deliveries that succeeded longer than retention ago, once
// an hour, until ctx ends.
func prune(ctx context.Context, store *persistence.Store, log *slog.Logger, retention time.Duration) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		for {
			n, err := store.PruneDeliveries(ctx, time.Now().Add(-retention), 10000)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("prune webhook delivery records", "err", err)
			}
			if err != nil || n < 10000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
