package event

import (
	"strings"
	"time"
)

// Event types with a meaning in the loyalty model (DESIGN §4); any other type is only
// counted and evaluated. This is the one list: ingest, the engine and the admin API all
// use these names.
const (
	// TypePurchase: Amount is money; it counts in purchase_count, spend and history.
	TypePurchase = "purchase"
	// TypeRefund: attributes.original_event_id names an earlier purchase of the user.
	TypeRefund = "refund"
	// TypeRedeem: Amount is a whole number of points to spend.
	TypeRedeem = "redeem"
	// TypeAdjust is an admin's points adjustment (the engine's own).
	TypeAdjust = "points.adjust"
	// TypeExpire is an expiry sweep's event (the engine's own).
	TypeExpire = "points.expire"
)

// ReservedPrefix starts every event type that only the engine itself may send.
const ReservedPrefix = "points."

// IsReserved reports whether typ is one of the engine's own event types (admin
// adjustments, expiry sweeps), which no storefront or service may send.
func IsReserved(typ string) bool { return strings.HasPrefix(typ, ReservedPrefix) }

// CheckIngestable returns a *FieldError naming "type" when e has a reserved type, so
// every ingest path (HTTP and NATS) refuses the same events; nil otherwise.
func (e *Event) CheckIngestable() error {
	if IsReserved(e.Type) {
		return &FieldError{Field: "type", Reason: "types starting with " + ReservedPrefix + " are reserved for the engine"}
	}
	return nil
}

// DefaultMaxSkew is how far in the future, by default, an event's occurred_at may be from
// the time it was received: clocks differ a little, but a future-dated event would expire
// points and age history early.
const DefaultMaxSkew = 5 * time.Minute

// CheckNotFuture returns a *FieldError for occurred_at when the event is dated more than
// skew after received (the time ingress received it, or the time JetStream stored it).
func (e *Event) CheckNotFuture(received time.Time, skew time.Duration) error {
	if limit := received.Add(skew); e.OccurredAt.After(limit) {
		return &FieldError{Field: "occurred_at", Reason: "is " + e.OccurredAt.UTC().Format(time.RFC3339) +
			", more than " + skew.String() + " after the time received (" + received.UTC().Format(time.RFC3339) +
			"); events may not be dated in the future"}
	}
	return nil
}
