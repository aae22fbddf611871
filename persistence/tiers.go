package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// Tier bases.
const (
	TierBasisLifetimePoints = "lifetime_points"
	TierBasisSpend          = "spend"
)

// TierConfig defines the tiers: a user qualifies for the highest tier whose threshold
// the basis reaches (lifetime points, or spend within Window before the event).
// Upgrades apply at once; a user who no longer qualifies drops one tier at the first
// event of a later month than the last change or review.
type TierConfig struct {
	Version   int64     `json:"version"`
	Basis     string    `json:"basis"`
	Window    string    `json:"window,omitempty"`
	Tiers     []Tier    `json:"tiers"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Tier is one level; Threshold is in the basis' unit (points or money).
type Tier struct {
	Name      string  `json:"name"`
	Threshold float64 `json:"threshold"`
}

// TierChange is a change of a user's tier.
type TierChange struct {
	From, To, Reason string
	OccurredAt       time.Time
}

var tierName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// WindowDuration is the spend window; zero for the lifetime basis.
func (c *TierConfig) WindowDuration() time.Duration {
	d, _ := time.ParseDuration(c.Window)
	return d
}

// Validate reports every problem of c, each naming its field.
func (c *TierConfig) Validate() error {
	var errs []error
	switch c.Basis {
	case TierBasisLifetimePoints:
		if c.Window != "" {
			errs = append(errs, errors.New("window: only for the spend basis"))
		}
	case TierBasisSpend:
		if d, err := time.ParseDuration(c.Window); err != nil || d < 24*time.Hour {
			errs = append(errs, fmt.Errorf("window: must be a duration of at least 24h such as 8760h, got %q", c.Window))
		}
	default:
		errs = append(errs, fmt.Errorf("basis: must be %s or %s, got %q", TierBasisLifetimePoints, TierBasisSpend, c.Basis))
	}
	seen := map[string]bool{}
	for i, t := range c.Tiers {
		if !tierName.MatchString(t.Name) {
			errs = append(errs, fmt.Errorf("tiers[%d].name: must match %s, got %q", i, tierName, t.Name))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("tiers[%d].name: %q appears twice", i, t.Name))
		}
		seen[t.Name] = true
		if t.Threshold <= 0 || (i > 0 && t.Threshold <= c.Tiers[i-1].Threshold) {
			errs = append(errs, fmt.Errorf("tiers[%d].threshold: must be above 0 and above the tier before", i))
		}
	}
	return errors.Join(errs...)
}

// GetTierConfig returns the tier configuration, or ErrNotFound when none was set.
func (s *Store) GetTierConfig(ctx context.Context) (TierConfig, error) {
	var body []byte
	var c TierConfig
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
func (s *Store) PutTierConfig(ctx context.Context, c *TierConfig, expectedVersion int64, actor string) error {
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
