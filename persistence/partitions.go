package persistence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The tables partitioned by day (migration 010): processed_events, which dedup reads,
// and event_effects, which refunds read.
const (
	ProcessedEvents = "processed_events"
	EventEffects    = "event_effects"
)

// Retention is how long the day-partitioned tables keep their rows (see
// MaintainPartitions).
type Retention struct {
	// Dedup is how long processed_events keeps the record that an event was processed,
	// the horizon within which a duplicate event id is found (at least a day).
	Dedup time.Duration
	// Refund is how long event_effects keeps what an event did, the horizon within which
	// it can be refunded (at least Dedup).
	Refund time.Duration
	// Ahead is how many days after today get their partitions ahead of time (0: 2).
	Ahead int
	// Span is the days a new partition covers (0: 7), aligned on whole spans since
	// 1970-01-01 and clipped to the partitions there are. Each commit looks its events up
	// in every partition holding days before today: daily partitions keep the least (a
	// day's rows go a day after the horizon) but cost one index probe per event and day
	// kept; weekly ones keep up to a span more and cost two probes, one of them on the
	// pages the insert reads next (measured with 900k rows: 0.64–0.75 of an empty table's
	// commit throughput daily, 0.87 weekly; see bench/README.md).
	Span int
	// Today is the UTC day to maintain for; zero means Postgres' current date (the date
	// commits use). Tests set it.
	Today time.Time
}

// Validate reports what is wrong with r.
func (r Retention) Validate() error {
	var errs []error
	if r.Dedup < 24*time.Hour {
		errs = append(errs, fmt.Errorf("dedup horizon %s: must be at least 24h", r.Dedup))
	}
	if r.Refund < r.Dedup {
		errs = append(errs, fmt.Errorf("refund horizon %s: must be at least the dedup horizon %s", r.Refund, r.Dedup))
	}
	if r.Ahead < 0 {
		errs = append(errs, fmt.Errorf("days ahead %d: must not be negative", r.Ahead))
	}
	if r.Span < 0 {
		errs = append(errs, fmt.Errorf("partition span %d days: must not be negative", r.Span))
	}
	return errors.Join(errs...)
}

// horizonDays is d in whole days, rounded up: a day's partition is kept until its last
// row is at least d old.
func horizonDays(d time.Duration) int {
	const day = 24 * time.Hour
	return int((d + day - 1) / day)
}

// PartitionChanges are the partitions one MaintainPartitions pass created and dropped
// (table names), and the rows it moved out of a DEFAULT partition.
type PartitionChanges struct {
	Created, Dropped []string
	Moved            int64
}

// partitionLock is the advisory lock key that serialises the maintenance steps of every
// replica (hashtext of a fixed name, so it does not clash with other users' keys by
// chance).
const partitionLock = `SELECT pg_advisory_xact_lock(hashtext('campaignmanager partition maintenance'))`

// ddlLockTimeout bounds the wait of a step for its table locks: a DROP takes an ACCESS
// EXCLUSIVE lock on the parent, and while it waits, commits queue behind it. A step that
// times out is tried again at the next pass.
const ddlLockTimeout = `SET LOCAL lock_timeout = '2s'`

// MaintainPartitions creates the partitions of processed_events and event_effects for
// today and r.Ahead days after (moving any row of those days out of the DEFAULT
// partition), and drops the partitions whose days are all older than the table's horizon
// (processed_events: r.Dedup, event_effects: r.Refund, in whole days rounded up), deleting
// such rows from the DEFAULT partition too. Each step is its own short transaction under
// one advisory lock and checks the catalog under it, so several replicas running it at
// once each do a part and none fails. It blocks until done or ctx ends; on error some
// steps may have been done (a later pass goes on from there).
func (s *Store) MaintainPartitions(ctx context.Context, r Retention) (PartitionChanges, error) {
	var ch PartitionChanges
	if err := r.Validate(); err != nil {
		return ch, fmt.Errorf("maintain partitions: %w", err)
	}
	if r.Ahead == 0 {
		r.Ahead = 2
	}
	if r.Span == 0 {
		r.Span = 7
	}
	today := r.Today.UTC().Truncate(24 * time.Hour)
	if r.Today.IsZero() {
		if err := s.pool.QueryRow(ctx, `SELECT (now() AT TIME ZONE 'UTC')::date`).Scan(&today); err != nil {
			return ch, fmt.Errorf("maintain partitions: today: %w", err)
		}
	}
	for _, t := range []struct {
		table   string
		horizon time.Duration
	}{{ProcessedEvents, r.Dedup}, {EventEffects, r.Refund}} {
		for i := 0; i <= r.Ahead; i++ {
			day := today.AddDate(0, 0, i)
			name, moved, err := s.createPartition(ctx, t.table, day, r.Span)
			if err != nil {
				return ch, fmt.Errorf("maintain partitions: create %s for %s: %w", t.table, day.Format(time.DateOnly), err)
			}
			if name != "" {
				ch.Created = append(ch.Created, name)
			}
			ch.Moved += moved
		}
		cutoff := today.AddDate(0, 0, -horizonDays(t.horizon))
		dropped, err := s.dropPartitions(ctx, t.table, cutoff)
		ch.Dropped = append(ch.Dropped, dropped...)
		if err != nil {
			return ch, fmt.Errorf("maintain partitions: drop %s before %s: %w", t.table, cutoff.Format(time.DateOnly), err)
		}
	}
	return ch, nil
}

// partition is one partition of a day-partitioned table: its range of days [from, to)
// (a zero from is MINVALUE), or the DEFAULT one.
type partition struct {
	name     string
	from, to time.Time
	isDef    bool
}

// boundRE reads a partition's bound as pg_get_expr shows it under DateStyle ISO:
// FOR VALUES FROM ('2026-12-01') TO ('2026-12-02'), FROM (MINVALUE) …, or DEFAULT.
var boundRE = regexp.MustCompile(`^FOR VALUES FROM \((MINVALUE|'(\d{4}-\d{2}-\d{2})')\) TO \('(\d{4}-\d{2}-\d{2})'\)$`)

// partitions lists table's partitions, in a transaction that set DateStyle ISO.
func partitions(ctx context.Context, tx pgx.Tx, table string) ([]partition, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass`, table)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	var out []partition
	for rows.Next() {
		var name, bound string
		if err := rows.Scan(&name, &bound); err != nil {
			return nil, fmt.Errorf("list partitions: %w", err)
		}
		if bound == "DEFAULT" {
			out = append(out, partition{name: name, isDef: true})
			continue
		}
		m := boundRE.FindStringSubmatch(bound)
		if m == nil {
			return nil, fmt.Errorf("partition %s: unexpected bound %q", name, bound)
		}
		p := partition{name: name}
		if m[2] != "" {
			p.from, _ = time.Parse(time.DateOnly, m[2])
		}
		p.to, _ = time.Parse(time.DateOnly, m[3])
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return out, nil
}

// beginStep begins one maintenance step: a transaction holding the advisory lock, with
// the DDL lock timeout and ISO dates.
func (s *Store) beginStep(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	for _, q := range []string{partitionLock, ddlLockTimeout, `SET LOCAL DateStyle = 'ISO'`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return tx, nil
}

// createPartition creates table's partition for day unless one covers it, and returns
// its name ("" when there was one) and how many rows of its days it moved out of the
// DEFAULT partition. The partition covers the span of days holding day (see
// Retention.Span), less the days other partitions cover. The new table is made apart and attached (ATTACH takes a SHARE UPDATE
// EXCLUSIVE lock on the parent, which commits do not wait for, where CREATE TABLE …
// PARTITION OF takes an ACCESS EXCLUSIVE one); the DEFAULT partition is locked first, so
// no commit adds a row of day to it between the move and the attach.
func (s *Store) createPartition(ctx context.Context, table string, day time.Time, span int) (string, int64, error) {
	tx, err := s.beginStep(ctx)
	if err != nil {
		return "", 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	parts, err := partitions(ctx, tx, table)
	if err != nil {
		return "", 0, err
	}
	def, start, end, covered := spanOf(parts, day, span)
	if covered {
		return "", 0, nil
	}
	name := table + "_p" + start.Format("20060102")
	id, from, to := pgx.Identifier{name}.Sanitize(), start.Format(time.DateOnly), end.Format(time.DateOnly)
	if _, err := tx.Exec(ctx, `CREATE TABLE `+id+` (LIKE `+pgx.Identifier{table}.Sanitize()+` INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`); err != nil {
		return "", 0, fmt.Errorf("create %s: %w", name, err)
	}
	var moved int64
	if def != "" {
		d := pgx.Identifier{def}.Sanitize()
		if _, err := tx.Exec(ctx, `LOCK TABLE `+d+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			return "", 0, fmt.Errorf("lock %s: %w", def, err)
		}
		tag, err := tx.Exec(ctx, `WITH m AS (DELETE FROM `+d+` WHERE day >= $1::date AND day < $2::date RETURNING *)
			INSERT INTO `+id+` SELECT * FROM m`, from, to)
		if err != nil {
			return "", 0, fmt.Errorf("move rows of %s out of %s: %w", from, def, err)
		}
		moved = tag.RowsAffected()
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{table}.Sanitize()+` ATTACH PARTITION `+id+
		` FOR VALUES FROM ('`+from+`') TO ('`+to+`')`); err != nil {
		return "", 0, fmt.Errorf("attach %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", 0, fmt.Errorf("commit: %w", err)
	}
	return name, moved, nil
}

// spanOf returns the DEFAULT partition's name among parts, and the days [start, end) of
// the new partition for day: the span of days holding day, clipped to the partitions
// before and after it; covered when a partition holds day already.
func spanOf(parts []partition, day time.Time, span int) (def string, start, end time.Time, covered bool) {
	const dayLen = 24 * time.Hour
	n := int(day.Sub(time.Unix(0, 0).UTC()) / dayLen)
	start = time.Unix(0, 0).UTC().AddDate(0, 0, n-n%span)
	end = start.AddDate(0, 0, span)
	for _, p := range parts {
		switch {
		case p.isDef:
			def = p.name
		case !day.Before(p.from) && day.Before(p.to):
			return def, start, end, true
		case !p.to.After(day) && p.to.After(start):
			start = p.to
		case p.from.After(day) && p.from.Before(end):
			end = p.from
		}
	}
	return def, start, end, false
}

// dropPartitions drops table's partitions whose days all lie before cutoff, one step
// each, and deletes the DEFAULT partition's rows before cutoff. It returns the names
// dropped.
func (s *Store) dropPartitions(ctx context.Context, table string, cutoff time.Time) ([]string, error) {
	var dropped []string
	for {
		tx, err := s.beginStep(ctx)
		if err != nil {
			return dropped, err
		}
		parts, err := partitions(ctx, tx, table)
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return dropped, err
		}
		i := slices.IndexFunc(parts, func(p partition) bool { return !p.isDef && !p.to.After(cutoff) })
		var q string
		var args []any
		switch j := slices.IndexFunc(parts, func(p partition) bool { return p.isDef }); {
		case i >= 0:
			q = `DROP TABLE ` + pgx.Identifier{parts[i].name}.Sanitize()
		case j >= 0:
			q, args = `DELETE FROM `+pgx.Identifier{parts[j].name}.Sanitize()+` WHERE day < $1::date`, []any{cutoff.Format(time.DateOnly)}
		}
		if q != "" {
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				_ = tx.Rollback(context.WithoutCancel(ctx))
				return dropped, err
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return dropped, fmt.Errorf("commit: %w", err)
		}
		if i < 0 {
			return dropped, nil
		}
		dropped = append(dropped, parts[i].name)
	}
}
