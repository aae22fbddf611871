// Package admin is the admin API of Campaign Manager (DESIGN §8): token exchange and the
// admin guard (JWT, roles, tokens ended by a password change, rate limits on every
// password check, bcrypt passwords and their rules: CheckPassword, common-passwords.txt),
// admins (the last enabled admin stays), storefront API keys, campaigns with their versions and stats, rule validation and testing, users with
// their rewards, ledger and adjustments, tiers, the audit log, the DLQ and outbound
// webhooks (endpoints, secret rotation, deliveries, retries and test pings, through
// WebhookSink and WebhookSender).
//
// Each group returns its routes together with the schemas of their bodies (API.Routes
// merges them); every body is read by api.DecodeJSON, the one strict decoder; package ingress mounts them behind Guard and turns every returned error
// into problem details in one place. Changes are committed to Postgres (the authority)
// and then broadcast through the KV buckets (KV, KeySink); Reconcile republishes them all
// at start.
//
// The package owns no goroutines; API is safe for concurrent use.
package admin
