package persistence_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// prefillEnv opts into BenchmarkCommitPrefilled: the processed_events rows to pre-fill
// (make test never sets it); spanEnv optionally sets the partitions' span in days (the
// engine's 7 when unset).
const (
	prefillEnv = "CAMPAIGN_BENCH_PREFILL"
	spanEnv    = "CAMPAIGN_BENCH_SPAN"
)

// BenchmarkCommitPrefilled times CommitBatch on a store whose processed_events holds
// $CAMPAIGN_BENCH_PREFILL rows, spread evenly over the 9 days of the default 8-day dedup
// horizon (the 8 days before today, which every commit's duplicate lookup probes, and
// today, which it inserts into) in the engine's weekly partitions, against an empty store
// with the same partitions, in the same run:
// each iteration commits one batch of 500 next events of known users (random 32-hex
// event ids, a reward, a ledger entry and an effect each) to either store in turn, so
// both see the same machine. It reports each store's time per batch and full/empty, the
// pre-filled store's throughput as a fraction of the empty one's (the goal: at least 0.9).
// Run (the fill takes minutes; the disk needs ~20 GB for 100M rows):
//
//	CAMPAIGN_BENCH_PREFILL=100000000 go test ./persistence -run '^$' -bench CommitPrefilled -benchtime 400x -timeout 3h
func BenchmarkCommitPrefilled(b *testing.B) {
	rows, _ := strconv.ParseInt(os.Getenv(prefillEnv), 10, 64)
	if rows <= 0 {
		b.Skip("set " + prefillEnv + " to the rows to pre-fill (e.g. 10000000)")
	}
	ctx := context.Background()
	empty, edb := openStoreDB(b)
	prefill(b, empty, edb, 0) // the same partitions, empty
	full, db := openStoreDB(b)
	start := time.Now()
	prefill(b, full, db, rows)
	b.Logf("pre-filled %d rows in %s", rows, time.Since(start).Round(time.Second))

	const size = 500
	stores := []*persistence.Store{empty, full}
	batches := [2][]loyalty.Decision{}
	var spent [2]time.Duration
	rounds := 0
	commitRound := func(round int64, timed bool) {
		for k, s := range stores {
			batches[k] = nextBatch(batches[k], size, round)
			t0 := time.Now()
			outs, err := s.CommitBatch(ctx, batches[k], nil)
			if err != nil {
				b.Fatal(err)
			}
			if outs[0] != persistence.Committed {
				b.Fatalf("outcome %v", outs[0])
			}
			if timed {
				spent[k] += time.Since(t0)
			}
		}
	}
	commitRound(1, false) // creates the users
	for b.Loop() {        // b.Loop: the function runs once, so the fill is done once
		rounds++
		commitRound(int64(rounds)+1, true)
	}
	n := float64(rounds)
	b.ReportMetric(float64(spent[0].Microseconds())/n, "empty-µs/batch")
	b.ReportMetric(float64(spent[1].Microseconds())/n, "full-µs/batch")
	b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "full/empty")
}

// nextBatch returns the next events of users u0..u<size-1> (round: their version), each
// with a random event id.
func nextBatch(prev []loyalty.Decision, size int, round int64) []loyalty.Decision {
	out := make([]loyalty.Decision, size)
	id := make([]byte, 16)
	for i := range out {
		_, _ = rand.Read(id)
		d := decision(hex.EncodeToString(id), fmt.Sprintf("u%d", i), round, 5)
		if prev != nil {
			d.User.FirstSeen = prev[i].User.FirstSeen
		}
		out[i] = d
	}
	return out
}

// prefill gives the store the engine's weekly partitions (Span 7, or $CAMPAIGN_BENCH_SPAN) over the 8 days
// before today and today (the migration's daily ones are dropped first), then fills
// those 9 days evenly with rows of random-looking event ids (md5), each partition's rows
// inserted in key order (as fast as a bulk load gets through SQL; none when rows is 0),
// and analyzes the table.
func prefill(b *testing.B, s *persistence.Store, db *pgx.Conn, rows int64) {
	b.Helper()
	ctx := context.Background()
	var today time.Time
	if err := db.QueryRow(ctx, `SELECT (now() AT TIME ZONE 'UTC')::date`).Scan(&today); err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Exec(ctx, `DROP TABLE `+pgx.Identifier{"processed_events_p" + today.AddDate(0, 0, i).Format("20060102")}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	first := today.AddDate(0, 0, -8)
	span, _ := strconv.Atoi(os.Getenv(spanEnv))
	r := persistence.Retention{Dedup: 8 * 24 * time.Hour, Refund: 90 * 24 * time.Hour, Ahead: 10, Today: first, Span: span}
	if _, err := s.MaintainPartitions(ctx, r); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{`SET work_mem = '1GB'`, `SET maintenance_work_mem = '1GB'`, `SET synchronous_commit = off`} {
		if _, err := db.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	per := rows / 9
	parts, err := db.Query(ctx, `SELECT c.relname,
			substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([0-9-]+)''\)')::date,
			substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([0-9-]+)''\)')::date
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'processed_events'::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'`)
	if err != nil {
		b.Fatal(err)
	}
	type bounds struct {
		Name     string
		From, To time.Time
	}
	spans, err := pgx.CollectRows(parts, pgx.RowToStructByPos[bounds])
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range spans {
		from, to := later(p.From, first), earlier(p.To, today.AddDate(0, 0, 1))
		days := int(to.Sub(from) / (24 * time.Hour))
		if days <= 0 || per == 0 {
			continue
		}
		t0 := time.Now()
		_, err := db.Exec(ctx, `INSERT INTO `+pgx.Identifier{p.Name}.Sanitize()+`
			(event_id, user_id, stream_seq, event_type, outcome, processed_at, day)
			SELECT md5(g::text || $2), 'u' || (g % 1000000), g, 'purchase', 'applied',
				$1::date + (g % $3::int)::int + interval '12 hours', $1::date + (g % $3::int)::int
			FROM generate_series(1, $4::bigint) g ORDER BY 1`, from.Format(time.DateOnly), ":"+p.Name, days, per*int64(days))
		if err != nil {
			b.Fatalf("prefill %s: %v", p.Name, err)
		}
		b.Logf("%s: %d days, %d rows in %s", p.Name, days, per*int64(days), time.Since(t0).Round(time.Second))
	}
	if _, err := db.Exec(ctx, `VACUUM ANALYZE processed_events`); err != nil {
		b.Fatal(err)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
