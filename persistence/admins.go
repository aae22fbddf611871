package persistence

import (
	"context"
	"fmt"
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
}

// Admin roles.
const (
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleViewer = "viewer"
)

// CreateAdmin adds an admin with a password hash (see ingress.HashPassword). It returns
// ErrConflict when the username is taken.
func (s *Store) CreateAdmin(ctx context.Context, username, passwordHash, role string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO admins (username, password_hash, role) VALUES ($1, $2, $3)`,
		username, passwordHash, role)
	if err != nil {
		return fmt.Errorf("create admin %q: %w", username, translate(err))
	}
	return nil
}

// EnsureAdmin creates the bootstrap admin only when no admin exists, and reports whether
// it did. It is safe to call from several processes at once: the check and the insert run
// in one transaction under an advisory lock.
func (s *Store) EnsureAdmin(ctx context.Context, username, passwordHash, role string) (created bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('campaign.bootstrap_admin'))`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM admins`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO admins (username, password_hash, role) VALUES ($1, $2, $3)`,
			username, passwordHash, role); err != nil {
			return err
		}
		created = true
		return writeAudit(ctx, tx, AuditEntry{Actor: "system", Action: "admin.bootstrap", TargetType: "admin",
			TargetID: username, After: auditJSON(map[string]string{"username": username, "role": role})})
	})
	if err != nil {
		return false, fmt.Errorf("ensure admin: %w", translate(err))
	}
	return created, nil
}

// GetAdmin returns an admin and its password hash, or ErrNotFound.
func (s *Store) GetAdmin(ctx context.Context, username string) (Admin, string, error) {
	var a Admin
	var hash string
	err := s.pool.QueryRow(ctx, `SELECT username, password_hash, role, disabled, created_at, updated_at
		FROM admins WHERE username = $1`, username).
		Scan(&a.Username, &hash, &a.Role, &a.Disabled, &a.CreatedAt, &a.UpdatedAt)
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
	rows, err := s.pool.Query(ctx, `SELECT username, role, disabled, created_at, updated_at
		FROM admins ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Admin, error) {
		var a Admin
		err := r.Scan(&a.Username, &a.Role, &a.Disabled, &a.CreatedAt, &a.UpdatedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	return out, nil
}

// SetAdminRole changes an admin's role. It returns ErrNotFound for an unknown username.
func (s *Store) SetAdminRole(ctx context.Context, username, role string) error {
	return s.updateAdmin(ctx, "set admin role", `UPDATE admins SET role = $2, updated_at = now() WHERE username = $1`, username, role)
}

// SetAdminDisabled disables or re-enables an admin; a disabled admin's tokens stop
// working at once. It returns ErrNotFound for an unknown username.
func (s *Store) SetAdminDisabled(ctx context.Context, username string, disabled bool) error {
	return s.updateAdmin(ctx, "set admin disabled", `UPDATE admins SET disabled = $2, updated_at = now() WHERE username = $1`, username, disabled)
}

// SetAdminPassword replaces an admin's password hash. It returns ErrNotFound for an
// unknown username.
func (s *Store) SetAdminPassword(ctx context.Context, username, passwordHash string) error {
	return s.updateAdmin(ctx, "set admin password", `UPDATE admins SET password_hash = $2, updated_at = now() WHERE username = $1`, username, passwordHash)
}

func (s *Store) updateAdmin(ctx context.Context, what, sql, username string, v any) error {
	tag, err := s.pool.Exec(ctx, sql, username, v)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, username, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %q: %w", what, username, ErrNotFound)
	}
	return nil
}
