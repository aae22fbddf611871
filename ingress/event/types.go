package event

import "strings"

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
