package persistence

import (
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// The column builders of CommitBatch for coupon code pools (see columns.go).
//
// How a code is assigned exactly once: the batch first locks the rows of every pool it
// takes codes from or records a refusal against (coupon_pools, in id order, FOR NO KEY
// UPDATE), so two transactions that touch one pool take turns, whichever engine runs
// them; the next statement (a new snapshot under READ COMMITTED) then sees every code
// the transaction before took. It takes the first free, unexpired codes of each pool in
// seq order, one per reward, and marks them issued to the reward in the same
// transaction as the reward row, whose payload gets the code. A reward that finds no
// code, and a refusal whose pool still has one, make the attempt roll back and their
// decisions come back PoolChanged: the actor evaluates again with the pool's fresh
// count. So a code is issued iff its reward commits, and a reward is refused for lack of
// codes iff its pool had none when it committed.

// assignedCode is the code a reward took, with its expiry.
type assignedCode struct {
	code      string
	expiresAt *time.Time
}

// codeArrays holds the rewards that take a code from a pool, in the batch's order, and
// the pools that the batch's refusals say are empty.
type codeArrays struct {
	rewards, pools, users, campaigns []string
	seen                             map[string]bool // reward ids in rewards
	// refused are the pools named by refusals.
	refused map[string]bool
}

// add appends d's rewards that take a code and the pools of its refusals.
func (c *codeArrays) add(d *loyalty.Decision) {
	for k := range d.Rewards {
		r := &d.Rewards[k]
		if r.Pool == "" || c.seen[r.ID] {
			continue // a reward id twice is a duplicate event: the batch rolls back
		}
		if c.seen == nil {
			c.seen = map[string]bool{}
		}
		c.seen[r.ID] = true
		c.rewards = append(c.rewards, r.ID)
		c.pools = append(c.pools, r.Pool)
		c.users = append(c.users, r.UserID)
		c.campaigns = append(c.campaigns, r.CampaignID)
	}
	for _, f := range d.Refused {
		if f.Pool == "" {
			continue
		}
		if c.refused == nil {
			c.refused = map[string]bool{}
		}
		c.refused[f.Pool] = true
	}
}

// any reports whether the batch touches a pool.
func (c *codeArrays) any() bool { return len(c.rewards) > 0 || len(c.refused) > 0 }

// queue locks the pools, assigns the codes (collected into codes by reward id) and
// marks in notEmpty each refused pool that still has a free code after the assignment.
func (c *codeArrays) queue(b *pgx.Batch, codes map[string]assignedCode, notEmpty map[string]bool) {
	if !c.any() {
		return
	}
	set := maps.Clone(c.refused)
	if set == nil {
		set = map[string]bool{}
	}
	for _, p := range c.pools {
		set[p] = true
	}
	pools := slices.Sorted(maps.Keys(set))
	b.Queue(`SELECT id FROM coupon_pools WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, pools)
	if len(c.rewards) > 0 {
		// A reward that holds a code already (its event committed before: the batch is
		// a duplicate and rolls back) is not given another; its code is reported.
		b.Queue(`WITH want AS (
				SELECT t.rid, t.pool, t.uid, t.cid, t.ord
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(rid, pool, uid, cid, ord)
				WHERE NOT EXISTS (SELECT 1 FROM coupon_codes x WHERE x.reward_id = t.rid)),
			ranked AS (SELECT w.*, row_number() OVER (PARTITION BY w.pool ORDER BY w.ord) AS n FROM want w),
			need AS (SELECT pool, count(*) AS n FROM want GROUP BY pool),
			free AS (
				SELECT f.pool_id, f.code, row_number() OVER (PARTITION BY f.pool_id ORDER BY f.seq) AS n
				FROM need CROSS JOIN LATERAL (
					SELECT k.pool_id, k.code, k.seq FROM coupon_codes k
					WHERE k.pool_id = need.pool AND k.reward_id IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
					ORDER BY k.seq LIMIT need.n) f),
			taken AS (
				UPDATE coupon_codes k SET reward_id = r.rid, user_id = r.uid, campaign_id = r.cid,
					issued_seq = nextval('coupon_codes_issued'), issued_at = now()
				FROM ranked r JOIN free f ON f.pool_id = r.pool AND f.n = r.n
				WHERE k.code = f.code
				RETURNING r.rid, k.code, k.expires_at)
			SELECT rid, code, expires_at FROM taken
			UNION ALL
			SELECT reward_id, code, expires_at FROM coupon_codes WHERE reward_id = ANY($1)`,
			c.rewards, c.pools, c.users, c.campaigns).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var rid, code string
				var exp pgtype.Timestamptz
				if err := rows.Scan(&rid, &code, &exp); err != nil {
					return err
				}
				a := assignedCode{code: code}
				if exp.Valid {
					t := exp.Time.UTC()
					a.expiresAt = &t
				}
				codes[rid] = a
			}
			return rows.Err()
		})
	}
	if len(c.refused) > 0 {
		refused := slices.Sorted(maps.Keys(c.refused))
		b.Queue(`SELECT p FROM unnest($1::text[]) AS p WHERE EXISTS (
				SELECT 1 FROM coupon_codes k WHERE k.pool_id = p AND k.reward_id IS NULL
					AND (k.expires_at IS NULL OR k.expires_at > now()))`, refused).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var p string
				if err := rows.Scan(&p); err != nil {
					return err
				}
				notEmpty[p] = true
			}
			return rows.Err()
		})
	}
}

// noCode returns the rewards that wanted a code and got none.
func (c *codeArrays) noCode(codes map[string]assignedCode) map[string]bool {
	out := map[string]bool{}
	for _, id := range c.rewards {
		if _, ok := codes[id]; !ok {
			out[id] = true
		}
	}
	return out
}

// couponPayloadSQL is what a reward row's payload gets from its code: coupon_code and,
// for a code that expires, coupon_expires_at (RFC 3339, UTC, whole seconds, as
// couponPayload writes it). t is the unnest row of the reward.
const couponPayloadSQL = `coalesce((SELECT jsonb_build_object('coupon_code', k.code) ||
		CASE WHEN k.expires_at IS NULL THEN '{}'::jsonb
		ELSE jsonb_build_object('coupon_expires_at', to_char(k.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END
	FROM coupon_codes k WHERE k.reward_id = t.id), '{}'::jsonb)`

// couponPayload is payload with the code a of its reward, as the stored row has it (a
// new map: payload may be shared).
func couponPayload(payload map[string]any, a assignedCode) map[string]any {
	out := make(map[string]any, len(payload)+2)
	maps.Copy(out, payload)
	out["coupon_code"] = a.code
	if a.expiresAt != nil {
		out["coupon_expires_at"] = a.expiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	return out
}

// refusalArrays counts the decisions' refusals per campaign and reason; queue adds the
// counts to campaign_refusals.
type refusalArrays struct {
	counts map[refusalKey]int64
}

type refusalKey struct{ campaign, reason string }

// add counts d's refusals.
func (c *refusalArrays) add(d *loyalty.Decision) {
	if len(d.Refused) == 0 {
		return
	}
	if c.counts == nil {
		c.counts = map[refusalKey]int64{}
	}
	for _, f := range d.Refused {
		c.counts[refusalKey{f.CampaignID, f.Reason}]++
	}
}

// queue adds the counts, rows in (campaign, reason) order so concurrent batches lock
// them in the same order.
func (c *refusalArrays) queue(b *pgx.Batch) {
	if len(c.counts) == 0 {
		return
	}
	ids := make([]string, 0, len(c.counts))
	reasons := make([]string, 0, len(c.counts))
	counts := make([]int64, 0, len(c.counts))
	for k, n := range c.counts {
		ids, reasons, counts = append(ids, k.campaign), append(reasons, k.reason), append(counts, n)
	}
	b.Queue(`INSERT INTO campaign_refusals AS f (campaign_id, reason, refused)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(id, r, n) ORDER BY id, r
		ON CONFLICT (campaign_id, reason) DO UPDATE SET refused = f.refused + excluded.refused`, ids, reasons, counts)
}
