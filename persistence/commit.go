package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
)

// Outcome is what became of one decision in CommitBatch.
type Outcome int

const (
	// Committed means the decision's effects and its processed record are stored.
	Committed Outcome = iota
	// Duplicate means the event id was processed before; nothing changed.
	Duplicate
	// Fenced means the stored user version was not the one the decision was built on
	// (another owner moved it); nothing changed and the caller must reload the user.
	Fenced
	// OverBudget means committing would take a campaign past its budget (another engine
	// granted meanwhile); nothing changed and the caller must evaluate again with fresh
	// budgets.
	OverBudget
	// ChainBroken means another decision of the same user's chain could not be committed,
	// so neither was this one; nothing changed.
	ChainBroken
	// Stale means the decision's partition has a newer owner epoch than the one it
	// carries (another engine claimed the partition); nothing changed and the caller must
	// stop consuming the partition.
	Stale
	// PoolChanged means the decision's view of a coupon code pool was wrong: one of its
	// rewards needs a code the pool no longer has, or it refuses a reward for lack of
	// codes while the pool has one (imported meanwhile, or given back by a rolled-back
	// commit); nothing changed and the caller must evaluate again with the pool's fresh
	// count (see LoadPoolLevels).
	PoolChanged
)

// Owner is the partition of a decision's event and the owner epoch the deciding engine
// holds for it (see ClaimPartitions); CommitBatch commits the decision only while that
// is still the partition's epoch.
type Owner struct {
	Partition int
	Epoch     int64
}

// CommitBatch stores many decisions in one transaction. A user's decisions form a chain:
// adjacent in ds, each built on the one before (versions v, v+1, …); the user row is
// written once, with the last one's state, fenced on the version the first was built on.
// A chain commits whole or not at all: when one of its decisions cannot commit, the others
// get ChainBroken. owners, when not nil, holds each decision's partition and owner epoch:
// the transaction checks every epoch first (holding the partitions' rows FOR SHARE, so a
// claim waits for it), and the decisions of a partition claimed since are Stale. It
// returns one Outcome per decision, or an error when nothing was committed (the caller
// retries; a *PermanentError marks data the database will never accept, so retrying the
// same batch is pointless).
//
// A reward with a Pool takes one free code of that pool in the same transaction (see
// columns_codes.go); for each Committed decision CommitBatch writes the code into the
// reward's Payload (coupon_code, and coupon_expires_at for a code that expires) in ds,
// as the stored reward row has it. A decision whose reward finds no code, or whose
// refusal names a pool that still has codes, is PoolChanged. Refusals are counted per
// campaign and reason.
func (s *Store) CommitBatch(ctx context.Context, ds []loyalty.Decision, owners []Owner) ([]Outcome, error) {
	if err := checkChains(ds); err != nil {
		return nil, err
	}
	if owners != nil && len(owners) != len(ds) {
		return nil, fmt.Errorf("commit batch: %d owners for %d decisions", len(owners), len(ds))
	}
	outcomes := make([]Outcome, len(ds))
	pending := make([]int, len(ds)) // indexes into ds still to commit
	for i := range ds {
		pending[i] = i
	}
	careful := false
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 4 {
			return nil, errors.New("commit batch: outcomes keep changing between attempts")
		}
		rej, codes, err := s.commitOnce(ctx, ds, owners, pending, careful)
		if err != nil {
			if !careful && isUniqueViolation(err) {
				careful = true // a duplicate event or a user created meanwhile: find out which
				continue
			}
			return nil, err
		}
		if rej == nil {
			giveCodes(ds, pending, codes)
			break
		}
		pending = settle(ds, owners, pending, outcomes, rej)
	}
	return outcomes, nil
}

// checkChains checks that each user's decisions in ds are adjacent and a chain of
// consecutive versions.
func checkChains(ds []loyalty.Decision) error {
	for i := 1; i < len(ds); i++ {
		a, b := &ds[i-1].User, &ds[i].User
		if a.UserID == b.UserID && b.Version != a.Version+1 {
			return fmt.Errorf("commit batch: decisions %d and %d of user %q are not a chain (versions %d, %d)", i-1, i, a.UserID, a.Version, b.Version)
		}
	}
	seen := map[string]int{}
	for i := range ds {
		if j, ok := seen[ds[i].User.UserID]; ok && j != i-1 {
			return fmt.Errorf("commit batch: decisions of user %q are not adjacent", ds[i].User.UserID)
		}
		seen[ds[i].User.UserID] = i
	}
	return nil
}

// rejections are what one attempt found that keeps decisions from committing.
type rejections struct {
	dups   map[string]bool // event ids processed before
	fenced map[string]bool // user ids whose stored version moved
	over   map[string]bool // campaigns the batch takes past a limit
	stale  map[int]bool    // partitions claimed by another owner since
	// noCode are the rewards that wanted a pool code and got none; notEmpty the pools a
	// refusal named that still have a code.
	noCode, notEmpty map[string]bool
}

// settle records in outcomes what became of the pending decisions that commitOnce
// reported (stale partitions, duplicate event ids, fenced user ids, campaigns over
// budget) and of the rest of their chains, and returns the decisions still to commit. A
// duplicate or an over-budget decision breaks its chain; a fenced or stale one is so
// with its whole chain already (a user's events share a partition).
func settle(ds []loyalty.Decision, owners []Owner, pending []int, outcomes []Outcome, rej *rejections) []int {
	next := pending[:0:0]
	broken := map[string]bool{}
	for _, i := range pending {
		switch {
		case owners != nil && rej.stale[owners[i].Partition]:
			outcomes[i] = Stale
		case rej.dups[ds[i].EventID]:
			outcomes[i] = Duplicate
			broken[ds[i].User.UserID] = true
		case rej.fenced[ds[i].User.UserID]:
			outcomes[i] = Fenced
		case touches(ds[i].Budget, rej.over):
			outcomes[i] = OverBudget
			broken[ds[i].User.UserID] = true
		case wrongAboutPools(&ds[i], rej.noCode, rej.notEmpty):
			outcomes[i] = PoolChanged
			broken[ds[i].User.UserID] = true
		default:
			next = append(next, i)
		}
	}
	still := next[:0:0]
	for _, i := range next {
		if broken[ds[i].User.UserID] {
			outcomes[i] = ChainBroken
		} else {
			still = append(still, i)
		}
	}
	return still
}

// PermanentError is a commit failure caused by the data itself (SQLSTATE classes 22 and
// 23): the database will never accept it, so retrying the same batch is pointless.
type PermanentError struct{ Err error }

// Error returns the wrapped error's message.
func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error, so errors.As finds the *pgconn.PgError.
func (e *PermanentError) Unwrap() error { return e.Err }

// commitOnce tries to commit ds[pending] in one transaction, sending all its statements
// in one batch (one round trip). When some are stale, duplicates, fenced, over budget or
// wrong about a pool it rolls back and reports them (nil: committed, with the codes the
// rewards took, by reward id).
//
// Outside careful mode the statements are plain inserts (see columns.go); a unique
// violation then fails the whole batch and the caller retries it carefully.
func (s *Store) commitOnce(ctx context.Context, ds []loyalty.Decision, owners []Owner, pending []int, careful bool) (*rejections, map[string]assignedCode, error) {
	c := newCommitColumns(ds, pending)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("commit batch: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	b := &pgx.Batch{}
	var r commitReturned
	b.Queue(noSeqScan)
	stale := queueFence(b, owners, pending)
	c.queue(b, careful, &r)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, classify("commit batch", err)
	}
	if len(stale) == 0 && c.applied(&r) {
		if err := tx.Commit(ctx); err != nil {
			return nil, nil, classify("commit batch: commit", err)
		}
		return nil, r.codes, nil
	}
	// Some decisions must not apply: roll back and report them.
	if len(stale) > 0 {
		return &rejections{stale: stale}, nil, nil
	}
	dups, fenced, err := c.rejected(&r)
	if err != nil {
		return nil, nil, err
	}
	return &rejections{dups: dups, fenced: fenced, over: r.over, noCode: c.codes.noCode(r.codes), notEmpty: r.notEmpty}, nil, nil
}

// giveCodes writes into the payload of each reward of ds[pending] that took a pool code
// the code it took (see couponPayload).
func giveCodes(ds []loyalty.Decision, pending []int, codes map[string]assignedCode) {
	if len(codes) == 0 {
		return
	}
	for _, i := range pending {
		for k := range ds[i].Rewards {
			r := &ds[i].Rewards[k]
			if a, ok := codes[r.ID]; ok && r.Pool != "" {
				r.Payload = couponPayload(r.Payload, a)
			}
		}
	}
}

// wrongAboutPools reports whether one of d's rewards got no code (noCode, by reward id)
// or one of its refusals names a pool that has codes (notEmpty).
func wrongAboutPools(d *loyalty.Decision, noCode, notEmpty map[string]bool) bool {
	for k := range d.Rewards {
		if noCode[d.Rewards[k].ID] {
			return true
		}
	}
	for _, f := range d.Refused {
		if notEmpty[f.Pool] {
			return true
		}
	}
	return false
}

// queueFence queues the check of the owner epochs of the pending decisions' partitions,
// first in the transaction: it holds the matching partition rows FOR SHARE (a claim of
// one waits until this transaction ends) and leaves in the returned map, once the batch
// ran, the partitions whose epoch is no longer the one given (nothing when owners is nil).
func queueFence(b *pgx.Batch, owners []Owner, pending []int) map[int]bool {
	stale := map[int]bool{}
	if owners == nil {
		return stale
	}
	epochs := map[int]int64{}
	for _, i := range pending {
		epochs[owners[i].Partition] = owners[i].Epoch
	}
	parts := make([]int32, 0, len(epochs))
	eps := make([]int64, 0, len(epochs))
	for p, e := range epochs {
		parts, eps = append(parts, int32(p)), append(eps, e)
		stale[p] = true
	}
	b.Queue(`SELECT partition FROM partition_epochs
		WHERE (partition, epoch) IN (SELECT * FROM unnest($1::int[], $2::bigint[])) FOR SHARE`, parts, eps).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var p int32
			if err := rows.Scan(&p); err != nil {
				return err
			}
			delete(stale, int(p))
		}
		return rows.Err()
	})
	return stale
}

// commitColumns are the rows one commit attempt writes, by table.
type commitColumns struct {
	events  processedArrays
	created userArrays // users new with this batch (their chain is built on version 0)
	users   userArrays // known users, fenced on the version their chain is built on
	tiers   tierChangeArrays
	ledger  ledgerArrays
	effects effectArrays
	refunds refundArrays
	rewards rewardArrays
	budgets budgetArrays
	codes   codeArrays
	refused refusalArrays
	errors  ruleErrorArrays
}

// newCommitColumns gathers the rows of ds[pending]. It returns a value, which stays on
// commitOnce's stack.
func newCommitColumns(ds []loyalty.Decision, pending []int) commitColumns {
	c := commitColumns{events: newProcessedArrays(len(pending))}
	now := time.Now().UTC().Truncate(time.Microsecond) // Postgres keeps microseconds
	chainLen := make(map[string]int, len(pending))
	for _, i := range pending {
		chainLen[ds[i].User.UserID]++
	}
	for j, i := range pending {
		d := &ds[i]
		u := &d.User
		c.events.add(d)
		// One row per user: the state of its chain's last decision, fenced on the version
		// the first was built on. A new user (built on version 0) is an insert, a known one
		// a fenced update.
		if j+1 == len(pending) || ds[pending[j+1]].User.UserID != u.UserID {
			if prev := u.Version - int64(chainLen[u.UserID]); prev == 0 {
				c.created.add(u, prev)
			} else {
				c.users.add(u, prev)
			}
		}
		if d.TierChange != nil {
			c.tiers.add(u.UserID, d.EventID, d.TierChange)
		}
		for k := range d.Ledger {
			c.ledger.add(u.UserID, d.EventID, &d.Ledger[k])
		}
		if d.Effect != nil {
			c.effects.add(u.UserID, d.Effect)
		}
		if d.Refund != nil {
			c.refunds.add(d.Refund)
		}
		for k := range d.Rewards {
			c.rewards.add(&d.Rewards[k], now)
		}
		c.budgets.add(d.Budget)
		c.codes.add(d)
		c.refused.add(d)
		c.errors.add(d)
	}
	return c
}

// commitReturned is what the statements of one attempt return.
type commitReturned struct {
	inserted []string        // event ids recorded as processed
	older    []string        // event ids processed on an earlier day (see queueOlder)
	written  []string        // user ids inserted or updated
	over     map[string]bool // campaigns the batch takes past a limit
	codes    map[string]assignedCode
	notEmpty map[string]bool // pools a refusal named that still have a code
}

// queue queues every table's statement on b, in this order (the refunds' update after
// the effects' insert, the rewards' insert after the codes' assignment; pools are locked
// before budgets in every transaction), collecting what they return into r.
func (c *commitColumns) queue(b *pgx.Batch, careful bool, r *commitReturned) {
	r.over = map[string]bool{}
	r.codes, r.notEmpty = map[string]assignedCode{}, map[string]bool{}
	c.events.queueOlder(b, &r.older)
	c.events.queue(b, careful, &r.inserted)
	c.created.queueInsert(b, careful, &r.written)
	c.users.queueUpdate(b, &r.written)
	c.tiers.queue(b)
	c.ledger.queue(b)
	c.effects.queue(b, careful)
	c.refunds.queue(b)
	c.codes.queue(b, r.codes, r.notEmpty)
	c.rewards.queue(b, careful, len(c.codes.rewards) > 0)
	c.budgets.queue(b, r.over)
	c.refused.queue(b)
	c.errors.queue(b)
}

// applied reports whether every decision applied: each event was recorded and none was
// processed on an earlier day, each user written, no campaign went over budget, every
// reward that takes a code got one and no refusal named a pool that has codes.
func (c *commitColumns) applied(r *commitReturned) bool {
	return len(r.inserted) == len(c.events.ids) && len(r.older) == 0 && len(r.written) == len(c.users.ids)+len(c.created.ids) && len(r.over) == 0 &&
		len(r.codes) == len(c.codes.rewards) && len(r.notEmpty) == 0
}

// rejected returns the event ids recorded before, today or on an earlier day (dups), and
// the user ids not written (fenced) of an attempt that did not apply, or an error when
// there are neither and no campaign went over budget either: a rolled-back batch is never
// reported as committed.
func (c *commitColumns) rejected(r *commitReturned) (dups, fenced map[string]bool, err error) {
	dups, fenced = missing(r.inserted, c.events.ids), missing(r.written, c.users.ids, c.created.ids)
	for _, id := range r.older {
		dups[id] = true
	}
	pools := len(c.codes.noCode(r.codes)) + len(r.notEmpty)
	if len(dups) == 0 && len(fenced) == 0 && len(r.over) == 0 && pools == 0 {
		return nil, nil, fmt.Errorf("commit batch: rolled back without a duplicate, fenced, over-budget or pool decision (%d of %d events, %d of %d users)",
			len(r.inserted), len(c.events.ids), len(r.written), len(c.users.ids)+len(c.created.ids))
	}
	return dups, fenced, nil
}

// missing returns the ids in wants that got does not hold.
func missing(got []string, wants ...[]string) map[string]bool {
	have := make(map[string]bool, len(got))
	for _, id := range got {
		have[id] = true
	}
	out := map[string]bool{}
	for _, want := range wants {
		for _, id := range want {
			if !have[id] {
				out[id] = true
			}
		}
	}
	return out
}

// isUniqueViolation reports whether err is a unique violation (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// touches reports whether a decision's budget moves a campaign in over.
func touches(b map[string]loyalty.BudgetDelta, over map[string]bool) bool {
	for id, d := range b {
		if over[id] && (d.Rewards > 0 || d.Points > 0) {
			return true
		}
	}
	return false
}

// classify wraps err, marking data errors (SQLSTATE classes 22 and 23) permanent.
func classify(what string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code[:2] == "22" || pe.Code[:2] == "23") {
		return &PermanentError{Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// noSeqScan keeps the hot statements on their indexes. pgx prepares statements and
// Postgres caches a generic plan after a few executions; one made while a table was
// small (a fresh install) is a sequential scan with a filter, and it stays in use while
// the table grows (measured: 1,334 scans reading 9.3M user rows in 28,000 events, ~15 % of
// Postgres's CPU). Inside a transaction only.
const noSeqScan = `SET LOCAL enable_seqscan = off`

// LoadUsers returns the stored state of the users that exist among ids.
func (s *Store) LoadUsers(ctx context.Context, ids []string) (map[string]loyalty.User, error) {
	out := make(map[string]loyalty.User, len(ids))
	b := &pgx.Batch{}
	b.Queue(`BEGIN READ ONLY`)
	b.Queue(noSeqScan)
	b.Queue(`SELECT `+userColumns+` FROM users WHERE user_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			out[u.UserID] = u
		}
		return rows.Err()
	})
	b.Queue(`COMMIT`)
	// One round trip: the statements are pipelined.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	return out, nil
}

// RewardsOfEvent returns the rewards an event granted, for republishing after a
// redelivery.
func (s *Store) RewardsOfEvent(ctx context.Context, eventID string) ([]loyalty.Reward, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, id, user_id, campaign_id, campaign_version, event_id,
		type, points, payload, occurred_at, created_at FROM rewards WHERE event_id = $1 ORDER BY seq`, eventID)
	if err != nil {
		return nil, fmt.Errorf("rewards of event: %w", err)
	}
	rs, err := pgx.CollectRows(rows, scanReward)
	if err != nil {
		return nil, fmt.Errorf("rewards of event: %w", err)
	}
	return rs, nil
}

// ProcessedOutcome returns how an event was last processed ("applied" or "rejected")
// and the reason of a rejection, or ErrNotFound (never processed, or before the dedup
// horizon).
func (s *Store) ProcessedOutcome(ctx context.Context, eventID string) (outcome, reason string, err error) {
	var r *string
	err = s.pool.QueryRow(ctx, `SELECT outcome, reason FROM processed_events WHERE event_id = $1
		ORDER BY day DESC LIMIT 1`, eventID).Scan(&outcome, &r)
	if err != nil {
		return "", "", fmt.Errorf("processed outcome: %w", translate(err))
	}
	if r != nil {
		reason = *r
	}
	return outcome, reason, nil
}
