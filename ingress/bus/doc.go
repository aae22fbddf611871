// Package bus is the NATS side of Campaign Manager: the embedded server, the JetStream
// streams (EVENTS, REWARDS, DLQ), the per-partition consumers, the event publisher used by
// ingress, and the KV buckets (campaigns, api_keys) that carry admin changes to every
// process.
//
// Callers: cmd/campaignd builds the connection and streams; ingress publishes events
// through Publisher; actors consume partitions and publish rewards and DLQ entries.
// Watchers started here own one goroutine each until their context ends.
package bus
