// Package bus is the NATS side of Campaign Manager, in ids and bytes: the embedded
// server and who may do what on it (auth.go: accounts, users, permissions), the
// JetStream streams (EVENTS, REWARDS, LOYALTY, DLQ) and KV buckets (campaigns, settings,
// api_keys; Bucket), every subject's build and parse
// (subjects.go), every outgoing message (notices.go: REWARDS and LOYALTY notices, DLQ
// entries), the engine's durable consumers over ranges of partitions (Lane,
// EnsureConsumers), the event publishers (Publisher, and Coalescer, which ingest uses: it
// coalesces concurrent requests' publishes), and the DLQ's admin operations.
// What a value or a body means is its callers': bus imports neither the domain nor
// Postgres.
//
// Callers: cmd/campaignd builds the connections and streams; ingress publishes events
// through a Coalescer (on a connection of its own); actors consume partitions and publish
// notices and DLQ entries (the engine's own events through Publisher); the admin API puts
// to the buckets. The package owns no goroutines: Bucket.Watch and Coalescer.Run run on
// their caller's goroutine (campaignd's supervisor) until the context ends.
package bus
