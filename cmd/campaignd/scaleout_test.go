package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// Scale-out tests: several campaignd replicas (child processes, mode all) against one
// 3-node NATS cluster (embedded servers with routes on 127.0.0.1, streams with 3
// replicas) and one Postgres. The guarantees: every accepted event applied exactly once
// and in each user's order whatever dies, freezes or restarts; each partition consumed by
// one replica at a time.

const (
	fleetPartitions = 16
	fleetLanes      = 8
)

// fleet is the replicas of one test.
type fleet struct {
	t     *testing.T
	nats  *bustest.Cluster
	dbURL string
	bin   string
	next  atomic.Int64

	mu       sync.Mutex // guards the slices and up, which the load's goroutines read
	replicas []*daemon
	clients  []*client
	up       []bool // running and not frozen
}

// newFleet starts the NATS cluster, a database and n replicas, one after the other, and
// logs a client in to each (sharing one storefront key).
func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{t: t, nats: bustest.StartCluster(t, 3), dbURL: pgtest.New(t), bin: buildCampaignd(t)}
	for range n {
		f.add()
	}
	return f
}

// add starts one more replica and returns its index.
func (f *fleet) add() int {
	f.t.Helper()
	i := len(f.replicas)
	vars := map[string]string{
		"CAMPAIGN_MODE":             "all",
		"CAMPAIGN_HTTP_ADDR":        "127.0.0.1:" + strconv.Itoa(freePort(f.t)),
		"NATS_URL":                  f.nats.URLs(),
		"DATABASE_URL":              f.dbURL,
		"CAMPAIGN_DATA_DIR":         f.t.TempDir(),
		"CAMPAIGN_JWT_SECRET":       testSecret,
		"CAMPAIGN_ADMIN_PASSWORD":   adminPassword,
		"CAMPAIGN_STREAM_REPLICAS":  "3",
		"CAMPAIGN_PARTITIONS":       strconv.Itoa(fleetPartitions),
		"CAMPAIGN_CONSUMERS":        strconv.Itoa(fleetLanes),
		"CAMPAIGN_SHUTDOWN_TIMEOUT": "20s",
		"CAMPAIGN_LOG_FORMAT":       "text",
	}
	d := newDaemon(f.t, f.bin, vars)
	d.start()
	c := newClient(f.t, d.base, f.nats.URLs())
	c.token = c.login("admin", adminPassword)
	if i == 0 {
		c.newAPIKey("storefront")
	} else {
		c.apiKey = f.clients[0].apiKey
	}
	f.mu.Lock()
	f.replicas = append(f.replicas, d)
	f.clients = append(f.clients, c)
	f.up = append(f.up, true)
	f.mu.Unlock()
	return i
}

// setUp records whether replica i takes requests (running and not frozen).
func (f *fleet) setUp(i int, up bool) {
	f.mu.Lock()
	f.up[i] = up
	f.mu.Unlock()
}

// kill SIGKILLs replica i; restart starts it again with the same environment.
func (f *fleet) kill(i int) {
	f.setUp(i, false)
	f.replicas[i].kill()
}

func (f *fleet) restart(i int) {
	f.t.Helper()
	f.replicas[i].start()
	f.setUp(i, true)
}

// alive is the client of a running replica, round robin.
func (f *fleet) alive() *client {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range len(f.replicas) {
		i := int(f.next.Add(1)) % len(f.replicas)
		if f.up[i] {
			return f.clients[i]
		}
	}
	return f.clients[0]
}

// running returns the indexes of the replicas that take requests.
func (f *fleet) running() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for i, up := range f.up {
		if up {
			out = append(out, i)
		}
	}
	return out
}

// store stores ev through the running replicas, trying another one (and again) until it
// is stored.
func (f *fleet) store(ctx context.Context, ev map[string]any) error {
	for {
		c := f.alive()
		tryCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := tryHTTP(tryCtx, c, ev, new(ingestStats))
		cancel()
		switch {
		case err == nil && r.refused != nil:
			return fmt.Errorf("event %v refused: %s", ev["id"], r.refused.Detail)
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("event %v not stored: %w (last: %v)", ev["id"], ctx.Err(), err)
		}
		select { // paces retries while a replica is down; not waiting for a condition
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// owned is the partitions replica i says it owns (/readyz), or nil when it does not answer.
func (f *fleet) owned(i int) []int {
	f.mu.Lock()
	c := f.clients[i]
	f.mu.Unlock()
	res, err := c.try(context.Background(), "GET", "/readyz", "", nil)
	if err != nil {
		return nil
	}
	var body struct {
		Partitions []int `json:"partitions"`
	}
	_ = json.Unmarshal(res.body, &body)
	return body.Partitions
}

// waitCovered waits until the running replicas own every partition once between them,
// balanced (each owns its share: the lanes divided by the replicas, rounded down), and
// returns how long that took.
func (f *fleet) waitCovered(what string, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	poll(f.t, timeout, what+": every partition owned by exactly one running replica, balanced", func() bool {
		seen := map[int]int{}
		var running [][]int
		for _, i := range f.running() {
			owned := f.owned(i)
			running = append(running, owned)
			for _, p := range owned {
				seen[p]++
			}
		}
		share := fleetLanes / max(len(running), 1) * (fleetPartitions / fleetLanes)
		for _, owned := range running {
			if len(owned) < share {
				return false
			}
		}
		if len(seen) != fleetPartitions {
			return false
		}
		for _, n := range seen {
			if n != 1 {
				return false
			}
		}
		return true
	})
	return time.Since(start)
}

// orderedLoad is users × perUser purchases of 1, 2, 4, 8 … under a campaign that only
// grants when the amount is above everything the user spent before: in order, every
// purchase is rewarded; applied out of order, some are not.
type orderedLoad struct {
	name           string
	users, perUser int
}

const inOrderCampaign = "in-order"

func (l orderedLoad) user(u int) string { return fmt.Sprintf("%s-u%d", l.name, u) }

func (l orderedLoad) event(u, i int) map[string]any {
	return map[string]any{"id": fmt.Sprintf("%s-%d-%d", l.name, u, i), "user_id": l.user(u), "type": "purchase",
		"amount": math.Pow(2, float64(i))}
}

// run sends every user's events in order (each stored before the next), users in
// parallel; during calls its argument after every event of the first user.
func (l orderedLoad) run(ctx context.Context, f *fleet, sent *atomic.Int64) error {
	return together(l.users, func(u int) error {
		for i := range l.perUser {
			if err := f.store(ctx, l.event(u, i)); err != nil {
				return err
			}
			sent.Add(1)
		}
		return nil
	})
}

// requireExactlyInOrder waits until the replicas are idle and requires every user's
// totals exact and every purchase rewarded once (so applied once, in order).
func (l orderedLoad) requireExactlyInOrder(t *testing.T, f *fleet) {
	t.Helper()
	c := f.alive()
	c = c.with(t)
	c.waitEngineIdle(2 * time.Minute)
	spent := math.Pow(2, float64(l.perUser)) - 1
	for u := range l.users {
		id := l.user(u)
		v := c.waitUser(id, int64(l.perUser))
		require.Equal(t, int64(l.perUser), v.PurchaseCount, "%s: purchases", id)
		require.InDelta(t, spent, v.TotalSpent, 1e-6, "%s: spend", id)
		require.Equal(t, int64(l.perUser), v.RewardCounts[inOrderCampaign], "%s: every purchase rewarded, so applied in order", id)
		require.Equal(t, int64(l.perUser), v.Points, "%s: one point per purchase, none twice", id)
		rewards := map[string]int{}
		for _, r := range c.rewards(id) {
			rewards[r.EventID]++
		}
		require.Len(t, rewards, l.perUser, "%s: rewarded events", id)
		for ev, n := range rewards {
			require.Equal(t, 1, n, "%s: event %s rewarded %d times", id, ev, n)
		}
		c.ledger(id) // the balance equals the ledger's sum
	}
}

func (f *fleet) createInOrderCampaign() {
	f.t.Helper()
	c := f.clients[0]
	c.do("POST", "/v1/campaigns", c.token, map[string]any{
		"id": inOrderCampaign, "name": "rewards purchases above all earlier spend", "status": "active",
		"rule":   `event.type == "purchase" && event.amount > user.total_spent`,
		"reward": map[string]any{"type": "points", "points": 1},
	}, http.StatusCreated, nil)
	f.waitCampaignLive(inOrderCampaign)
}

// waitCampaignLive waits until the replicas apply campaign id: probe users, one per
// partition's worth, each get the reward (a probe that reached a replica before the
// campaign did is followed by another).
func (f *fleet) waitCampaignLive(id string) { f.waitCampaignLiveFor(id, "purchase") }

// waitCampaignLiveFor is waitCampaignLive with probes of event type typ.
func (f *fleet) waitCampaignLiveFor(id, typ string) {
	f.t.Helper()
	c := f.clients[0]
	for u := range 2 * fleetPartitions {
		n := 0
		poll(f.t, patience, "campaign "+id+" live", func() bool {
			n++
			probe := fmt.Sprintf("probe-%s-%d", id, u)
			ev := fmt.Sprintf("%s-%d", probe, n)
			require.NoError(f.t, f.store(context.Background(), map[string]any{"id": ev, "user_id": probe, "type": typ, "amount": math.Pow(2, float64(n))}))
			v := c.waitUser(probe, int64(n))
			return v.RewardCounts[id] > 0
		})
	}
}

// signal sends sig to replica i (SIGSTOP/SIGCONT freeze and thaw it).
func (f *fleet) signal(i int, sig syscall.Signal) {
	f.t.Helper()
	f.setUp(i, sig != syscall.SIGSTOP)
	require.NoError(f.t, f.replicas[i].cmd.Process.Signal(sig))
	f.replicas[i].frozen = sig == syscall.SIGSTOP
}

// stop sends SIGTERM to replica i and waits for it to exit.
func (f *fleet) stop(i int) {
	f.t.Helper()
	d := f.replicas[i]
	f.setUp(i, false)
	require.NoError(f.t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-d.exited:
	case <-time.After(40 * time.Second):
		f.t.Fatalf("replica %d did not exit within 40s of SIGTERM", i)
	}
	d.cmd = nil
}

func TestTwoEnginesApplyEveryUsersPurchaseAndRedeemExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and two campaignd processes")
	}
	f := newFleet(t, 2)
	f.waitCovered("two replicas", time.Minute)
	c := f.clients[0]
	c.do("POST", "/v1/campaigns", c.token, map[string]any{
		"id": "ten-percent", "name": "10% back", "status": "active",
		"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "points", "points": "int(event.amount * 0.1)"},
	}, http.StatusCreated, nil)
	f.waitCampaignLive("ten-percent")
	const users = 60
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, together(users, func(u int) error {
		id := fmt.Sprintf("shopper-%d", u)
		// The purchase through one replica, the redeem through the other, at once.
		if _, err := tryHTTP(ctx, f.clients[u%2], map[string]any{"id": id + "-buy", "user_id": id, "type": "purchase", "amount": 100}, new(ingestStats)); err != nil {
			return err
		}
		_, err := tryHTTP(ctx, f.clients[(u+1)%2], map[string]any{"id": id + "-redeem", "user_id": id, "type": "redeem", "amount": 4}, new(ingestStats))
		return err
	}))
	c.waitEngineIdle(time.Minute)
	exact := 0
	for u := range users {
		id := fmt.Sprintf("shopper-%d", u)
		v := c.waitUser(id, 2)
		var kinds []string
		for _, e := range c.ledger(id) {
			kinds = append(kinds, e.Kind)
		}
		if v.Points == 6 && v.PurchaseCount == 1 && strings.Join(kinds, ",") == "earn,redeem" {
			exact++
		} else {
			t.Errorf("%s: points %d, purchases %d, ledger %v; want 6, 1, earn,redeem", id, v.Points, v.PurchaseCount, kinds)
		}
	}
	t.Logf("%d of %d users exact", exact, users)
}

func TestEnginesFailOverWithoutLossOrReorderWhenAnEngineOrANATSNodeDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and campaignd processes")
	}
	f := newFleet(t, 2)
	f.waitCovered("two replicas", time.Minute)
	f.createInOrderCampaign()
	load := orderedLoad{name: "fo", users: 24, perUser: 24}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { done <- load.run(ctx, f, &sent) }()
	total := int64(load.users * load.perUser)
	waitSent := func(n int64) {
		poll(t, 2*time.Minute, fmt.Sprintf("%d events stored", n), func() bool { return sent.Load() >= n })
	}

	waitSent(total / 4)
	f.kill(1)
	killed := time.Now()
	failover := f.waitCovered("after kill -9 of a replica", time.Minute)
	t.Logf("failover after kill -9: the survivor owned every partition %s after the kill (lease TTL 5s)", time.Since(killed).Round(100*time.Millisecond))
	_ = failover

	waitSent(total / 2)
	f.add()
	joined := f.waitCovered("after a replica joined", time.Minute)
	t.Logf("a joining replica got its share within %s", joined.Round(100*time.Millisecond))

	waitSent(3 * total / 4)
	f.nats.Stop(0) // streams have 3 replicas: the other two nodes hold the quorum
	require.NoError(t, <-done, "every event stored with a NATS node down")
	load.requireExactlyInOrder(t, f)
}

func TestAFrozenOwnerCannotCommitAfterAnotherReplicaTookOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and campaignd processes")
	}
	f := newFleet(t, 2)
	f.waitCovered("two replicas", time.Minute)
	f.createInOrderCampaign()
	load := orderedLoad{name: "fz", users: 16, perUser: 20}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { done <- load.run(ctx, f, &sent) }()
	poll(t, time.Minute, "a quarter of the load stored", func() bool { return sent.Load() >= int64(load.users*load.perUser/4) })

	f.signal(1, syscall.SIGSTOP)
	frozen := time.Now()
	f.waitCovered("while a replica is frozen", time.Minute)
	t.Logf("the frozen replica's partitions were taken over %s after SIGSTOP", time.Since(frozen).Round(100*time.Millisecond))
	poll(t, time.Minute, "more events stored during the freeze", func() bool { return sent.Load() >= int64(load.users*load.perUser/2) })
	f.signal(1, syscall.SIGCONT) // it resumes believing it owns its lanes: its commits must be refused
	require.NoError(t, <-done)
	load.requireExactlyInOrder(t, f)
	lost := metricValue(t, f.clients[1], `campaign_ownership_changes_total{change="lost"}`)
	require.Greater(t, lost, 0.0, "the thawed replica noticed it lost its lanes")
	f.waitCovered("after the thaw", time.Minute)
}

func TestARollingRestartOfEveryReplicaUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and campaignd processes")
	}
	f := newFleet(t, 2)
	f.waitCovered("two replicas", time.Minute)
	f.createInOrderCampaign()
	load := orderedLoad{name: "rr", users: 16, perUser: 24}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { done <- load.run(ctx, f, &sent) }()
	var pauses []string
	var mu sync.Mutex
	for i := range 2 {
		poll(t, time.Minute, "load under way", func() bool { return sent.Load() >= int64((i+1)*load.users*load.perUser/4) })
		start := time.Now()
		f.stop(i) // SIGTERM: drain, hand the lanes over
		stopped := time.Since(start)
		f.restart(i)
		covered := f.waitCovered(fmt.Sprintf("after restarting replica %d", i), time.Minute)
		mu.Lock()
		pauses = append(pauses, fmt.Sprintf("replica %d: SIGTERM to exit %s, then all partitions owned again after %s", i,
			stopped.Round(10*time.Millisecond), covered.Round(10*time.Millisecond)))
		mu.Unlock()
	}
	require.NoError(t, <-done)
	load.requireExactlyInOrder(t, f)
	t.Logf("rolling restart: %s", strings.Join(pauses, "; "))
}

// metricValue reads one sample from a replica's /metrics.
func metricValue(t *testing.T, c *client, sample string) float64 {
	t.Helper()
	res := c.request("GET", "/metrics", "", nil)
	for line := range strings.SplitSeq(string(res.body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// TestBudgetsAndPoolsStayExactAcrossReplicas: two engines sharing campaign budgets and a
// coupon pool (each issuing from it) reach the budgets exactly and issue exactly the
// pool's codes, each once; the users past them are refused (the pool's) and consoled.
func TestBudgetsAndPoolsStayExactAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster and campaignd processes")
	}
	f := newFleet(t, 2)
	f.waitCovered("two replicas", time.Minute)
	c := f.clients[0]
	c.do("POST", "/v1/campaigns", c.token, map[string]any{
		"id": "first-seven", "name": "seven rewards in all", "status": "active", "priority": 10,
		"rule": `event.type == "purchase"`, "limits": map[string]any{"total_rewards": 7},
		"reward": map[string]any{"type": "coupon"},
	}, http.StatusCreated, nil)
	c.do("POST", "/v1/campaigns", c.token, map[string]any{
		"id": "hundred-points", "name": "100 points in all", "status": "active",
		"rule": `event.type == "purchase"`, "limits": map[string]any{"total_points": 100},
		"reward": map[string]any{"type": "points", "points": 15},
	}, http.StatusCreated, nil)
	c.createPool("shared", 30)
	c.do("POST", "/v1/campaigns", c.token, poolCampaign("shared-coupon", "shared"), http.StatusCreated, nil)
	c.do("POST", "/v1/campaigns", c.token, consolation, http.StatusCreated, nil)
	// A campaign created after the others, live everywhere: so are they (KV updates arrive
	// in order). Its probes are not purchases, so they take nothing from the budgets.
	c.do("POST", "/v1/campaigns", c.token, map[string]any{
		"id": "probe-live", "name": "probe", "status": "active",
		"rule": `event.type == "probe"`, "reward": map[string]any{"type": "notification"},
	}, http.StatusCreated, nil)
	f.waitCampaignLiveFor("probe-live", "probe")
	const users, per = 40, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	signups := poolUsers("pu", 50)
	require.NoError(t, together(len(signups), func(u int) error { return f.store(ctx, signup(signups[u])) }))
	require.NoError(t, together(users, func(u int) error {
		for i := range per {
			if err := f.store(ctx, map[string]any{"id": fmt.Sprintf("b-%d-%d", u, i), "user_id": fmt.Sprintf("bu-%d", u), "type": "purchase", "amount": 1}); err != nil {
				return err
			}
		}
		return nil
	}))
	c.waitEngineIdle(time.Minute)
	var st struct {
		Rewards       int64 `json:"rewards"`
		PointsGranted int64 `json:"points_granted"`
	}
	c.do("GET", "/v1/campaigns/first-seven/stats", c.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(7), st.Rewards, "total_rewards is reached exactly, across replicas")
	c.do("GET", "/v1/campaigns/hundred-points/stats", c.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(90), st.PointsGranted, "a seventh reward of 15 would pass 100 points")

	c.requirePoolOutcome("shared-coupon", "shared", signups, 30)
	var each []float64
	for _, r := range f.clients {
		each = append(each, r.metricValue(`campaign_pool_codes_issued_total{pool="shared"}`))
	}
	require.Equal(t, 30.0, each[0]+each[1], "codes issued by the replicas: %v", each)
	require.True(t, each[0] > 0 && each[1] > 0, "both replicas issue codes from the shared pool: %v", each)
	t.Logf("codes issued by replica: %v", each)
}
