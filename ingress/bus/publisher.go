package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// PublishResult is the outcome of storing one event.
type PublishResult struct {
	// Seq is the EVENTS stream sequence; for a duplicate, the sequence of the original.
	Seq uint64
	// Duplicate is true when JetStream already held an event with this id.
	Duplicate bool
	Err       error
}

// Publisher stores events in the EVENTS stream with Nats-Msg-Id = event id, each on its
// IngestSubject (the engine's own types on ops.<token>). It is safe for concurrent use.
type Publisher struct {
	js    jetstream.JetStream
	retry supervisor.Policy
}

// NewPublisher returns a Publisher over js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// attemptTimeout bounds one attempt to store an event: a publish to a stream whose
// leader just died gets no answer at all, and is sent again once the cluster has elected
// a new one (the Nats-Msg-Id keeps it once).
const attemptTimeout = 1500 * time.Millisecond

// PublishEvents publishes every event asynchronously and waits for each acknowledgement
// until ctx ends, publishing again (same Nats-Msg-Id) what gets no answer within
// attemptTimeout or fails. The result at index i belongs to evs[i]; an event whose ack
// did not arrive by then has Err set (it may or may not be stored: retrying with the same
// id is safe). An event stored on a second attempt is reported as not a duplicate even
// if JetStream says so: the first attempt may have stored it.
func (p *Publisher) PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []PublishResult {
	results := make([]PublishResult, len(evs))
	futures := make([]jetstream.PubAckFuture, len(evs))
	msgs := make([]*nats.Msg, len(evs))
	for i, ev := range evs {
		msg, err := eventMsg(ev, correlationID)
		if err != nil {
			results[i].Err = err
			continue
		}
		msgs[i] = msg
		futures[i], _ = p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(EventsStream))
	}
	for i, msg := range msgs {
		if msg != nil {
			results[i] = p.await(ctx, futures[i], msg)
		}
	}
	return results
}

// eventMsg is the message that stores ev: on its IngestSubject, with Nats-Msg-Id = its
// id and the correlation id when there is one.
func eventMsg(ev *event.Event, correlationID string) (*nats.Msg, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	msg := &nats.Msg{Subject: IngestSubject(ev.Type, event.Token(ev.UserID)), Data: data, Header: nats.Header{}}
	if correlationID != "" {
		msg.Header.Set(HeaderCorrelationID, correlationID)
	}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	return msg, nil
}

// await waits for f, publishing msg again on a failure or a silence until ctx ends.
func (p *Publisher) await(ctx context.Context, f jetstream.PubAckFuture, msg *nats.Msg) PublishResult {
	last := errors.New("no acknowledgement")
	for attempt := 1; ; attempt++ {
		if f != nil {
			t := time.NewTimer(attemptTimeout)
			select {
			case ack := <-f.Ok():
				t.Stop()
				return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate && attempt == 1}
			case err := <-f.Err():
				last = err
			case <-t.C:
				last = fmt.Errorf("no acknowledgement within %s", attemptTimeout)
			case <-ctx.Done():
				t.Stop()
				return PublishResult{Err: fmt.Errorf("publish event: %w (last: %v)", ctx.Err(), last)}
			}
			t.Stop()
		}
		if !supervisor.Sleep(ctx, p.retry.Delay(attempt)) {
			return PublishResult{Err: fmt.Errorf("publish event: %w (last: %v)", ctx.Err(), last)}
		}
		var err error
		if f, err = p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(EventsStream)); err != nil {
			last, f = err, nil
		}
	}
}
