package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// Campaigns of the crash and outage tests: one point per purchase, and a one-off bonus
// whose per-user limit must hold across crashes.
var (
	pointPerPurchase = map[string]any{
		"id": "point-per-purchase", "name": "1 point per purchase", "status": "active",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "points", "points": 1},
	}
	oneOffBonus = map[string]any{
		"id": "one-off-bonus", "name": "1000 points once", "status": "active", "priority": 10,
		"rule": `event.type == "purchase"`, "limits": map[string]any{"per_user": 1},
		"reward": map[string]any{"type": "points", "points": 1000},
	}
)

const bonusPoints = 1000

// TestKillNineUnderLoadLosesNoEventAndGrantsNoRewardTwice runs campaignd as a child
// process, sends purchases from many users concurrently (each retried until ingress
// answers 2xx) and SIGKILLs the process at random points of the stream several times,
// restarting it on the same data dir, database and ports. At the end every user holds
// exactly one point per purchase plus one bonus: nothing accepted was lost, nothing was
// applied twice, and the per-user limit survived the crashes.
func TestKillNineUnderLoadLosesNoEventAndGrantsNoRewardTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and kills a campaignd process")
	}
	const (
		rounds  = 5
		users   = 24
		perUser = 80
		total   = users * perUser
	)
	bin := buildCampaignd(t)
	natsPort, httpPort := freePort(t), freePort(t)
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR":      "127.0.0.1:" + strconv.Itoa(httpPort),
		"CAMPAIGN_NATS_LISTEN":    "127.0.0.1:" + strconv.Itoa(natsPort),
		"DATABASE_URL":            pgtest.New(t),
		"CAMPAIGN_DATA_DIR":       t.TempDir(),
		"CAMPAIGN_JWT_SECRET":     testSecret,
		"CAMPAIGN_ADMIN_PASSWORD": "admin-password-1",
		"CAMPAIGN_PARTITIONS":     "8",
		"CAMPAIGN_LOG_LEVEL":      "warn",
		"CAMPAIGN_LOG_FORMAT":     "text",
	}
	d := newDaemon(t, bin, vars)
	d.start()

	a := &api{t: t, base: d.base, client: &http.Client{Timeout: 10 * time.Second}}
	a.login("admin", "admin-password-1")
	var key struct{ Key string }
	a.call("POST", "/v1/api-keys", map[string]any{"name": "crash-test"}, http.StatusCreated, &key)
	a.call("POST", "/v1/campaigns", pointPerPurchase, http.StatusCreated, nil)
	a.call("POST", "/v1/campaigns", oneOffBonus, http.StatusCreated, nil)

	// A probe purchase shows the key reached ingress and both campaigns reached the engine.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	var st ingestStats
	require.NoError(t, postUntilStored(ctx, client, d.base, key.Key,
		map[string]any{"id": "probe-1", "user_id": "probe", "type": "purchase", "amount": 1}, &st))
	pollUntil(t, 20*time.Second, "probe purchase rewarded by both campaigns", func() bool {
		u, ok := a.userState("probe")
		return ok && u.Points == 1+bonusPoints
	})

	// Load: one goroutine per user, its events in order, each retried until stored.
	var progress atomic.Int64
	errs := make(chan error, users)
	var wg sync.WaitGroup
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perUser {
				ev := map[string]any{"id": fmt.Sprintf("crash-%d-%d", u, i), "user_id": fmt.Sprintf("crash-user-%d", u),
					"type": "purchase", "amount": 1}
				if err := postUntilStored(ctx, client, d.base, key.Key, ev, &st); err != nil {
					errs <- err
					return
				}
				progress.Add(1)
			}
		}()
	}

	// Crashes at random points of the stream: round r fires once roughly r/(rounds+1) of
	// the events are stored, give or take a random share.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killedAt := make([]int64, 0, rounds)
	slice := int64(total / (rounds + 1))
	for r := 1; r <= rounds; r++ {
		target := int64(r)*slice + rng.Int64N(slice/2) - slice/4
		pollUntil(t, 60*time.Second, fmt.Sprintf("round %d: %d events stored", r, target), func() bool {
			return progress.Load() >= target
		})
		d.kill()
		killedAt = append(killedAt, progress.Load())
		d.start()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("load did not finish: %d of %d events stored", progress.Load(), total)
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("crash test: %d SIGKILL rounds at %v events stored; %d events of %d users; %s",
		rounds, killedAt, total, users, &st)

	// Every stored event is processed ...
	js := connectJS(t, "nats://"+vars["CAMPAIGN_NATS_LISTEN"])
	pollUntil(t, 30*time.Second, "every partition consumer drained", func() bool {
		idle, err := engineIdle(ctx, js)
		return err == nil && idle
	})
	// ... exactly once.
	for u := range users {
		id := fmt.Sprintf("crash-user-%d", u)
		v, ok := a.userState(id)
		require.True(t, ok, id)
		require.Equal(t, int64(perUser+bonusPoints), v.Points, "%s: points", id)
		require.Equal(t, int64(perUser+bonusPoints), v.LifetimePoints, "%s: lifetime points", id)
		require.Equal(t, int64(perUser), v.PurchaseCount, "%s: purchases", id)
		require.Equal(t, map[string]int64{"purchase": perUser}, v.EventCounts, id)
		require.Equal(t, int64(1), v.RewardCounts["one-off-bonus"], "%s: bonus count", id)

		rs := a.userRewards(id)
		require.Len(t, rs, perUser+1, id)
		rewardIDs := map[string]bool{}
		perEvent := map[string]int{}
		bonus := 0
		for _, r := range rs {
			require.False(t, rewardIDs[r.ID], "%s: reward id %s twice", id, r.ID)
			rewardIDs[r.ID] = true
			switch r.CampaignID {
			case "point-per-purchase":
				require.Equal(t, int64(1), r.Points)
				perEvent[r.EventID]++
			case "one-off-bonus":
				bonus++
			default:
				t.Fatalf("%s: reward from unexpected campaign %q", id, r.CampaignID)
			}
		}
		require.Equal(t, 1, bonus, "%s: bonus rewards", id)
		for i := range perUser {
			ev := fmt.Sprintf("crash-%d-%d", u, i)
			require.Equal(t, 1, perEvent[ev], "%s: rewards for event %s", id, ev)
		}
	}
	// Downstream sees each reward once too (the REWARDS stream dedups by reward id).
	wantRewards := uint64(users*(perUser+1) + 2) // + the probe's two
	pollUntil(t, 20*time.Second, "every reward published", func() bool {
		n, err := streamMsgs(ctx, js, bus.RewardsStream)
		require.NoError(t, err)
		require.LessOrEqual(t, n, wantRewards, "a reward was published twice")
		return n == wantRewards
	})
}
