package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestHorizonsAreCheckedAtStart: a dedup horizon not longer than EVENTS' 7-day history,
// or a refund horizon shorter than it, is refused at start on a line naming its
// variable, and campaignd exits with status 2; the defaults are 8 and 90 days.
func TestHorizonsAreCheckedAtStart(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"dedup horizon as long as EVENTS' max age", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "168h"},
			"CAMPAIGN_DEDUP_HORIZON: must be longer than EVENTS' max age 168h0m0s"},
		{"dedup horizon of a day", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "24h"}, "CAMPAIGN_DEDUP_HORIZON: must be longer than EVENTS' max age"},
		{"dedup horizon not a duration", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "8 days"}, "CAMPAIGN_DEDUP_HORIZON: must be a positive duration"},
		{"refund horizon shorter than the dedup one", map[string]string{"CAMPAIGN_DEDUP_HORIZON": "240h", "CAMPAIGN_REFUND_HORIZON": "200h"},
			"CAMPAIGN_REFUND_HORIZON: must be at least CAMPAIGN_DEDUP_HORIZON (240h0m0s), got 200h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), nil, func(k string) string { return tc.vars[k] }, io.Discard, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
		})
	}
	cfg, err := loadConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 8*24*time.Hour, cfg.DedupHorizon)
	require.Equal(t, 90*24*time.Hour, cfg.RefundHorizon)
	cfg, err = loadConfig([]string{"-dedup-horizon", "169h", "-refund-horizon", "169h"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err, "a horizon just over EVENTS' max age, refunds as long")
	require.Equal(t, 169*time.Hour, cfg.RefundHorizon)
}

// TestEngineMaintainsTheHistoryPartitionsFromStart: the engine's partition maintenance
// runs a pass when it starts (counted by its metrics, without an error), so today's and
// the next two days' partitions of both history tables exist and commits land in them.
func TestEngineMaintainsTheHistoryPartitionsFromStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	poll(t, patience, "a partition maintenance pass", func() bool {
		return e.metricValue(`campaign_partition_maintenance_last_success_timestamp_seconds`) > 0
	})
	require.Zero(t, e.metricValue(`campaign_partition_maintenance_errors_total`))
	e.postEvent(map[string]any{"id": "h-1", "user_id": "horizon-user", "type": "purchase", "amount": 10}, http.StatusAccepted)
	e.waitUser("horizon-user", 1)

	db, err := pgx.Connect(t.Context(), e.dbURL)
	require.NoError(t, err)
	defer db.Close(context.Background())
	var where string
	require.NoError(t, db.QueryRow(t.Context(), `SELECT tableoid::regclass::text FROM processed_events WHERE event_id = 'h-1'`).Scan(&where))
	require.NotEqual(t, "processed_events_default", where, "the commit found no partition for today")
	tx, err := db.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck // a probe, never committed
	for _, table := range []string{"processed_events", "event_effects"} {
		for d := range 3 {
			cols, vals := "(event_id, user_id, stream_seq, event_type, day)", "($1, 'probe', 1, 'probe', (now() AT TIME ZONE 'UTC')::date + $2::int)"
			if table == "event_effects" {
				cols, vals = "(event_id, user_id, event_type, occurred_at, day)", "($1, 'probe', 'probe', now(), (now() AT TIME ZONE 'UTC')::date + $2::int)"
			}
			require.NoError(t, tx.QueryRow(t.Context(), `INSERT INTO `+table+` `+cols+` VALUES `+vals+` RETURNING tableoid::regclass::text`,
				fmt.Sprint("probe-", d), d).Scan(&where))
			require.NotEqual(t, table+"_default", where, "%s has no partition %d days ahead", table, d)
		}
	}
}

// TestAnEventProcessedOnAnEarlierDayIsADuplicateEndToEnd: an event id processed three
// days ago (in an earlier day's history) and sent again through HTTP, NATS and the engine
// is not applied again; the user's next event is.
func TestAnEventProcessedOnAnEarlierDayIsADuplicateEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createCampaign(tenPercent)
	db, err := pgx.Connect(t.Context(), e.dbURL)
	require.NoError(t, err)
	defer db.Close(context.Background())
	_, err = db.Exec(t.Context(), `INSERT INTO processed_events (event_id, user_id, stream_seq, event_type, outcome, day)
		VALUES ('cross-day-1', 'cross-day', 1, 'purchase', 'applied', (now() AT TIME ZONE 'UTC')::date - 3)`)
	require.NoError(t, err)

	e.postEvent(map[string]any{"id": "cross-day-1", "user_id": "cross-day", "type": "purchase", "amount": 100}, http.StatusAccepted)
	e.postEvent(map[string]any{"id": "cross-day-2", "user_id": "cross-day", "type": "purchase", "amount": 200}, http.StatusAccepted)
	u := e.waitUser("cross-day", 1)
	require.Equal(t, int64(20), u.Points, "only the new event's 10 percent of 200: the resend of an event processed days ago is a duplicate")
	require.Equal(t, int64(1), u.PurchaseCount)
}
