package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	js jetstream.JetStream
}

// NewPublisher returns a Publisher over js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// PublishEvents publishes every event asynchronously and waits for each acknowledgement
// until ctx ends. The result at index i belongs to evs[i]; an event whose ack did not
// arrive has Err set (it may or may not be stored: retrying with the same id is safe).
func (p *Publisher) PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []PublishResult {
	results := make([]PublishResult, len(evs))
	futures := make([]jetstream.PubAckFuture, len(evs))
	for i, ev := range evs {
		data, err := json.Marshal(ev)
		if err != nil {
			results[i].Err = fmt.Errorf("encode event: %w", err)
			continue
		}
		msg := &nats.Msg{Subject: IngestSubject(ev.Type, event.Token(ev.UserID)), Data: data, Header: nats.Header{}}
		if correlationID != "" {
			msg.Header.Set(HeaderCorrelationID, correlationID)
		}
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID), jetstream.WithExpectStream(EventsStream))
		if err != nil {
			results[i].Err = fmt.Errorf("publish event: %w", err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			results[i] = PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			results[i].Err = fmt.Errorf("publish event: %w", err)
		case <-ctx.Done():
			results[i].Err = fmt.Errorf("publish event: %w", ctx.Err())
		}
	}
	return results
}
