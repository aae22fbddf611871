// Package persistence is the Postgres record of Campaign Manager and the exactly-once
// authority: the embedded migrations, the batch commit of decisions (CommitBatch: an
// event's effects and the record that it was processed in one transaction, fenced on
// the user's version), users, rewards and the points ledger, campaigns and their
// versions, tiers, budgets, admins, API keys and the audit log. It maps the domain types
// (package actors/loyalty, cel/campaign) to rows and is the only place that reads
// SQLSTATEs (translate, classify), answering with its sentinels (ErrNotFound,
// ErrConflict, ErrVersionMismatch) and *PermanentError.
//
// Store is safe for concurrent use and owns no goroutines beyond pgx's pool.
package persistence
