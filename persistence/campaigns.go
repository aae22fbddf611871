package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

// CampaignVersion is one saved version of a campaign, immutable once written.
type CampaignVersion struct {
	Version   int64             `json:"version"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	Campaign  campaign.Campaign `json:"campaign"`
}

// dbNow is the store's clock for campaign times, at Postgres' precision.
func dbNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CreateCampaign stores a new campaign as version 1, created by actor. It sets c.Version,
// c.CreatedAt and c.UpdatedAt. The campaign, its first version and the audit row commit
// in one transaction. It returns ErrConflict when the id exists (archived campaigns
// included). It does not validate c; callers run cel.ValidateCampaign first.
func (s *Store) CreateCampaign(ctx context.Context, c *campaign.Campaign, actor string) error {
	saved := *c
	saved.Version = 1
	saved.CreatedAt = dbNow()
	saved.UpdatedAt = saved.CreatedAt
	body, err := json.Marshal(&saved)
	if err != nil {
		return fmt.Errorf("create campaign %q: encode: %w", c.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockNamedPool(ctx, tx, &saved); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO campaigns (id, version, status, body, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, saved.ID, saved.Version, saved.Status, string(body), saved.CreatedAt); err != nil {
			return err
		}
		if err := insertCampaignVersion(ctx, tx, &saved, body, actor); err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "campaign.create", TargetType: "campaign",
			TargetID: saved.ID, After: body})
	})
	if err != nil {
		return fmt.Errorf("create campaign %q: %w", c.ID, translate(err))
	}
	*c = saved
	return nil
}

func insertCampaignVersion(ctx context.Context, tx pgx.Tx, c *campaign.Campaign, body []byte, actor string) error {
	_, err := tx.Exec(ctx, `INSERT INTO campaign_versions (campaign_id, version, body, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5)`, c.ID, c.Version, string(body), actor, c.UpdatedAt)
	return err
}

// UpdateCampaign replaces the campaign c.ID with c, as the next version, changed by actor.
// With expectedVersion > 0 the stored version must equal it, else ErrVersionMismatch;
// 0 accepts any. It returns the campaign as it was before; c gets its new Version,
// CreatedAt and UpdatedAt. ErrNotFound when no campaign has that id. It does not validate
// c.
func (s *Store) UpdateCampaign(ctx context.Context, c *campaign.Campaign, expectedVersion int64, actor string) (before campaign.Campaign, err error) {
	before, after, err := s.ModifyCampaign(ctx, c.ID, actor, func(cur *campaign.Campaign) error {
		if expectedVersion > 0 && cur.Version != expectedVersion {
			return ErrVersionMismatch
		}
		*cur = *c
		return nil
	})
	if err != nil {
		return campaign.Campaign{}, err
	}
	*c = after
	return before, nil
}

// ModifyCampaign loads the campaign id under a row lock, lets modify change it and saves
// the result as the next version with an audit row, all in one transaction. modify must
// not change the id; Version, CreatedAt and UpdatedAt are set by the store. An error from
// modify aborts the change and is returned wrapped (so errors.Is works on it). It returns
// the campaign before and after, or ErrNotFound.
func (s *Store) ModifyCampaign(ctx context.Context, id, actor string, modify func(c *campaign.Campaign) error) (before, after campaign.Campaign, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanCampaign(tx.QueryRow(ctx, `SELECT version, status, body, created_at, updated_at
			FROM campaigns WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		before = cur
		next := cur
		if err := modify(&next); err != nil {
			return err
		}
		if next.ID != id {
			return fmt.Errorf("campaign id changed from %q to %q", id, next.ID)
		}
		if err := lockNamedPool(ctx, tx, &next); err != nil {
			return err
		}
		next.Version = before.Version + 1
		next.CreatedAt = before.CreatedAt
		next.UpdatedAt = dbNow()
		body, err := json.Marshal(&next)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET version = $2, status = $3, body = $4, updated_at = $5
			WHERE id = $1`, id, next.Version, next.Status, string(body), next.UpdatedAt); err != nil {
			return err
		}
		if err := insertCampaignVersion(ctx, tx, &next, body, actor); err != nil {
			return err
		}
		after = next
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: campaignAction(before, next),
			TargetType: "campaign", TargetID: id, Before: auditJSON(&before), After: body})
	})
	if err != nil {
		return campaign.Campaign{}, campaign.Campaign{}, fmt.Errorf("update campaign %q: %w", id, translate(err))
	}
	return before, after, nil
}

// campaignAction names a change for the audit log.
func campaignAction(before, after campaign.Campaign) string {
	if before.Status != after.Status {
		switch after.Status {
		case campaign.StatusArchived:
			return "campaign.archive"
		case campaign.StatusActive:
			return "campaign.activate"
		case campaign.StatusPaused:
			return "campaign.pause"
		}
	}
	return "campaign.update"
}

// scanCampaign reads version, status, body, created_at, updated_at; the columns win over
// the body.
func scanCampaign(r pgx.Row) (campaign.Campaign, error) {
	var c campaign.Campaign
	var body []byte
	var version int64
	var status string
	var created, updated time.Time
	if err := r.Scan(&version, &status, &body, &created, &updated); err != nil {
		return campaign.Campaign{}, err
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return campaign.Campaign{}, fmt.Errorf("decode stored campaign: %w", err)
	}
	c.Version, c.Status = version, status
	c.CreatedAt, c.UpdatedAt = created.UTC(), updated.UTC()
	return c, nil
}

// GetCampaign returns the current version of a campaign, or ErrNotFound.
func (s *Store) GetCampaign(ctx context.Context, id string) (campaign.Campaign, error) {
	c, err := scanCampaign(s.pool.QueryRow(ctx, `SELECT version, status, body, created_at, updated_at
		FROM campaigns WHERE id = $1`, id))
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("get campaign %q: %w", id, translate(err))
	}
	return c, nil
}

// ListCampaigns returns the current version of every campaign, archived ones included,
// ordered by id.
func (s *Store) ListCampaigns(ctx context.Context) ([]campaign.Campaign, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, status, body, created_at, updated_at FROM campaigns ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (campaign.Campaign, error) { return scanCampaign(r) })
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return out, nil
}

// ListCampaignsPage returns up to limit campaigns (current versions, archived ones
// included) oldest first: created after the campaign whose cursor is after (0: from the
// first). next is the cursor of the last one returned, 0 when none was.
func (s *Store) ListCampaignsPage(ctx context.Context, after int64, limit int) (cs []campaign.Campaign, next int64, err error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, version, status, body, created_at, updated_at FROM campaigns
		WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list campaigns: %w", err)
	}
	cs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (campaign.Campaign, error) {
		var seq int64
		c, err := scanCampaign(seqScanner{r, &seq})
		next = seq
		return c, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list campaigns: %w", err)
	}
	return cs, next, nil
}

// seqScanner scans a row's first column into seq and the rest as the row it wraps.
type seqScanner struct {
	row pgx.Row
	seq *int64
}

func (s seqScanner) Scan(dest ...any) error { return s.row.Scan(append([]any{s.seq}, dest...)...) }

// ListCampaignVersions returns every saved version of a campaign, oldest first, or
// ErrNotFound when the campaign does not exist.
func (s *Store) ListCampaignVersions(ctx context.Context, id string) ([]CampaignVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, created_by, created_at, body
		FROM campaign_versions WHERE campaign_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, fmt.Errorf("list campaign versions %q: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CampaignVersion, error) {
		var v CampaignVersion
		var body []byte
		if err := r.Scan(&v.Version, &v.CreatedBy, &v.CreatedAt, &body); err != nil {
			return v, err
		}
		v.CreatedAt = v.CreatedAt.UTC()
		return v, json.Unmarshal(body, &v.Campaign)
	})
	if err != nil {
		return nil, fmt.Errorf("list campaign versions %q: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list campaign versions %q: %w", id, ErrNotFound)
	}
	return out, nil
}
