package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

// Pool is a coupon code pool with the counts of its codes. Codes are issued to rewards
// by CommitBatch (a reward whose campaign names the pool), redeemed by RedeemCoupon.
type Pool struct {
	Seq         int64  `json:"-"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Pattern is the default pattern of generated codes (see the admin API).
	Pattern string `json:"pattern,omitempty"`
	// ExpiresAt is the expiry of the codes added without one of their own.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LowWater is the count of codes left at or below which the pool is low.
	LowWater  int64     `json:"low_water"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	PoolCounts
}

// PoolCounts are a pool's codes by state.
type PoolCounts struct {
	// Total is every code of the pool.
	Total int64 `json:"total"`
	// Issued codes went to a reward (redeemed ones included).
	Issued   int64 `json:"issued"`
	Redeemed int64 `json:"redeemed"`
	// Expired codes were never issued and are past their expiry.
	Expired int64 `json:"expired"`
	// Left codes are free and unexpired: what rewards can still take.
	Left int64 `json:"left"`
}

const poolColumns = `p.seq, p.id, p.name, p.description, p.pattern, p.expires_at, p.low_water, p.created_by, p.created_at, p.updated_at,
	count(k.code), count(k.reward_id), count(k.redeemed_at),
	count(k.code) FILTER (WHERE k.reward_id IS NULL AND k.expires_at <= now()),
	count(k.code) FILTER (WHERE k.reward_id IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))`

func scanPool(r pgx.Row) (Pool, error) {
	var p Pool
	err := r.Scan(&p.Seq, &p.ID, &p.Name, &p.Description, &p.Pattern, &p.ExpiresAt, &p.LowWater, &p.CreatedBy, &p.CreatedAt, &p.UpdatedAt,
		&p.Total, &p.Issued, &p.Redeemed, &p.Expired, &p.Left)
	if err != nil {
		return Pool{}, translate(err)
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if p.ExpiresAt != nil {
		t := p.ExpiresAt.UTC()
		p.ExpiresAt = &t
	}
	return p, nil
}

// CreatePool stores a new pool without codes, created by actor, with its audit row in the
// same transaction. It sets p's CreatedBy, CreatedAt and UpdatedAt (ExpiresAt is kept to
// the second). ErrConflict when the id exists. It does not validate p.
func (s *Store) CreatePool(ctx context.Context, p *Pool, actor string) error {
	saved := *p
	saved.CreatedBy, saved.CreatedAt = actor, dbNow()
	saved.UpdatedAt = saved.CreatedAt
	saved.ExpiresAt = wholeSecond(p.ExpiresAt)
	saved.PoolCounts = PoolCounts{}
	body, err := json.Marshal(&saved)
	if err != nil {
		return fmt.Errorf("create pool %q: encode: %w", p.ID, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO coupon_pools (id, name, description, pattern, expires_at, low_water, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING seq`, saved.ID, saved.Name, saved.Description, saved.Pattern,
			saved.ExpiresAt, saved.LowWater, actor, saved.CreatedAt).Scan(&saved.Seq); err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "pool.create", TargetType: "pool", TargetID: saved.ID, After: body})
	})
	if err != nil {
		return fmt.Errorf("create pool %q: %w", p.ID, translate(err))
	}
	*p = saved
	return nil
}

// wholeSecond is t truncated to the second (codes' expiries are kept to the second), in UTC.
func wholeSecond(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC().Truncate(time.Second)
	return &v
}

// GetPool returns a pool with its counts, or ErrNotFound.
func (s *Store) GetPool(ctx context.Context, id string) (Pool, error) {
	p, err := scanPool(s.pool.QueryRow(ctx, `SELECT `+poolColumns+`
		FROM coupon_pools p LEFT JOIN coupon_codes k ON k.pool_id = p.id WHERE p.id = $1 GROUP BY p.id`, id))
	if err != nil {
		return Pool{}, fmt.Errorf("get pool %q: %w", id, err)
	}
	return p, nil
}

// ListPools returns up to limit pools with their counts, oldest first, after the cursor
// afterSeq (0 for the first page; the next cursor is the last pool's Seq).
func (s *Store) ListPools(ctx context.Context, afterSeq int64, limit int) ([]Pool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+poolColumns+`
		FROM coupon_pools p LEFT JOIN coupon_codes k ON k.pool_id = p.id
		WHERE p.seq > $1 GROUP BY p.id ORDER BY p.seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Pool, error) { return scanPool(r) })
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return out, nil
}

// NewCode is a code to add to a pool; ExpiresAt nil takes the pool's expiry.
type NewCode struct {
	Code      string
	ExpiresAt *time.Time
}

// CodesAdded is what AddCodes did: the codes added and those left out because a code of
// that name exists already (in this pool or another).
type CodesAdded struct {
	Added      int64    `json:"added"`
	Duplicates int64    `json:"duplicates"`
	Examples   []string `json:"duplicate_examples,omitempty"` // the first few duplicates
}

// maxDuplicateExamples is how many duplicates CodesAdded names.
const maxDuplicateExamples = 10

// AddCodes adds codes to the pool poolID, in their order (free codes are issued in the
// order they were added), in one transaction with an audit row (action, by actor, after:
// the counts and note). A code that exists already is left out and counted as a
// duplicate; codes are expected unique within the call (the admin API removes repeats).
// Expiries are kept to the second. ErrNotFound when the pool does not exist.
func (s *Store) AddCodes(ctx context.Context, poolID string, codes []NewCode, actor, action string, note map[string]any) (CodesAdded, error) {
	names := make([]string, len(codes))
	expiries := make([]*time.Time, len(codes))
	for i, c := range codes {
		names[i], expiries[i] = c.Code, wholeSecond(c.ExpiresAt)
	}
	var out CodesAdded
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var poolExpiry *time.Time
		if err := tx.QueryRow(ctx, `SELECT expires_at FROM coupon_pools WHERE id = $1`, poolID).Scan(&poolExpiry); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `INSERT INTO coupon_codes (code, pool_id, expires_at)
			SELECT t.code, $1, coalesce(t.e, $4) FROM unnest($2::text[], $3::timestamptz[]) WITH ORDINALITY AS t(code, e, ord)
			ORDER BY t.ord
			ON CONFLICT (code) DO NOTHING RETURNING code`, poolID, names, expiries, poolExpiry)
		if err != nil {
			return err
		}
		added, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		out.Added = int64(len(added))
		out.Duplicates = int64(len(codes)) - out.Added
		if out.Duplicates > 0 {
			in := make(map[string]bool, len(added))
			for _, c := range added {
				in[c] = true
			}
			for _, c := range names {
				if !in[c] && len(out.Examples) < maxDuplicateExamples {
					out.Examples = append(out.Examples, c)
				}
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE coupon_pools SET updated_at = now() WHERE id = $1`, poolID); err != nil {
			return err
		}
		after := map[string]any{"added": out.Added, "duplicates": out.Duplicates}
		for k, v := range note {
			after[k] = v
		}
		body, _ := json.Marshal(after)
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: action, TargetType: "pool", TargetID: poolID, After: body})
	})
	if err != nil {
		return CodesAdded{}, fmt.Errorf("add codes to pool %q: %w", poolID, translate(err))
	}
	return out, nil
}

// PoolLevel is how many codes a pool has left, its low-water mark and how many active
// campaigns take codes from it.
type PoolLevel struct {
	Left            int64
	LowWater        int64
	ActiveCampaigns int64
}

// LoadPoolLevels returns every pool's codes left (free and unexpired), low-water mark
// and active campaigns.
func (s *Store) LoadPoolLevels(ctx context.Context) (map[string]PoolLevel, error) {
	rows, err := s.pool.Query(ctx, `SELECT p.id, p.low_water, count(k.code),
			(SELECT count(*) FROM campaigns c WHERE c.status = 'active' AND c.body->'reward'->>'pool' = p.id)
		FROM coupon_pools p LEFT JOIN coupon_codes k
			ON k.pool_id = p.id AND k.reward_id IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
		GROUP BY p.id`)
	if err != nil {
		return nil, fmt.Errorf("load pool levels: %w", err)
	}
	defer rows.Close()
	out := map[string]PoolLevel{}
	for rows.Next() {
		var id string
		var l PoolLevel
		if err := rows.Scan(&id, &l.LowWater, &l.Left, &l.ActiveCampaigns); err != nil {
			return nil, fmt.Errorf("load pool levels: %w", err)
		}
		out[id] = l
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load pool levels: %w", err)
	}
	return out, nil
}

// Coupon is an issued coupon code: whose it is, what granted it and whether it was
// redeemed.
type Coupon struct {
	Seq        int64  `json:"-"`
	Code       string `json:"code"`
	PoolID     string `json:"pool_id"`
	UserID     string `json:"user_id"`
	RewardID   string `json:"reward_id"`
	CampaignID string `json:"campaign_id"`
	// Type is the reward's type (coupon or free_shipping); Data the campaign's reward
	// data it was granted with.
	Type       string         `json:"type"`
	Data       map[string]any `json:"data,omitempty"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	IssuedAt   time.Time      `json:"issued_at"`
	RedeemedAt *time.Time     `json:"redeemed_at,omitempty"`
	OrderID    string         `json:"order_id,omitempty"`
}

// Expired reports whether the coupon is past its expiry at now.
func (c *Coupon) Expired(now time.Time) bool { return c.ExpiresAt != nil && !now.Before(*c.ExpiresAt) }

// Status is "redeemed", "expired" or "issued" (redeemable) at now.
func (c *Coupon) Status(now time.Time) string {
	switch {
	case c.RedeemedAt != nil:
		return "redeemed"
	case c.Expired(now):
		return "expired"
	}
	return "issued"
}

const couponColumns = `k.issued_seq, k.code, k.pool_id, k.user_id, k.reward_id, coalesce(k.campaign_id, ''),
	coalesce(r.type, ''), r.payload -> 'data', k.expires_at, k.issued_at, k.redeemed_at, coalesce(k.order_id, '')`

func scanCoupon(r pgx.Row) (Coupon, error) {
	var c Coupon
	var data []byte
	err := r.Scan(&c.Seq, &c.Code, &c.PoolID, &c.UserID, &c.RewardID, &c.CampaignID, &c.Type, &data,
		&c.ExpiresAt, &c.IssuedAt, &c.RedeemedAt, &c.OrderID)
	if err != nil {
		return Coupon{}, translate(err)
	}
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &c.Data); err != nil {
			return Coupon{}, fmt.Errorf("decode reward data: %w", err)
		}
	}
	c.IssuedAt = c.IssuedAt.UTC()
	for _, t := range []**time.Time{&c.ExpiresAt, &c.RedeemedAt} {
		if *t != nil {
			v := (*t).UTC()
			*t = &v
		}
	}
	return c, nil
}

// GetCoupon returns the issued coupon code, or ErrCouponUnknown (an ErrNotFound) for a
// code that is unknown or was never issued.
func (s *Store) GetCoupon(ctx context.Context, code string) (Coupon, error) {
	c, err := scanCoupon(s.pool.QueryRow(ctx, `SELECT `+couponColumns+`
		FROM coupon_codes k LEFT JOIN rewards r ON r.id = k.reward_id WHERE k.code = $1 AND k.reward_id IS NOT NULL`, code))
	if errors.Is(err, ErrNotFound) {
		err = ErrCouponUnknown
	}
	if err != nil {
		return Coupon{}, fmt.Errorf("get coupon: %w", err)
	}
	return c, nil
}

// RedeemCoupon redeems the issued code for the order orderID of userID, exactly once:
// of concurrent calls for one code, one redeems it. It returns the coupon and whether
// this call redeemed it; a code redeemed before for the same order is returned as it is
// (fresh false: redeeming is idempotent on code and order). Errors: ErrCouponUnknown
// (unknown or never issued), ErrCouponOtherUser, ErrCouponRedeemed (for another order),
// ErrCouponExpired.
func (s *Store) RedeemCoupon(ctx context.Context, code, userID, orderID string) (c Coupon, fresh bool, err error) {
	tag, err := s.pool.Exec(ctx, `UPDATE coupon_codes SET redeemed_at = now(), order_id = $3
		WHERE code = $1 AND user_id = $2 AND reward_id IS NOT NULL AND redeemed_at IS NULL
			AND (expires_at IS NULL OR expires_at > now())`, code, userID, orderID)
	if err != nil {
		return Coupon{}, false, fmt.Errorf("redeem coupon: %w", err)
	}
	c, err = s.GetCoupon(ctx, code)
	if err != nil {
		return Coupon{}, false, err
	}
	if tag.RowsAffected() == 1 {
		return c, true, nil
	}
	switch {
	case c.UserID != userID:
		return c, false, fmt.Errorf("redeem coupon: %w", ErrCouponOtherUser)
	case c.RedeemedAt != nil && c.OrderID == orderID:
		return c, false, nil
	case c.RedeemedAt != nil:
		return c, false, fmt.Errorf("redeem coupon: %w", ErrCouponRedeemed)
	case c.ExpiresAt != nil:
		return c, false, fmt.Errorf("redeem coupon: %w", ErrCouponExpired)
	}
	return Coupon{}, false, errors.New("redeem coupon: the code changed while it was redeemed; retry")
}

// ListUserCoupons returns up to limit coupon codes issued to userID, oldest first, after
// the cursor afterSeq (0 for the first page; the next cursor is the last one's Seq).
func (s *Store) ListUserCoupons(ctx context.Context, userID string, afterSeq int64, limit int) ([]Coupon, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+couponColumns+`
		FROM coupon_codes k LEFT JOIN rewards r ON r.id = k.reward_id
		WHERE k.user_id = $1 AND k.issued_seq > $2 ORDER BY k.issued_seq LIMIT $3`, userID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list user coupons: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Coupon, error) { return scanCoupon(r) })
	if err != nil {
		return nil, fmt.Errorf("list user coupons: %w", err)
	}
	return out, nil
}

// CampaignRefusals returns how many rewards a campaign matched but did not grant, by
// reason (empty for none).
func (s *Store) CampaignRefusals(ctx context.Context, campaignID string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT reason, refused FROM campaign_refusals WHERE campaign_id = $1`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("campaign refusals: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var reason string
		var n int64
		if err := rows.Scan(&reason, &n); err != nil {
			return nil, fmt.Errorf("campaign refusals: %w", err)
		}
		out[reason] = n
	}
	return out, rows.Err()
}

// ModifyPool changes the pool id with fn under a row lock, audited as pool.update by
// actor, and returns it before and after with its counts. fn may change Name,
// Description, Pattern, ExpiresAt and LowWater (ExpiresAt is kept to the second; it is
// the expiry of codes added later, codes added already keep theirs); it may return an
// error to abort. ErrNotFound for an unknown id.
func (s *Store) ModifyPool(ctx context.Context, id, actor string, fn func(p *Pool) error) (before, after Pool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPool(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		if before, err = scanPool(tx.QueryRow(ctx, `SELECT `+poolColumns+`
			FROM coupon_pools p LEFT JOIN coupon_codes k ON k.pool_id = p.id WHERE p.id = $1 GROUP BY p.id`, id)); err != nil {
			return err
		}
		cur := before
		if err := fn(&cur); err != nil {
			return err
		}
		var updated time.Time
		if err := tx.QueryRow(ctx, `UPDATE coupon_pools SET name = $2, description = $3, pattern = $4, expires_at = $5,
			low_water = $6, updated_at = now() WHERE id = $1 RETURNING updated_at`,
			id, cur.Name, cur.Description, cur.Pattern, wholeSecond(cur.ExpiresAt), cur.LowWater).Scan(&updated); err != nil {
			return err
		}
		after = cur
		after.ID, after.Seq, after.CreatedBy, after.CreatedAt, after.PoolCounts = before.ID, before.Seq, before.CreatedBy, before.CreatedAt, before.PoolCounts
		after.ExpiresAt, after.UpdatedAt = wholeSecond(cur.ExpiresAt), updated.UTC()
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "pool.update", TargetType: "pool", TargetID: id,
			Before: auditJSON(&before), After: auditJSON(&after)})
	})
	if err != nil {
		return Pool{}, Pool{}, fmt.Errorf("update pool %q: %w", id, translate(err))
	}
	return before, after, nil
}

// PoolInUseError is why a pool cannot be deleted: codes of it were issued to rewards
// (their holders may still validate and redeem them), or campaigns that are not
// archived name it.
type PoolInUseError struct {
	Issued    int64
	Campaigns []string // up to maxInUseCampaigns of them
}

func (e *PoolInUseError) Error() string {
	var why []string
	if e.Issued > 0 {
		why = append(why, fmt.Sprintf("%d of its codes were issued to rewards and stay redeemable", e.Issued))
	}
	if len(e.Campaigns) > 0 {
		why = append(why, fmt.Sprintf("campaigns that are not archived take codes from it: %s (archive them or change their reward.pool first)",
			strings.Join(e.Campaigns, ", ")))
	}
	return "is in use: " + strings.Join(why, "; ")
}

// maxInUseCampaigns is how many campaigns a PoolInUseError names.
const maxInUseCampaigns = 10

// DeletePool removes the pool id with its codes, none of them issued, audited as
// pool.delete by actor; it returns the pool as it was. A *PoolInUseError when a code was
// issued or a campaign that is not archived names the pool (campaign saves lock the pool
// they name, so none can come to name it meanwhile; a code issued meanwhile by an engine
// that has not yet seen its campaign archived keeps the pool); ErrNotFound for an
// unknown id.
func (s *Store) DeletePool(ctx context.Context, id, actor string) (Pool, error) {
	var p Pool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPool(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		var err error
		if p, err = scanPool(tx.QueryRow(ctx, `SELECT `+poolColumns+`
			FROM coupon_pools p LEFT JOIN coupon_codes k ON k.pool_id = p.id WHERE p.id = $1 GROUP BY p.id`, id)); err != nil {
			return err
		}
		inUse := &PoolInUseError{Issued: p.Issued}
		rows, err := tx.Query(ctx, `SELECT id FROM campaigns WHERE body->'reward'->>'pool' = $1 AND status <> 'archived'
			ORDER BY id LIMIT $2`, id, maxInUseCampaigns)
		if err != nil {
			return err
		}
		if inUse.Campaigns, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if inUse.Issued > 0 || len(inUse.Campaigns) > 0 {
			return inUse
		}
		// Only free codes go: a code issued since the count above keeps its row, and
		// its reference then keeps the pool (the delete below fails).
		if _, err := tx.Exec(ctx, `DELETE FROM coupon_codes WHERE pool_id = $1 AND reward_id IS NULL`, id); err != nil {
			return err
		}
		var issued int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM coupon_codes WHERE pool_id = $1`, id).Scan(&issued); err != nil {
			return err
		}
		if issued > 0 {
			return &PoolInUseError{Issued: issued}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM coupon_pools WHERE id = $1`, id); err != nil {
			return err
		}
		return writeAudit(ctx, tx, AuditEntry{Actor: actor, Action: "pool.delete", TargetType: "pool", TargetID: id, Before: auditJSON(&p)})
	})
	if err != nil {
		return Pool{}, fmt.Errorf("delete pool %q: %w", id, translate(err))
	}
	return p, nil
}

// lockPool locks the pool id's row (mode: FOR UPDATE or FOR SHARE); ErrNotFound (as
// pgx.ErrNoRows, translated by the caller) when there is none.
func lockPool(ctx context.Context, tx pgx.Tx, id, mode string) error {
	var one int
	return tx.QueryRow(ctx, `SELECT 1 FROM coupon_pools WHERE id = $1 `+mode, id).Scan(&one)
}

// UnknownPoolError is the error of a campaign whose reward names a pool that does not exist.
type UnknownPoolError struct{ Pool string }

func (e *UnknownPoolError) Error() string { return fmt.Sprintf("pool %q does not exist", e.Pool) }

// lockNamedPool locks, for share, the pool the campaign's reward takes codes from, so
// the pool cannot be deleted before the campaign is saved; an *UnknownPoolError when
// there is no such pool. A campaign that takes no code, or is archived,
// locks nothing.
func lockNamedPool(ctx context.Context, tx pgx.Tx, c *campaign.Campaign) error {
	if !c.Reward.TakesCode() || c.Status == campaign.StatusArchived {
		return nil
	}
	err := lockPool(ctx, tx, c.Reward.Pool, "FOR SHARE")
	if errors.Is(err, pgx.ErrNoRows) {
		return &UnknownPoolError{Pool: c.Reward.Pool}
	}
	return err
}
