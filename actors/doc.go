// Package actors is the engine: durable consumers (each over a range of partitions) feed
// per-user hollywood actors
// that hold loyalty state in memory, evaluate the compiled campaign rules and hand their
// decisions to a batching writer that commits to Postgres, publishes rewards and only
// then acks the JetStream messages.
//
// Goroutines owned: one per consumer (its message loop), one loader, the writers and
// publishers (commits, then rewards and acks), one campaign watcher, plus the hollywood engine's actors.
// Postgres is the record; actors are a cache and a serialiser. A user's events reach one
// actor in stream order, and the actor has one job with the writer at a time: it submits
// a decision (or a chain of them, for events that queued up meanwhile) and waits for the
// writer's answer before the next.
package actors
