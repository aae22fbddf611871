// Package webhook is the engine's outbound side: it delivers the REWARDS and LOYALTY
// notices to the webhook endpoints admins register, signed per Standard Webhooks
// (webhook-id = the notice id, webhook-timestamp, webhook-signature = v1,<base64
// HMAC-SHA256 of id.timestamp.body>), at least once.
//
// Each endpoint has durable JetStream consumers (bus.Webhooks) shared by every engine
// replica, so a notice is handed to one replica at a time and survives restarts; a
// failed attempt is handed back with NakWithDelay on an exponential schedule with
// jitter (the one supervisor.Policy), and after the last attempt the delivery is
// recorded failed and terminated. An endpoint's deliveries run in a stage of its own
// with a bounded number of attempts in flight, so a slow or dead endpoint delays only
// itself, never another endpoint or the reward loop.
//
// Dispatcher watches the webhooks KV bucket (endpoint changes reach every replica) and
// runs, under one supervisor, a stage per enabled endpoint, the recorder (batched writes
// of delivery records to Postgres), the backlog sampler and the pruner; campaignd starts
// it in the engine modes, after the engine, and closes it after the engine. Sender is
// the HTTP side (signing, no redirects, bounded response reads, addresses checked at
// connect time); the admin API uses it for URL checks and test pings. Endpoints is the
// admin API's sink: it puts an endpoint's consumers and bucket entry in line with what
// Postgres saved, and queues manual retries. Dispatcher owns the goroutines of its stages
// (each stage owns its pull loops and one goroutine per attempt in flight, all waited for
// when it stops); Sender and Endpoints own none. All are safe for concurrent use.
package webhook
