package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Admin is a person using the admin API. Role is admin, editor or viewer.
type Admin struct {
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// PasswordChangedAt is when the password was last set after creation (changed, reset
	// or restored by the bootstrap); nil when never. Tokens issued before it are refused.
	PasswordChangedAt *time.Time `json:"password_changed_at,omitempty"`
}

// Admin roles.
const (
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleViewer = "viewer"
)

// UsernameKey is the form in which usernames are compared: trimmed of white space and
// lower-cased, so "Root", " root " and "root" are one name. New admins are stored under
// their key; rows stored before this rule keep their spelling and are found by their key
// too (see GetAdmin).
func UsernameKey(username string) string { return strings.ToLower(strings.TrimSpace(username)) }

// adminsLock serializes every change of the admins table (advisory lock key), so that the
// checks "no other admin has this key" and "another enabled admin remains" hold when the
// change commits, whatever runs beside it.
const adminsLock = `SELECT pg_advisory_xact_lock(hashtext('campaign.admins'))`

const adminColumns = `username, password_hash, role, disabled, created_at, updated_at, password_changed_at`

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanAdmin(r pgx.Row) (Admin, string, error) {
	var a Admin
	var hash string
	err := r.Scan(&a.Username, &hash, &a.Role, &a.Disabled, &a.CreatedAt, &a.UpdatedAt, &a.PasswordChangedAt)
	if a.PasswordChangedAt != nil {
		t := a.PasswordChangedAt.UTC()
		a.PasswordChangedAt = &t
	}
	return a, hash, err
}

// findAdmin returns the admin stored as username, else the one whose key is username's
// key: the one stored as the key itself, else the only one with that key (rows stored
// before keys were unique may share one: then none). suffix is appended to the query
// (FOR UPDATE). It returns ErrNotFound.
func findAdmin(ctx context.Context, q querier, username, suffix string) (Admin, string, error) {
	a, hash, err := scanAdmin(q.QueryRow(ctx, `SELECT `+adminColumns+` FROM admins WHERE username = $1`+suffix, username))
	if !errors.Is(err, pgx.ErrNoRows) {
		return a, hash, err
	}
	key := UsernameKey(username)
	rows, err := q.Query(ctx, `SELECT username FROM admins`)
	if err != nil {
		return Admin{}, "", err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return Admin{}, "", err
	}
	var match []string
	for _, n := range names {
		if n == key {
			match = []string{n}
			break
		}
		if UsernameKey(n) == key {
			match = append(match, n)
		}
	}
	if len(match) != 1 {
		return Admin{}, "", ErrNotFound
	}
	return scanAdmin(q.QueryRow(ctx, `SELECT `+adminColumns+` FROM admins WHERE username = $1`+suffix, match[0]))
}

// keyTaken reports whether an admin's username has key as its key.
func keyTaken(ctx context.Context, q querier, key string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT username FROM admins`)
	if err != nil {
		return false, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if UsernameKey(n) == key {
			return true, nil
		}
	}
	return false, nil
}

// CreateAdmin adds an admin, stored under UsernameKey(username), with a password hash
// (see admin.Passwords.Hash). It returns ErrConflict when an admin with that key exists.
func (s *Store) CreateAdmin(ctx context.Context, username, passwordHash, role string) error {
	key := UsernameKey(username)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, adminsLock); err != nil {
			return err
		}
		taken, err := keyTaken(ctx, tx, key)
		if err != nil {
			return err
		}
		if taken {
			return ErrConflict
		}
		_, err = tx.Exec(ctx, `INSERT INTO admins (username, password_hash, role) VALUES ($1, $2, $3)`, key, passwordHash, role)
		return err
	})
	if err != nil {
		return fmt.Errorf("create admin %q: %w", key, translate(err))
	}
	return nil
}

// BootstrapOutcome is what EnsureAdmin did.
type BootstrapOutcome int

// EnsureAdmin's outcomes.
const (
	// BootstrapNothing: an enabled admin with the admin role exists; nothing changed.
	BootstrapNothing BootstrapOutcome = iota
	// BootstrapCreated: the admin did not exist and was created.
	BootstrapCreated
	// BootstrapRestored: the admin existed (disabled, or with another role) and was
	// enabled with the admin role and the new password.
	BootstrapRestored
)

// EnsureAdmin makes sure an enabled admin with the admin role exists: when there is none,
// it creates username (under its key) with passwordHash and the admin role, or, when
// that admin exists, enables it with the admin role and passwordHash (tokens issued
// before are refused from then on). Either is audited as done by "system". It is safe to
// call from several processes at once: the check and the change commit in one
// transaction under the admins lock, so one of them acts.
func (s *Store) EnsureAdmin(ctx context.Context, username, passwordHash string) (BootstrapOutcome, error) {
	outcome := BootstrapNothing
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		outcome = BootstrapNothing
		if _, err := tx.Exec(ctx, adminsLock); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM admins WHERE role = $1 AND NOT disabled`, RoleAdmin).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		before, _, err := findAdmin(ctx, tx, username, " FOR UPDATE")
		switch {
		case errors.Is(err, ErrNotFound):
			key := UsernameKey(username)
			if _, err := tx.Exec(ctx, `INSERT INTO admins (username, password_hash, role) VALUES ($1, $2, $3)`,
				key, passwordHash, RoleAdmin); err != nil {
				return err
			}
			outcome = BootstrapCreated
			return writeAudit(ctx, tx, AuditEntry{Actor: "system", Action: "admin.bootstrap", TargetType: "admin",
				TargetID: key, After: auditJSON(map[string]string{"username": key, "role": RoleAdmin})})
		case err != nil:
			return err
		}
		after, _, err := scanAdmin(tx.QueryRow(ctx, `UPDATE admins SET role = $2, disabled = false, password_hash = $3,
			password_changed_at = $4, updated_at = now() WHERE username = $1 RETURNING `+adminColumns,
			before.Username, RoleAdmin, passwordHash, time.Now().UTC()))
		if err != nil {
			return err
		}
		outcome = BootstrapRestored
		return writeAudit(ctx, tx, AuditEntry{Actor: "system", Action: "admin.bootstrap_restore", TargetType: "admin",
			TargetID: before.Username, Before: auditJSON(before), After: auditJSON(after)})
	})
	if err != nil {
		return BootstrapNothing, fmt.Errorf("ensure admin: %w", translate(err))
	}
	return outcome, nil
}

// GetAdmin returns an admin and its password hash: the one stored as username, else the
// one username names once trimmed and lower-cased (UsernameKey; a row stored before keys
// were unique is found by its key when no other row shares it). Admin.Username is the
// stored name. It returns ErrNotFound.
func (s *Store) GetAdmin(ctx context.Context, username string) (Admin, string, error) {
	a, hash, err := findAdmin(ctx, s.pool, username, "")
	if err != nil {
		return Admin{}, "", fmt.Errorf("get admin %q: %w", username, translate(err))
	}
	return a, hash, nil
}

// CountAdmins returns how many admins exist, disabled ones included.
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

// ListAdmins returns every admin ordered by username.
func (s *Store) ListAdmins(ctx context.Context) ([]Admin, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+adminColumns+` FROM admins ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Admin, error) {
		a, _, err := scanAdmin(r)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	return out, nil
}

// AdminChange is a change of one admin: each field that is not nil is set.
type AdminChange struct {
	Role     *string
	Disabled *bool
	// PasswordHash is a new password's hash; it also sets PasswordChangedAt to At.
	PasswordHash *string
	// At is when the change is made; zero means now.
	At time.Time
}

// UpdateAdmin applies ch to the admin username names (as GetAdmin finds it) and returns
// the admin before and after. It returns ErrNotFound for an unknown admin, and
// ErrLastAdmin, changing nothing, when ch would disable or demote the last enabled admin
// with the admin role. The check and the change commit together under the admins lock.
func (s *Store) UpdateAdmin(ctx context.Context, username string, ch AdminChange) (before, after Admin, err error) {
	if ch.At.IsZero() {
		ch.At = time.Now()
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, adminsLock); err != nil {
			return err
		}
		var hash string
		before, hash, err = findAdmin(ctx, tx, username, " FOR UPDATE")
		if err != nil {
			return err
		}
		after = before
		if ch.Role != nil {
			after.Role = *ch.Role
		}
		if ch.Disabled != nil {
			after.Disabled = *ch.Disabled
		}
		if ch.PasswordHash != nil {
			hash = *ch.PasswordHash
			at := ch.At.UTC().Truncate(time.Microsecond)
			after.PasswordChangedAt = &at
		}
		active := func(a Admin) bool { return a.Role == RoleAdmin && !a.Disabled }
		if active(before) && !active(after) {
			var others int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM admins WHERE role = $1 AND NOT disabled AND username <> $2`,
				RoleAdmin, before.Username).Scan(&others); err != nil {
				return err
			}
			if others == 0 {
				return ErrLastAdmin
			}
		}
		after, _, err = scanAdmin(tx.QueryRow(ctx, `UPDATE admins SET role = $2, disabled = $3, password_hash = $4,
			password_changed_at = $5, updated_at = now() WHERE username = $1 RETURNING `+adminColumns,
			before.Username, after.Role, after.Disabled, hash, after.PasswordChangedAt))
		return err
	})
	if err != nil {
		return Admin{}, Admin{}, fmt.Errorf("update admin %q: %w", username, translate(err))
	}
	return before, after, nil
}

// SetAdminRole changes an admin's role (UpdateAdmin). It returns ErrNotFound or
// ErrLastAdmin.
func (s *Store) SetAdminRole(ctx context.Context, username, role string) error {
	_, _, err := s.UpdateAdmin(ctx, username, AdminChange{Role: &role})
	return err
}

// SetAdminDisabled disables or re-enables an admin (UpdateAdmin); a disabled admin's
// tokens stop working at once. It returns ErrNotFound or ErrLastAdmin.
func (s *Store) SetAdminDisabled(ctx context.Context, username string, disabled bool) error {
	_, _, err := s.UpdateAdmin(ctx, username, AdminChange{Disabled: &disabled})
	return err
}

// SetAdminPassword replaces an admin's password hash now (UpdateAdmin): tokens issued
// before stop working. It returns ErrNotFound for an unknown username.
func (s *Store) SetAdminPassword(ctx context.Context, username, passwordHash string) error {
	_, _, err := s.UpdateAdmin(ctx, username, AdminChange{PasswordHash: &passwordHash})
	return err
}
