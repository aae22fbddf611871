package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AuditEntry is one admin change: who did what to which target, with the target's state
// before and after (JSON, nil when there is none).
type AuditEntry struct {
	ID         int64           `json:"id"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

// AuditFilter selects audit entries. Empty fields match everything; AfterID is the cursor
// (the ID of the last entry of the previous page) and Limit defaults to 100.
type AuditFilter struct {
	Actor      string
	TargetType string
	TargetID   string
	AfterID    int64
	Limit      int
}

// auditExecer is what the audit helper needs: a pool or a transaction.
type auditExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Audit appends e to the audit log. ID and CreatedAt are set by the database.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	if err := writeAudit(ctx, s.pool, e); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	return nil
}

// writeAudit inserts e through q, so changes and their audit rows commit together. It
// does not wrap its error; the caller does.
func writeAudit(ctx context.Context, q auditExecer, e AuditEntry) error {
	_, err := q.Exec(ctx, `INSERT INTO audit_log (actor, action, target_type, target_id, before, after)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		e.Actor, e.Action, e.TargetType, e.TargetID, nullJSON(e.Before), nullJSON(e.After))
	return translate(err)
}

// nullJSON maps an empty document to SQL NULL.
func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// auditJSON encodes v for an audit row; nil stays nil.
func auditJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// ListAudit returns the audit entries matching f, oldest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT id, actor, action, target_type, target_id, before, after, created_at
		FROM audit_log
		WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR target_type = $2) AND ($3 = '' OR target_id = $3)
		  AND id > $4
		ORDER BY id LIMIT $5`, f.Actor, f.TargetType, f.TargetID, f.AfterID, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var before, after []byte
		err := r.Scan(&e.ID, &e.Actor, &e.Action, &e.TargetType, &e.TargetID, &before, &after, &e.CreatedAt)
		if len(before) > 0 {
			e.Before = before
		}
		if len(after) > 0 {
			e.After = after
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
