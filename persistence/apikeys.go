package persistence

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a storefront ingest key as stored: never the secret, only its SHA-256. The
// JSON form is what the api_keys KV bucket holds, keyed by Hash.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Hash      string     `json:"hash"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// APIKeySecretPrefix starts every API key secret, so leaked keys are easy to recognise.
const APIKeySecretPrefix = "cmk_"

// HashAPIKeySecret is the hex SHA-256 of secret, the form under which keys are stored.
func HashAPIKeySecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// IsAPIKeyHash reports whether h has the form HashAPIKeySecret returns: 64 lower-case
// hex digits.
func IsAPIKeyHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func keyRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

const apiKeyColumns = `id, name, prefix, key_hash, created_by, created_at, revoked_at`

func scanAPIKey(r pgx.Row) (APIKey, error) {
	var k APIKey
	err := r.Scan(&k.ID, &k.Name, &k.Prefix, &k.Hash, &k.CreatedBy, &k.CreatedAt, &k.RevokedAt)
	return k, err
}

// CreateAPIKey makes a new key named name and returns it with its secret, which is not
// stored and cannot be recovered. The audit row commits with the key.
func (s *Store) CreateAPIKey(ctx context.Context, name, createdBy string) (APIKey, string, error) {
	secret := APIKeySecretPrefix + keyRandomHex(32)
	k := APIKey{
		ID:        "key_" + keyRandomHex(8),
		Name:      name,
		Prefix:    secret[:8],
		Hash:      HashAPIKeySecret(secret),
		CreatedBy: createdBy,
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO api_keys (id, name, prefix, key_hash, created_by)
			VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, k.ID, k.Name, k.Prefix, k.Hash, k.CreatedBy).
			Scan(&k.CreatedAt)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: createdBy, Action: "api_key.create", TargetType: "api_key",
			TargetID: k.ID, After: auditJSON(redactedKey(k))})
	})
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create api key: %w", translate(err))
	}
	return k, secret, nil
}

// redactedKey is a key as audited: without its hash.
func redactedKey(k APIKey) APIKey {
	k.Hash = ""
	return k
}

// ListAPIKeys returns every key, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// GetAPIKeyByHash returns the key whose secret hashes to hash (revoked or not), or
// ErrNotFound.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE key_hash = $1`, hash))
	if err != nil {
		return APIKey{}, fmt.Errorf("get api key: %w", translate(err))
	}
	return k, nil
}

// RevokeAPIKey marks a key revoked by actor and returns it with RevokedAt set. Revoking a
// revoked key keeps the first revocation time. It returns ErrNotFound for an unknown id.
func (s *Store) RevokeAPIKey(ctx context.Context, id, actor string) (APIKey, error) {
	var k APIKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanAPIKey(tx.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		k, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 RETURNING `+apiKeyColumns, id))
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "api_key.revoke", TargetType: "api_key",
			TargetID: id, Before: auditJSON(redactedKey(before)), After: auditJSON(redactedKey(k))})
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("revoke api key %q: %w", id, translate(err))
	}
	return k, nil
}
