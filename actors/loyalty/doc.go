// Package loyalty is the pure domain of Campaign Manager: a user's loyalty state (User:
// points in lots with expiry, tier, spend and daily history, counters), what one event
// does to it (Step, returning a Decision: the new state, rewards, ledger entries, the
// event's effect for later refunds, budget deltas, a tier change), the tier configuration
// (TierConfig), the bodies of the LOYALTY notices, and the compact in-memory codec of a
// state (EncodeCompact, DecodeCompact).
//
// It imports no NATS, Postgres or hollywood code: the engine (package actors) feeds it
// events and campaign matches and commits what it decides through package persistence,
// which maps these types to rows; the rule compiler (package cel) reads User as the rules'
// user variable.
//
// The package owns no goroutines and keeps no mutable state; every function is safe for
// concurrent use on distinct values.
package loyalty
