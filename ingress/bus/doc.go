// Package bus is the NATS side of Campaign Manager, in ids and bytes: the embedded
// server and who may do what on it (auth.go: accounts, users, permissions), the
// JetStream streams (EVENTS, REWARDS, LOYALTY, DLQ) and KV buckets (campaigns, settings,
// api_keys; Bucket), every subject's build and parse
// (subjects.go), every outgoing message (notices.go: REWARDS and LOYALTY notices, DLQ
// entries), the engine's durable consumers over ranges of partitions (Lane,
// EnsureConsumers), the event publisher used by ingest, and the DLQ's admin operations.
// What a value or a body means is its callers': bus imports neither the domain nor
// Postgres.
//
// Callers: cmd/campaignd builds the connection and streams; ingress publishes events
// through Publisher; actors consume partitions and publish notices and DLQ entries; the
// admin API puts to the buckets. The package owns no goroutines: Bucket.Watch runs on
// its caller's goroutine until the context ends.
package bus
