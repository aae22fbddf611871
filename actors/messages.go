package actors

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// EventReceived: a partition hands a decoded event to its user's actor.
type EventReceived struct {
	Msg           jetstream.Msg
	Event         event.Event
	Seq           uint64
	Partition     int
	Deliveries    uint64
	Subject       string
	CorrelationID string
	// done is called once the message is acked (or left for redelivery at shutdown).
	done func()
}

// UserLoaded: the loader answers a load request.
type UserLoaded struct {
	User  loyalty.User
	Found bool
	Err   error
}

// EffectLoaded: the loader answers a refund's request for what its original event did.
type EffectLoaded struct {
	// EventID is the refund's id.
	EventID string
	// Effect is the original's effect; nil when the store has none (the refund is refused).
	Effect *loyalty.EventEffect
	Err    error
}

// DecisionCommitted: the writer answers a submitted decision or parked event.
type DecisionCommitted struct {
	Outcome outcome
	Err     error
	// Fenced, with outcomeChainFailed: the stored user moved; reload before redoing.
	Fenced bool
}

// retryEvent: a timer asks the actor to try its blocked event again.
type retryEvent struct{}

// retryLoad: a timer asks the actor to load its state again.
type retryLoad struct{}

type outcome int

const (
	outcomeCommitted outcome = iota
	outcomeDuplicate
	outcomeFenced
	outcomeOverBudget
	outcomeRejected // the database refused the data: park it
	outcomeParked   // parked in the DLQ and acked
	// outcomeChainFailed: a chain of the user's events did not commit (nothing of it
	// did); the actor applies them again one by one, which finds the culprit.
	outcomeChainFailed
)

// finish marks the message as no longer in flight in its partition.
func (e *EventReceived) finish() {
	if e.done != nil {
		e.done()
	}
}
