package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/persistence/pgcluster"
)

// startDedicatedPostgres starts a private cluster that the test may stop and start
// again; it returns the cluster and the URL of a fresh database in it.
func startDedicatedPostgres(t *testing.T) (dir string, c *pgcluster.Cluster, dbURL string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "campaign-outage-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755)) // as root the cluster runs as postgres
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err = pgcluster.Start(ctx, pgcluster.Config{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Stop(ctx)
	})
	require.NoError(t, c.CreateDatabase(ctx, "campaign"))
	return dir, c, c.URL("campaign")
}

// TestPostgresOutageMidStreamKeepsAcceptingAndLosesNothing stops Postgres while events
// stream in: ingress keeps storing them in JetStream (202), /readyz reports Postgres down
// (503), and once Postgres is back the engine resumes by itself and every user ends with
// exactly the points its events imply.
func TestPostgresOutageMidStreamKeepsAcceptingAndLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test: stops and restarts a Postgres cluster")
	}
	const (
		users   = 10
		perUser = 30
	)
	pgDir, cluster, dbURL := startDedicatedPostgres(t)
	e := newEnvOn(t, dbURL)
	e.createCampaign(pointPerPurchase)
	e.createCampaign(oneOffBonus)
	l := purchaseLoad{name: "outage", users: users, perUser: perUser}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var st ingestStats
	// send stores events [from, to) of every user concurrently over HTTP.
	send := func(phase string, from, to int) {
		t.Helper()
		err := l.send(ctx, from, to, func(ctx context.Context, ev map[string]any) error {
			return httpIngest.store(ctx, &e.client, ev, &st)
		}, nil)
		require.NoError(t, err, phase)
	}

	send("before the outage", 0, perUser/3)
	stopCtx, stopCancel := context.WithTimeout(ctx, time.Minute)
	require.NoError(t, cluster.Stop(stopCtx))
	stopCancel()
	poll(t, 10*time.Second, "/readyz reports postgres down", func() bool {
		status, body := e.raw("GET", "/readyz", "", nil)
		return status == http.StatusServiceUnavailable && strings.Contains(string(body), "postgres")
	})

	// During the outage every event is still stored: 202, no retries needed.
	acceptedBefore, retriesBefore := st.accepted.Load(), st.retries.Load()
	send("during the outage", perUser/3, 2*perUser/3)
	require.Equal(t, int64(users*(2*perUser/3-perUser/3)), st.accepted.Load()-acceptedBefore,
		"ingress accepts every event with 202 while Postgres is down")
	require.Equal(t, retriesBefore, st.retries.Load(), "no event needed a retry while Postgres is down")
	status, _ := e.raw("GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, status, "still not ready: postgres is down")

	startCtx, startCancel := context.WithTimeout(ctx, time.Minute)
	restarted, err := pgcluster.Start(startCtx, pgcluster.Config{Dir: pgDir})
	startCancel()
	require.NoError(t, err)
	require.Equal(t, dbURL, restarted.URL("campaign"), "postgres came back on another port")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = restarted.Stop(ctx)
	})
	send("after the outage", 2*perUser/3, perUser)
	poll(t, 30*time.Second, "/readyz is ready again", func() bool {
		status, _ := e.raw("GET", "/readyz", "", nil)
		return status == http.StatusOK
	})
	t.Logf("outage test: %d events of %d users; %s", users*perUser, users, &st)

	l.requireExactlyOnce(t, &e.client, time.Minute)
}
