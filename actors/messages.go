package actors

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/event"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// EventReceived is a decoded event a lane hands to its user's actor.
type EventReceived struct {
	Msg       jetstream.Msg
	Event     event.Event
	Seq       uint64
	Partition int
	// Epoch is the owner epoch of the partition when the lane received the event; its
	// commit carries it.
	Epoch         int64
	Deliveries    uint64
	Subject       string
	CorrelationID string
	// stages are the moments it reached each stage of the engine (metrics only).
	stages stageTimes
	// done is called once the message is acked (or left for redelivery at shutdown).
	done func()
}

// UserLoaded is the loader's answer to a state load.
type UserLoaded struct {
	User  loyalty.User
	Found bool
	Err   error
}

// EffectLoaded is the loader's answer to a refund's request for what its original event
// did.
type EffectLoaded struct {
	// EventID is the refund's id.
	EventID string
	// Effect is the original's effect; nil when the store has none (the refund is refused).
	Effect *loyalty.EventEffect
	Err    error
}

// DecisionCommitted is the committer's answer to a submitted decision (or chain of
// decisions) or to a redelivered event (Duplicate). Err set means the database refused
// the data for good (the event is parked); otherwise Outcome says what became of it, and
// for a chain that did not commit whole (ChainBroken) Fenced says whether a member was
// fenced (the actor reloads before redoing the chain one by one).
type DecisionCommitted struct {
	Outcome persistence.Outcome
	Fenced  bool
	Err     error
}

// EventParked is the publisher's answer to a parked event: it is in the DLQ and acked.
type EventParked struct{}

// retryEvent asks the actor to try its blocked event again (sent by a timer).
type retryEvent struct{}

// retryLoad asks the actor to load its state again (sent by a timer).
type retryLoad struct{}

// finish marks the message as no longer in flight in its partition.
func (e *EventReceived) finish() {
	if e.done != nil {
		e.done()
	}
}
