package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// pubJob is committed work waiting for its notices to be published and its message acked.
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

// parkJob is an event no actor applies: it goes to the DLQ with the reason, then it is
// acked. pid, when set, is told with EventParked.
type parkJob struct {
	ev     *EventReceived
	pid    *actor.PID
	reason string
}

// publisher publishes what the committer committed (rewards on REWARDS, loyalty notices
// on LOYALTY, rejected events to the DLQ) and then acks the messages; and it parks the
// events that never reached a commit. Its goroutines are Run's.
type publisher struct {
	js      jetstream.JetStream
	engine  *actor.Engine
	log     *slog.Logger
	metrics *metrics
	retry   supervisor.Policy
	workers int

	pubs  chan []pubJob
	parks chan parkJob
}

// hand queues committed work; it blocks only while the publishers are busy.
func (p *publisher) hand(pubs []pubJob) { p.pubs <- pubs }

// park queues an event for the DLQ.
func (p *publisher) park(j parkJob) { p.parks <- j }

// Run publishes on p.workers goroutines until ctx ends, then waits for them. Work still
// queued then stays unacked and is delivered again.
func (p *publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case pubs := <-p.pubs:
					p.publish(ctx, pubs)
				case j := <-p.parks:
					p.parkNow(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// publish publishes the notices of a batch, waits for their acknowledgements (10 s for
// the batch), parks the rejected events and acks each message whose work all went
// through. A message whose notices could not be published is not acked: JetStream
// delivers it again and the redelivery path republishes them (the notices' ids
// deduplicate them).
func (p *publisher) publish(ctx context.Context, pubs []pubJob) {
	futures := make([]jetstream.PubAckFuture, 0, len(pubs))
	failed := make([]bool, len(pubs))
	owner := make([]int, 0, len(pubs))
	for i, pj := range pubs {
		notices, err := noticesOf(pj)
		if err != nil {
			p.log.Error("encode notices", "event_id", pj.ev.Event.ID, "err", err)
			failed[i] = true
		}
		for _, n := range notices {
			f, err := p.js.PublishMsgAsync(n.Msg())
			if err != nil {
				p.log.Error("publish notice", "subject", n.Subject, "notice_id", n.ID, "err", err)
				failed[i] = true
				continue
			}
			futures = append(futures, f)
			owner = append(owner, i)
		}
	}
	timeout := time.NewTimer(10 * time.Second) // one for the batch, not one per notice
	defer timeout.Stop()
	expired := false
	for k, f := range futures {
		if expired {
			select {
			case <-f.Ok():
			default:
				failed[owner[k]] = true
			}
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			p.log.Error("publish notice", "err", err)
			failed[owner[k]] = true
		case <-timeout.C:
			expired = true
			failed[owner[k]] = true
		}
	}
	published := time.Now()
	for i, pj := range pubs {
		if !failed[i] && pj.park == "" {
			p.metrics.stages.observe(&pj.ev.stages, published)
		}
		if pj.park != "" && !failed[i] {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := bus.PublishDLQ(pctx, p.js, dlqEntry(pj.ev, pj.park)); err != nil {
				p.log.Error("park rejected event in DLQ", "event_id", pj.ev.Event.ID, "err", err)
				failed[i] = true
			} else {
				p.metrics.dlq.Inc()
			}
			cancel()
		}
		if !failed[i] {
			_ = pj.ev.Msg.Ack()
		}
		pj.ev.finish()
	}
}

// parkNow publishes j's event to the DLQ, retrying until ctx ends, acks it and tells the
// actor.
func (p *publisher) parkNow(ctx context.Context, j parkJob) {
	policy := p.retry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		p.log.Warn("park event in DLQ; retrying", "partition", j.ev.Partition, "seq", j.ev.Seq, "err", err)
	}
	entry := dlqEntry(j.ev, j.reason)
	if err := policy.Do(ctx, func(ctx context.Context) error { return bus.PublishDLQ(ctx, p.js, entry) }); err != nil {
		return // shutting down: the message stays unacked
	}
	p.log.Warn("event parked in DLQ", "event_id", j.ev.Event.ID, "user_id", j.ev.Event.UserID,
		"partition", j.ev.Partition, "seq", j.ev.Seq, "reason", j.reason, "correlation_id", j.ev.CorrelationID)
	p.metrics.processed.WithLabelValues("parked").Inc()
	p.metrics.dlq.Inc()
	_ = j.ev.Msg.Ack()
	j.ev.finish()
	if j.pid != nil {
		p.engine.Send(j.pid, EventParked{})
	}
}

// noticesOf is what committed work announces downstream: one REWARDS message per
// reward, a LOYALTY message per expiry entry and one for a tier change. It fails only
// for a body that does not encode (a reward payload holding something JSON cannot say).
func noticesOf(p pubJob) ([]bus.Notice, error) {
	if len(p.rewards) == 0 && len(p.expired) == 0 && p.tier == nil {
		return nil, nil
	}
	userID := p.ev.Event.UserID
	token := event.Token(userID)
	out := make([]bus.Notice, 0, len(p.rewards)+len(p.expired)+1)
	for k := range p.rewards {
		r := &p.rewards[k]
		body, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode reward %s: %w", r.ID, err)
		}
		out = append(out, bus.RewardNotice(r.CampaignID, token, r.ID, p.ev.CorrelationID, body))
	}
	for k := range p.expired {
		body, err := json.Marshal(loyalty.PointsExpiredOf(userID, &p.expired[k]))
		if err != nil {
			return nil, err
		}
		out = append(out, bus.PointsExpiredNotice(token, p.ev.Event.ID, k, body))
	}
	if p.tier != nil {
		body, err := json.Marshal(loyalty.TierChangedOf(userID, p.ev.Event.ID, p.tier))
		if err != nil {
			return nil, err
		}
		out = append(out, bus.TierChangedNotice(token, p.ev.Event.ID, body))
	}
	return out, nil
}

func dlqEntry(ev *EventReceived, reason string) bus.DLQEntry {
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
