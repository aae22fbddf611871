package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// retention is the engine's default, 8 days of dedup and 90 of refunds, with daily
// partitions (the tests name them by day).
var retention = persistence.Retention{Dedup: 8 * 24 * time.Hour, Refund: 90 * 24 * time.Hour, Span: 1}

// dbToday is Postgres' current UTC date, the day commits write.
func dbToday(t *testing.T, db *pgx.Conn) time.Time {
	t.Helper()
	var d time.Time
	if err := db.QueryRow(t.Context(), `SELECT (now() AT TIME ZONE 'UTC')::date`).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// maintain runs one maintenance pass of r for today.
func maintain(t *testing.T, s *persistence.Store, r persistence.Retention, today time.Time) persistence.PartitionChanges {
	t.Helper()
	r.Today = today
	ch, err := s.MaintainPartitions(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// backdate moves an event's rows in both tables to day (creating the day's partitions
// first, as the maintenance did on that day).
func backdate(t *testing.T, s *persistence.Store, db *pgx.Conn, eventID string, day time.Time) {
	t.Helper()
	maintain(t, s, retention, day)
	for _, table := range []string{persistence.ProcessedEvents, persistence.EventEffects} {
		if _, err := db.Exec(t.Context(), `UPDATE `+table+` SET day = $1 WHERE event_id = $2`, day, eventID); err != nil {
			t.Fatal(err)
		}
	}
}

// partitionsOf lists a table's partitions by name.
func partitionsOf(t *testing.T, db *pgx.Conn, table string) []string {
	t.Helper()
	rows, err := db.Query(t.Context(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func dayName(table string, d time.Time) string { return table + "_p" + d.Format("20060102") }

// rejectedDecision is a refused event of user: no reward, ledger entry or effect, so a
// duplicate of it breaks no other unique key (the commit's fast path must find it).
func rejectedDecision(eventID, user string, version int64) loyalty.Decision {
	d := decision(eventID, user, version, 0)
	d.Rewards, d.Ledger, d.Effect, d.Rejected = nil, nil, nil, "redeem: too much"
	d.User.Points, d.User.LifetimePoints = 0, 0
	return d
}

// TestDuplicateFirstProcessedOnAnEarlierDayIsFound: an event id whose first copy is in
// yesterday's partition (or a week ago, within the horizon) is a Duplicate, in the fast
// path (nothing else of the decision clashes) as in the careful one (its reward's id
// clashes too), next to a fresh decision that commits.
func TestDuplicateFirstProcessedOnAnEarlierDayIsFound(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	today := dbToday(t, db)

	commit(t, s, decision("buy", "ann", 1, 5), rejectedDecision("nope", "bob", 1))
	backdate(t, s, db, "buy", today.AddDate(0, 0, -1))
	backdate(t, s, db, "nope", today.AddDate(0, 0, -7))
	var where string
	if err := db.QueryRow(ctx, `SELECT tableoid::regclass::text FROM processed_events WHERE event_id = 'buy'`).Scan(&where); err != nil {
		t.Fatal(err)
	}
	if want := dayName(persistence.ProcessedEvents, today.AddDate(0, 0, -1)); where != want {
		t.Fatalf("backdated row is in %s, want %s", where, want)
	}

	for _, tc := range []struct {
		name string
		ds   []loyalty.Decision
		want []persistence.Outcome
	}{
		{"fast path, a week ago", []loyalty.Decision{rejectedDecision("nope", "bob", 2), decision("fresh", "cid", 1, 1)},
			[]persistence.Outcome{persistence.Duplicate, persistence.Committed}},
		{"careful path, yesterday", []loyalty.Decision{decision("buy", "ann", 2, 5), decision("fresh2", "dan", 1, 1)},
			[]persistence.Outcome{persistence.Duplicate, persistence.Committed}},
		{"same id for another user", []loyalty.Decision{rejectedDecision("buy", "eve", 1)},
			[]persistence.Outcome{persistence.Duplicate}},
	} {
		if got := commit(t, s, tc.ds...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: outcomes %v, want %v", tc.name, got, tc.want)
		}
	}
	if u, err := s.GetUser(ctx, "ann"); err != nil || u.Version != 1 || u.Points != 5 {
		t.Errorf("ann after her duplicate: %+v, %v; want version 1 with 5 points", u, err)
	}
	if _, err := s.GetUser(ctx, "eve"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("the duplicate created user eve: %v", err)
	}
	if o, r, err := s.ProcessedOutcome(ctx, "nope"); err != nil || o != "rejected" || r != "redeem: too much" {
		t.Errorf("outcome of the week-old event = %q %q %v", o, r, err)
	}
}

// TestDuplicateOlderThanTheHorizonIsAppliedAgain: once the maintenance dropped the day
// an event was processed on (past the dedup horizon), the same id applies again, as
// documented; a refund of it then finds the new application's effect. An effect past
// the refund horizon is gone: GetEventEffect says ErrNotFound, which a refund reports as
// an unknown event.
func TestDuplicateOlderThanTheHorizonIsAppliedAgain(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	today := dbToday(t, db)
	short := persistence.Retention{Dedup: 8 * 24 * time.Hour, Refund: 8 * 24 * time.Hour, Span: 1}

	commit(t, s, decision("old", "ann", 1, 5), decision("kept", "bob", 1, 5))
	backdate(t, s, db, "old", today.AddDate(0, 0, -9))
	backdate(t, s, db, "kept", today.AddDate(0, 0, -8))
	ch := maintain(t, s, short, today)
	want := []string{dayName(persistence.ProcessedEvents, today.AddDate(0, 0, -9)), dayName(persistence.EventEffects, today.AddDate(0, 0, -9))}
	if !slices.Equal(ch.Dropped, want) {
		t.Fatalf("dropped %v, want %v", ch.Dropped, want)
	}
	if _, err := s.GetEventEffect(ctx, "old"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("effect past the refund horizon: %v, want ErrNotFound", err)
	}
	if _, err := s.GetEventEffect(ctx, "kept"); err != nil {
		t.Fatalf("effect within the refund horizon: %v", err)
	}
	if got := commit(t, s, decision("old", "ann", 2, 5), decision("kept", "bob", 2, 5)); !slices.Equal(got, []persistence.Outcome{persistence.Committed, persistence.Duplicate}) {
		t.Fatalf("outcomes %v, want [Committed Duplicate]: past the horizon applied again, within it a duplicate", got)
	}
	if u, err := s.GetUser(ctx, "ann"); err != nil || u.Version != 2 || u.Points != 10 {
		t.Fatalf("ann: %+v, %v; want version 2 with 10 points", u, err)
	}
	e, err := s.GetEventEffect(ctx, "old")
	if err != nil || e.Points != 5 {
		t.Fatalf("effect of the new application: %+v, %v", e, err)
	}
}

// TestPartitionMaintenanceCreatesAheadAndDropsExpired: a pass creates today's and the
// next days' partitions of both tables (idempotently), drops those past each table's
// own horizon, and moves rows that landed in the DEFAULT partition into the day's new
// partition.
func TestPartitionMaintenanceCreatesAheadAndDropsExpired(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	today := dbToday(t, db)
	r := persistence.Retention{Dedup: 8 * 24 * time.Hour, Refund: 10 * 24 * time.Hour, Ahead: 3, Span: 1}

	want := func(table string, from, to int) []string {
		names := []string{table + "_default"} // sorts first
		for i := from; i <= to; i++ {
			names = append(names, dayName(table, today.AddDate(0, 0, i)))
		}
		return names
	}
	if got := partitionsOf(t, db, persistence.ProcessedEvents); !slices.Equal(got, want(persistence.ProcessedEvents, 0, 2)) {
		t.Fatalf("after the migration: %v", got)
	}
	if ch := maintain(t, s, r, time.Time{}); len(ch.Created) != 2 || len(ch.Dropped) != 0 {
		t.Fatalf("first pass (Postgres' date): %+v, want the 3rd day ahead of both tables", ch)
	}
	if ch := maintain(t, s, r, time.Time{}); len(ch.Created)+len(ch.Dropped) != 0 {
		t.Fatalf("second pass changed %+v", ch)
	}
	for i := 4; i <= 12; i++ { // the maintenance of the days to come
		maintain(t, s, r, today.AddDate(0, 0, i))
	}
	if got := partitionsOf(t, db, persistence.ProcessedEvents); !slices.Equal(got, want(persistence.ProcessedEvents, 4, 15)) {
		t.Errorf("processed_events 12 days on: %v", got)
	}
	if got := partitionsOf(t, db, persistence.EventEffects); !slices.Equal(got, want(persistence.EventEffects, 2, 15)) {
		t.Errorf("event_effects 12 days on: %v", got)
	}

	// A row of a day without a partition (the maintenance was down) lands in DEFAULT;
	// the day's partition takes it when it is created, and dedup finds it throughout.
	late := today.AddDate(0, 0, 30)
	if _, err := db.Exec(ctx, `INSERT INTO processed_events (event_id, user_id, stream_seq, event_type, day) VALUES ('late', 'ann', 1, 'purchase', $1)`, late); err != nil {
		t.Fatal(err)
	}
	ch := maintain(t, s, r, late)
	if ch.Moved != 1 {
		t.Fatalf("moved %d rows out of DEFAULT, want 1", ch.Moved)
	}
	var where string
	if err := db.QueryRow(ctx, `SELECT tableoid::regclass::text FROM processed_events WHERE event_id = 'late'`).Scan(&where); err != nil {
		t.Fatal(err)
	}
	if where != dayName(persistence.ProcessedEvents, late) {
		t.Fatalf("the late row is in %s", where)
	}
}

// TestConcurrentMaintainersDoNotFail: replicas running the same pass at once all
// succeed, and each partition is created and dropped once between them.
func TestConcurrentMaintainersDoNotFail(t *testing.T) {
	t.Parallel()
	_, db := openStoreDB(t)
	today := dbToday(t, db)
	url := db.Config().ConnString()
	const replicas = 4
	var wg sync.WaitGroup
	changes := make([]persistence.PartitionChanges, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		// Each replica has a Store of its own, as separate processes would.
		other, err := persistence.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(other.Close)
		wg.Go(func() {
			r := retention
			r.Today = today.AddDate(0, 0, 20)
			changes[i], errs[i] = other.MaintainPartitions(context.Background(), r)
		})
	}
	wg.Wait()
	var created, dropped []string
	for i := range replicas {
		if errs[i] != nil {
			t.Errorf("replica %d: %v", i, errs[i])
		}
		created, dropped = append(created, changes[i].Created...), append(dropped, changes[i].Dropped...)
	}
	slices.Sort(created)
	slices.Sort(dropped)
	if len(created) != 6 || len(slices.Compact(slices.Clone(created))) != 6 {
		t.Errorf("created %v, want 3 days of 2 tables, once each", created)
	}
	if len(dropped) != 3 || len(slices.Compact(slices.Clone(dropped))) != 3 {
		t.Errorf("dropped %v, want the migration's 3 days of processed_events, once each", dropped)
	}
}

// TestMigration010KeepsExistingRowsAndTheirDedup: an existing deployment upgrades in
// place: its processed events stay duplicates and its effects refundable, in the legacy
// partition that the maintenance drops once the horizon has passed; the down migration
// gives back plain tables with every row.
func TestMigration010KeepsExistingRowsAndTheirDedup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.New(t)
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, db, "schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(os.DirFS("migrations")); err != nil {
		t.Fatal(err)
	}
	if err := m.MigrateTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Exec(ctx, `INSERT INTO processed_events (event_id, user_id, stream_seq, event_type, processed_at)
			VALUES ($1, 'ann', $2, 'purchase', now() - interval '3 days')`, fmt.Sprint("pre", i), i+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO event_effects (event_id, user_id, event_type, amount, points, occurred_at)
		VALUES ('pre0', 'ann', 'purchase', 20, 2, now())`); err != nil {
		t.Fatal(err)
	}

	s, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	today := dbToday(t, db)
	if got := partitionsOf(t, db, persistence.ProcessedEvents); !slices.Contains(got, "processed_events_legacy") {
		t.Fatalf("partitions after the upgrade: %v", got)
	}
	if got := commit(t, s, decision("pre1", "ann", 1, 5), decision("new", "bob", 1, 5)); !slices.Equal(got, []persistence.Outcome{persistence.Duplicate, persistence.Committed}) {
		t.Fatalf("outcomes %v: an event processed before the upgrade must stay a duplicate", got)
	}
	if e, err := s.GetEventEffect(ctx, "pre0"); err != nil || e.Amount != 20 {
		t.Fatalf("effect from before the upgrade: %+v, %v", e, err)
	}
	if ch := maintain(t, s, retention, today.AddDate(0, 0, 8)); slices.Contains(ch.Dropped, "processed_events_legacy") {
		t.Fatalf("the legacy partition went before the horizon passed over its rows: %v", ch.Dropped)
	}
	if ch := maintain(t, s, retention, today.AddDate(0, 0, 9)); !slices.Contains(ch.Dropped, "processed_events_legacy") {
		t.Fatalf("the legacy partition stays past the horizon: %v", ch.Dropped)
	}
	if _, err := s.GetEventEffect(ctx, "pre0"); err != nil {
		t.Fatalf("the refund horizon keeps the legacy effects longer: %v", err)
	}

	if err := m.MigrateTo(ctx, 9); err != nil {
		t.Fatalf("down migration: %v", err)
	}
	for _, tc := range []struct {
		table string
		rows  int
	}{{persistence.ProcessedEvents, 0}, {persistence.EventEffects, 2}} { // the legacy partition (which took "new") is gone; "pre0" and "new"
		var kind string
		var n int
		if err := db.QueryRow(ctx, `SELECT relkind::text, (SELECT count(*) FROM `+tc.table+`) FROM pg_class WHERE oid = $1::regclass`, tc.table).Scan(&kind, &n); err != nil {
			t.Fatal(err)
		}
		if kind != "r" || n != tc.rows {
			t.Errorf("%s after the down migration: relkind %s with %d rows, want a plain table with %d", tc.table, kind, n, tc.rows)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO event_effects (event_id, user_id, event_type, occurred_at) VALUES ('new', 'x', 'purchase', now())`); err == nil {
		t.Error("after the down migration, event_id alone is not the key")
	}
	if err := m.MigrateTo(ctx, 10); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

// TestWeeklyPartitionsFollowTheDailyOnesAndKeepDedup: partitions of several days end
// where the ones after begin (the migration's daily ones), are aligned on whole spans
// otherwise, leave no day uncovered, and a duplicate from an earlier day of a weekly
// partition is found.
func TestWeeklyPartitionsFollowTheDailyOnesAndKeepDedup(t *testing.T) {
	t.Parallel()
	s, db := openStoreDB(t)
	ctx := t.Context()
	today := dbToday(t, db)
	r := persistence.Retention{Dedup: 8 * 24 * time.Hour, Refund: 90 * 24 * time.Hour, Ahead: 30}
	maintain(t, s, r, today.AddDate(0, 0, -14)) // as if the maintenance ran 2 weeks ago
	var gaps, overlaps, unaligned int
	err := db.QueryRow(ctx, `WITH b AS (
			SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \(''([0-9-]+)''\)')::date AS f,
				substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([0-9-]+)''\)')::date AS t
			FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'processed_events'::regclass AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'),
		o AS (SELECT f, t, lead(f) OVER (ORDER BY f) AS next FROM b)
		SELECT count(*) FILTER (WHERE next > t), count(*) FILTER (WHERE next < t),
			count(*) FILTER (WHERE f NOT BETWEEN $1::date AND $1::date + 3 AND (f - date '1970-01-01') % 7 <> 0)
		FROM o`, today).Scan(&gaps, &overlaps, &unaligned)
	if err != nil {
		t.Fatal(err)
	}
	if gaps+overlaps+unaligned != 0 {
		t.Fatalf("partitions: %d gaps, %d overlaps, %d unaligned: %v", gaps, overlaps, unaligned, partitionsOf(t, db, persistence.ProcessedEvents))
	}
	commit(t, s, rejectedDecision("a", "ann", 1), rejectedDecision("b", "bob", 1))
	for id, d := range map[string]int{"a": -10, "b": -3} {
		if _, err := db.Exec(ctx, `UPDATE processed_events SET day = $1 WHERE event_id = $2`, today.AddDate(0, 0, d), id); err != nil {
			t.Fatal(err)
		}
		var where string
		if err := db.QueryRow(ctx, `SELECT tableoid::regclass::text FROM processed_events WHERE event_id = $1`, id).Scan(&where); err != nil || where == "processed_events_default" {
			t.Fatalf("row %s is in %s (%v)", id, where, err)
		}
	}
	if got := commit(t, s, rejectedDecision("a", "ann", 2), rejectedDecision("b", "bob", 2)); !slices.Equal(got, []persistence.Outcome{persistence.Duplicate, persistence.Duplicate}) {
		t.Fatalf("outcomes %v, want both duplicates", got)
	}
}
