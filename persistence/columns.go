package persistence

import (
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// The column builders of CommitBatch, one per table: each gathers its table's rows from
// the domain types as column arrays (add) and queues the one statement that writes them
// all with unnest (queue). Outside careful mode the inserts are plain, so Postgres skips
// the speculative-insertion check of every unique index; a duplicate event (or a user
// created meanwhile) then fails the batch with a unique violation and CommitBatch retries
// it in careful mode, where ON CONFLICT DO NOTHING and RETURNING tell which.

// processedArrays holds processed_events rows: one per decision, applied or rejected.
type processedArrays struct {
	ids, users, types, outcomes []string
	seqs                        []int64
	reasons                     []*string
}

// newProcessedArrays returns room for n decisions.
func newProcessedArrays(n int) processedArrays {
	return processedArrays{
		ids: make([]string, 0, n), users: make([]string, 0, n), types: make([]string, 0, n),
		outcomes: make([]string, 0, n), seqs: make([]int64, 0, n), reasons: make([]*string, 0, n),
	}
}

// add appends the record that d's event was processed.
func (c *processedArrays) add(d *loyalty.Decision) {
	outcome, reason := "applied", (*string)(nil)
	if d.Rejected != "" {
		outcome, reason = "rejected", &d.Rejected
	}
	c.ids = append(c.ids, d.EventID)
	c.users = append(c.users, d.User.UserID)
	c.types = append(c.types, d.EventType)
	c.seqs = append(c.seqs, d.StreamSeq)
	c.outcomes = append(c.outcomes, outcome)
	c.reasons = append(c.reasons, reason)
}

// queue inserts the rows into today's partition (day defaults to the transaction's UTC
// date), collecting the ids of the events recorded into inserted (in careful mode an
// event processed before today is not among them). The primary key (event_id, day) finds
// only a duplicate of the same day: queueOlder finds the others.
func (c *processedArrays) queue(b *pgx.Batch, careful bool, inserted *[]string) {
	b.Queue(`INSERT INTO processed_events (event_id, user_id, event_type, stream_seq, outcome, reason)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[])`+
		onConflictNothing(careful, "event_id, day")+` RETURNING event_id`,
		c.ids, c.users, c.types, c.seqs, c.outcomes, c.reasons).Query(collectStrings(inserted))
}

// queueOlder looks the events up in the partitions of the days before the transaction's
// (every partition left is within the dedup horizon: the maintenance drops older ones),
// collecting the ids processed on an earlier day into older. The day bound is a stable
// expression, so Postgres prunes today's and later partitions when the statement starts,
// and each partition holding earlier days answers from its primary key's index: one
// probe per id and such partition (two with weekly ones: today's, on the pages the insert
// reads next, and the week's before; see Retention.Span). It runs in the commit's batch
// (no extra round trip).
//
// A user's events are committed by one fenced owner at a time (partition_epochs), so a
// user's duplicate is never in flight in another transaction. The same event id sent for
// two users is a duplicate too (the id is the idempotency key, as for JetStream), found
// by the primary key when both commit the same day (the second waits for the first) and
// by this lookup once the first committed; only two commits of it running at once on
// either side of midnight UTC can both apply.
func (c *processedArrays) queueOlder(b *pgx.Batch, older *[]string) {
	b.Queue(`SELECT event_id FROM processed_events
		WHERE event_id = ANY($1) AND day < (now() AT TIME ZONE 'UTC')::date`, c.ids).Query(collectStrings(older))
}

// userArrays holds users' state as column arrays for unnest.
type userArrays struct {
	ids, tiers, eventCounts, rewardCounts, rewardDays, history, lots, tierReviewed []string
	points, lifetime, purchases, seqs, versions, prevs                             []int64
	spent                                                                          []float64
	firstSeen                                                                      []time.Time
	lastPurchase, nextExpiry                                                       []pgtype.Timestamptz
	rejections                                                                     []*string
}

// add appends u's state; prev is the stored version it must replace (0: a new user).
func (c *userArrays) add(u *loyalty.User, prev int64) {
	c.prevs = append(c.prevs, prev)
	c.ids = append(c.ids, u.UserID)
	c.tiers = append(c.tiers, u.Tier)
	c.points = append(c.points, u.Points)
	c.lifetime = append(c.lifetime, u.LifetimePoints)
	c.purchases = append(c.purchases, u.PurchaseCount)
	c.seqs = append(c.seqs, u.LastSeq)
	c.versions = append(c.versions, u.Version)
	c.spent = append(c.spent, u.TotalSpent)
	c.firstSeen = append(c.firstSeen, u.FirstSeen)
	c.lastPurchase = append(c.lastPurchase, timestamptz(u.LastPurchaseAt))
	c.nextExpiry = append(c.nextExpiry, timestamptz(u.NextExpiry))
	c.eventCounts = append(c.eventCounts, mustJSON(u.EventCounts))
	c.rewardCounts = append(c.rewardCounts, mustJSON(u.RewardCounts))
	c.rewardDays = append(c.rewardDays, mustJSON(u.RewardDays))
	c.history = append(c.history, mustJSONList(u.History))
	c.lots = append(c.lots, mustJSONList(u.Lots))
	c.tierReviewed = append(c.tierReviewed, u.TierReviewed)
	var rj *string
	if u.LastRejection != nil {
		r := mustJSON(u.LastRejection)
		rj = &r
	}
	c.rejections = append(c.rejections, rj)
}

// args are the arrays in the order of userUnnest's parameters.
func (c *userArrays) args() []any {
	return []any{c.ids, c.tiers, c.points, c.lifetime, c.purchases, c.spent, c.firstSeen, c.lastPurchase,
		c.eventCounts, c.rewardCounts, c.rewardDays, c.seqs, c.versions,
		c.history, c.lots, c.nextExpiry, c.rejections, c.tierReviewed, c.prevs}
}

// queueInsert inserts the users as new ones, collecting the ids written into written (in
// careful mode a user created meanwhile is not among them).
func (c *userArrays) queueInsert(b *pgx.Batch, careful bool, written *[]string) {
	if len(c.ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO users (`+userInsertColumns+`)
			SELECT `+userUnnestSelect+` FROM `+userUnnest+onConflictNothing(careful, "user_id")+` RETURNING user_id`,
		c.args()...).Query(collectStrings(written))
}

// queueUpdate writes the users' new state where the stored version is each one's prev,
// collecting the ids written into written (a fenced user is not among them).
func (c *userArrays) queueUpdate(b *pgx.Batch, written *[]string) {
	if len(c.ids) == 0 {
		return
	}
	b.Queue(userUpdate, c.args()...).Query(collectStrings(written))
}

const (
	userUnnest = `unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[],
			$7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[],
			$14::text[], $15::text[], $16::timestamptz[], $17::text[], $18::text[], $19::bigint[])
			AS t(id, tier, points, lifetime, purchases, spent, first, last_purchase, ec, rc, rd, seq, ver, h, l, nx, rj, tr, prev)`
	userInsertColumns = `user_id, tier, points, lifetime_points, purchase_count, total_spent,
			first_seen, last_purchase_at, event_counts, reward_counts, reward_days, history, lots, next_expiry,
			last_rejection, tier_reviewed, last_seq, version, updated_at`
	userUnnestSelect = `t.id, t.tier, t.points, t.lifetime, t.purchases, t.spent, t.first, t.last_purchase,
			t.ec::jsonb, t.rc::jsonb, t.rd::jsonb, t.h::jsonb, t.l::jsonb, t.nx, t.rj::jsonb, t.tr, t.seq, t.ver, now()`
	// userSetFromT sets every column from the unnest row t (the fenced update).
	userSetFromT = `tier = t.tier, points = t.points, lifetime_points = t.lifetime,
			purchase_count = t.purchases, total_spent = t.spent, first_seen = t.first,
			last_purchase_at = t.last_purchase, event_counts = t.ec::jsonb, reward_counts = t.rc::jsonb,
			reward_days = t.rd::jsonb, history = t.h::jsonb, lots = t.l::jsonb, next_expiry = t.nx,
			last_rejection = t.rj::jsonb, tier_reviewed = t.tr, last_seq = t.seq, version = t.ver,
			updated_at = now()`
)

// userUpdate writes users' new state where the stored version is the one the chain was
// built on. "user_id = ANY($1)" gives the planner an index condition on users: without
// it, a batch of a few hundred against a table of some thousand users is planned as a
// hash join over a sequential scan.
var userUpdate = `UPDATE users AS u SET ` + userSetFromT + `
	FROM ` + userUnnest + `
	WHERE u.user_id = t.id AND u.version = t.prev AND u.user_id = ANY($1)
	RETURNING u.user_id`

// tierChangeArrays holds tier_changes rows.
type tierChangeArrays struct {
	users, from, to, reasons, events []string
	occurred                         []time.Time
}

// add appends the tier change tc that event eventID of user userID caused.
func (c *tierChangeArrays) add(userID, eventID string, tc *loyalty.TierChange) {
	c.users = append(c.users, userID)
	c.from = append(c.from, tc.From)
	c.to = append(c.to, tc.To)
	c.reasons = append(c.reasons, tc.Reason)
	c.events = append(c.events, eventID)
	c.occurred = append(c.occurred, tc.OccurredAt)
}

// queue inserts the rows.
func (c *tierChangeArrays) queue(b *pgx.Batch) {
	if len(c.users) == 0 {
		return
	}
	b.Queue(`INSERT INTO tier_changes (user_id, from_tier, to_tier, reason, event_id, occurred_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])`,
		c.users, c.from, c.to, c.reasons, c.events, c.occurred)
}

// ledgerArrays holds points_ledger rows; the optional columns are NULL when empty.
type ledgerArrays struct {
	users, kinds, events                []string
	points, balances                    []int64
	rewards, campaigns, actors, reasons []*string
	versions                            []*int64
	expires                             []pgtype.Timestamptz
	occurred                            []time.Time
}

// add appends the ledger entry l of event eventID of user userID (the entry's own UserID
// and EventID are not read). The campaign version is stored only with a campaign.
func (c *ledgerArrays) add(userID, eventID string, l *loyalty.LedgerEntry) {
	var v *int64
	if l.CampaignID != "" {
		v = &l.CampaignVersion
	}
	c.users = append(c.users, userID)
	c.kinds = append(c.kinds, l.Kind)
	c.events = append(c.events, eventID)
	c.points = append(c.points, l.Points)
	c.balances = append(c.balances, l.BalanceAfter)
	c.rewards = append(c.rewards, nonEmpty(l.RewardID))
	c.campaigns = append(c.campaigns, nonEmpty(l.CampaignID))
	c.actors = append(c.actors, nonEmpty(l.Actor))
	c.reasons = append(c.reasons, nonEmpty(l.Reason))
	c.versions = append(c.versions, v)
	c.expires = append(c.expires, timestamptz(l.ExpiresAt))
	c.occurred = append(c.occurred, l.OccurredAt)
}

// queue inserts the rows.
func (c *ledgerArrays) queue(b *pgx.Batch) {
	if len(c.users) == 0 {
		return
	}
	b.Queue(`INSERT INTO points_ledger (user_id, kind, points, balance_after, event_id, reward_id,
				campaign_id, campaign_version, actor, reason, expires_at, occurred_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
				$7::text[], $8::bigint[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[])`,
		c.users, c.kinds, c.points, c.balances, c.events, c.rewards, c.campaigns, c.versions, c.actors, c.reasons, c.expires, c.occurred)
}

// effectArrays holds event_effects rows (a new effect's refunded amounts start at 0).
type effectArrays struct {
	ids, users, types, campaignPoints []string
	amounts                           []float64
	points                            []int64
	occurred                          []time.Time
}

// add appends the effect f of an event of user userID (f's own UserID is not read).
func (c *effectArrays) add(userID string, f *loyalty.EventEffect) {
	c.ids = append(c.ids, f.EventID)
	c.users = append(c.users, userID)
	c.types = append(c.types, f.EventType)
	c.campaignPoints = append(c.campaignPoints, mustJSON(f.CampaignPoints))
	c.amounts = append(c.amounts, f.Amount)
	c.points = append(c.points, f.Points)
	c.occurred = append(c.occurred, f.OccurredAt)
}

// queue inserts the rows.
func (c *effectArrays) queue(b *pgx.Batch, careful bool) {
	if len(c.ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO event_effects (event_id, user_id, event_type, campaign_points, amount, points, occurred_at)
			SELECT t.id, t.u, t.ty, t.cp::jsonb, t.a, t.p, t.o
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bigint[], $7::timestamptz[])
				AS t(id, u, ty, cp, a, p, o)`+onConflictNothing(careful, "event_id, day"),
		c.ids, c.users, c.types, c.campaignPoints, c.amounts, c.points, c.occurred)
}

// refundArrays holds the refunds to count against stored event_effects rows.
type refundArrays struct {
	ids     []string
	amounts []float64
	points  []int64
}

// add appends the refund x.
func (c *refundArrays) add(x *loyalty.RefundApplied) {
	c.ids = append(c.ids, x.EventID)
	c.amounts = append(c.amounts, x.Amount)
	c.points = append(c.points, x.Points)
}

// queue adds the refunds to their effects' refunded amounts. Queued after the effects'
// insert, it also finds an effect inserted by the same batch. An event applied again
// after the dedup horizon has an effect row per day it was applied; the refund counts
// against the latest, the one GetEventEffect returns.
func (c *refundArrays) queue(b *pgx.Batch) {
	if len(c.ids) == 0 {
		return
	}
	b.Queue(`UPDATE event_effects e SET refunded_amount = e.refunded_amount + t.a,
				refunded_points = e.refunded_points + t.p
			FROM unnest($1::text[], $2::float8[], $3::bigint[]) AS t(id, a, p)
			WHERE e.event_id = t.id AND e.day = (SELECT max(l.day) FROM event_effects l WHERE l.event_id = t.id)`,
		c.ids, c.amounts, c.points)
}

// rewardArrays holds rewards rows.
type rewardArrays struct {
	ids, users, campaigns, events, types, payloads []string
	versions, points                               []int64
	occurred, created                              []time.Time
}

// add appends the reward r, setting its CreatedAt to now when it has none (the first
// attempt's time), so the stored row and the REWARDS message carry the same time.
func (c *rewardArrays) add(r *loyalty.Reward, now time.Time) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	c.created = append(c.created, r.CreatedAt)
	c.ids = append(c.ids, r.ID)
	c.users = append(c.users, r.UserID)
	c.campaigns = append(c.campaigns, r.CampaignID)
	c.versions = append(c.versions, r.CampaignVersion)
	c.events = append(c.events, r.EventID)
	c.types = append(c.types, r.Type)
	c.points = append(c.points, r.Points)
	c.payloads = append(c.payloads, mustJSON(r.Payload))
	c.occurred = append(c.occurred, r.OccurredAt)
}

// queue inserts the rows. With codes (the batch assigned pool codes, queued before),
// each reward's payload also gets its code (see couponPayloadSQL).
func (c *rewardArrays) queue(b *pgx.Batch, careful, codes bool) {
	if len(c.ids) == 0 {
		return
	}
	payload := `t.pl::jsonb`
	if codes {
		payload += ` || ` + couponPayloadSQL
	}
	b.Queue(`INSERT INTO rewards (id, user_id, campaign_id, campaign_version, event_id, type, points, payload, occurred_at, created_at)
			SELECT t.id, t.u, t.c, t.v, t.e, t.ty, t.p, `+payload+`, t.o, t.cr
			FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::timestamptz[], $10::timestamptz[])
				AS t(id, u, c, v, e, ty, p, pl, o, cr)`+onConflictNothing(careful, "id"),
		c.ids, c.users, c.campaigns, c.versions, c.events, c.types, c.points, c.payloads, c.occurred, c.created)
}

// budgetArrays holds what the decisions take from each campaign's budget, summed per
// campaign; queue turns the sums into campaign_budgets rows.
type budgetArrays struct {
	totals map[string]loyalty.BudgetDelta // the limits are the last decision's
}

// add adds one decision's budget deltas.
func (c *budgetArrays) add(deltas map[string]loyalty.BudgetDelta) {
	if len(deltas) == 0 {
		return
	}
	if c.totals == nil {
		c.totals = make(map[string]loyalty.BudgetDelta, len(deltas))
	}
	for id, d := range deltas {
		t := c.totals[id]
		t.Rewards, t.Points = t.Rewards+d.Rewards, t.Points+d.Points
		t.MaxRewards, t.MaxPoints = d.MaxRewards, d.MaxPoints
		c.totals[id] = t
	}
}

// queue adds the sums to the campaigns' used budgets, locking the rows in id order so
// concurrent batches lock them in the same order, and marks in over each campaign the
// sums take past a limit (only where they grant more of what the limit counts).
func (c *budgetArrays) queue(b *pgx.Batch, over map[string]bool) {
	if len(c.totals) == 0 {
		return
	}
	totals := c.totals // not c: the callback would keep every builder on the heap
	ids := make([]string, 0, len(totals))
	rewards, points := make([]int64, 0, len(totals)), make([]int64, 0, len(totals))
	for id, d := range totals {
		ids = append(ids, id)
		rewards = append(rewards, d.Rewards)
		points = append(points, d.Points)
	}
	b.Queue(`INSERT INTO campaign_budgets AS b (campaign_id, rewards_used, points_used)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS t(id, r, p) ORDER BY t.id
			ON CONFLICT (campaign_id) DO UPDATE SET rewards_used = b.rewards_used + excluded.rewards_used,
				points_used = b.points_used + excluded.points_used, updated_at = now()
			RETURNING campaign_id, rewards_used, points_used`, ids, rewards, points).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var r, p int64
			if err := rows.Scan(&id, &r, &p); err != nil {
				return err
			}
			d := totals[id]
			if (d.MaxRewards > 0 && d.Rewards > 0 && r > d.MaxRewards) || (d.MaxPoints > 0 && d.Points > 0 && p > d.MaxPoints) {
				over[id] = true
			}
		}
		return rows.Err()
	})
}

// onConflictNothing is the ON CONFLICT clause of careful mode on key, or nothing.
func onConflictNothing(careful bool, key string) string {
	if careful {
		return " ON CONFLICT (" + key + ") DO NOTHING"
	}
	return ""
}

// collectStrings scans rows of one text column into dst.
func collectStrings(dst *[]string) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			*dst = append(*dst, s)
		}
		return rows.Err()
	}
}

// timestamptz is t as a nullable column value (nil: NULL).
func timestamptz(t *time.Time) pgtype.Timestamptz {
	if t == nil {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: *t, Valid: true}
}

// nonEmpty is s as a nullable column value ("": NULL).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// mustJSONList encodes a slice, nil as [].
func mustJSONList(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "[]"
	}
	return string(b)
}

// mustJSON encodes a map or struct of plain data, nil as {}.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}" // maps of strings to numbers always encode
	}
	if string(b) == "null" {
		return "{}"
	}
	return string(b)
}

// ruleErrorArrays counts the decisions' rule errors per campaign and UTC day of the
// event; queue adds the counts to campaign_rule_errors.
type ruleErrorArrays struct {
	counts map[ruleErrorDay]int64
}

type ruleErrorDay struct {
	campaign string
	day      time.Time
}

// add counts d's rule errors.
func (c *ruleErrorArrays) add(d *loyalty.Decision) {
	if len(d.RuleErrors) == 0 {
		return
	}
	if c.counts == nil {
		c.counts = map[ruleErrorDay]int64{}
	}
	day := d.OccurredAt.UTC().Truncate(24 * time.Hour)
	for _, id := range d.RuleErrors {
		c.counts[ruleErrorDay{id, day}]++
	}
}

// queue adds the counts, rows in (campaign, day) order so concurrent batches lock them
// in the same order.
func (c *ruleErrorArrays) queue(b *pgx.Batch) {
	if len(c.counts) == 0 {
		return
	}
	ids := make([]string, 0, len(c.counts))
	days := make([]time.Time, 0, len(c.counts))
	counts := make([]int64, 0, len(c.counts))
	for k, n := range c.counts {
		ids, days, counts = append(ids, k.campaign), append(days, k.day), append(counts, n)
	}
	b.Queue(`INSERT INTO campaign_rule_errors AS e (campaign_id, day, errors)
		SELECT id, (d AT TIME ZONE 'UTC')::date, n FROM unnest($1::text[], $2::timestamptz[], $3::bigint[]) AS t(id, d, n) ORDER BY id, d
		ON CONFLICT (campaign_id, day) DO UPDATE SET errors = e.errors + excluded.errors`, ids, days, counts)
}
