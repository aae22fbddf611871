package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// GetTierConfig returns the tier configuration, or ErrNotFound when none was set.
func (s *Store) GetTierConfig(ctx context.Context) (loyalty.TierConfig, error) {
	var body []byte
	var c loyalty.TierConfig
	err := s.pool.QueryRow(ctx, `SELECT body FROM tier_config WHERE id = 1`).Scan(&body)
	if err != nil {
		return c, fmt.Errorf("get tiers: %w", translate(err))
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return c, fmt.Errorf("get tiers: %w", err)
	}
	return c, nil
}

// PutTierConfig stores c as the next version (expectedVersion 0: any; else
// ErrVersionMismatch when it is not the stored one) and audits the change. It sets
// c.Version, UpdatedBy and UpdatedAt.
func (s *Store) PutTierConfig(ctx context.Context, c *loyalty.TierConfig, expectedVersion int64, actor string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var before []byte
		var version int64
		err := tx.QueryRow(ctx, `SELECT body, version FROM tier_config WHERE id = 1 FOR UPDATE`).Scan(&before, &version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("put tiers: %w", err)
		}
		if expectedVersion != 0 && expectedVersion != version {
			return ErrVersionMismatch
		}
		c.Version, c.UpdatedBy, c.UpdatedAt = version+1, actor, time.Now().UTC()
		body, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tier_config (id, version, body, updated_by, updated_at) VALUES (1, $1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body,
			updated_by = excluded.updated_by, updated_at = excluded.updated_at`, c.Version, body, actor, c.UpdatedAt); err != nil {
			return fmt.Errorf("put tiers: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit_log (actor, action, target_type, target_id, before, after)
			VALUES ($1, 'tiers.update', 'tiers', 'config', $2, $3)`, actor, nullJSON(before), string(body)); err != nil {
			return fmt.Errorf("put tiers: audit: %w", err)
		}
		return nil
	})
}
