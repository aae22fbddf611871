package event

import "time"

// Event is one customer event as accepted by ingress and stored in the EVENTS stream.
// OccurredAt is always set once an event has been accepted (ingress fills in the time
// received), so every consumer evaluates a redelivered event the same way.
type Event struct {
	ID         string         `json:"id"`
	UserID     string         `json:"user_id"`
	Type       string         `json:"type"`
	Amount     float64        `json:"amount,omitempty"`
	Currency   string         `json:"currency,omitempty"`
	OccurredAt time.Time      `json:"occurred_at"`
	Attributes map[string]any `json:"attributes,omitempty"`
}
