package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Coupon code pools through the real path: HTTP ingest, the engine, the batch commit,
// REWARDS, the storefront's coupon API and LOYALTY.

// poolCampaign is an exclusive campaign granting a coupon from pool on signups, above
// consolation, which grants points on signups: a user refused the coupon (pool
// exhausted) gets the consolation points instead.
func poolCampaign(id, pool string) map[string]any {
	return map[string]any{"id": id, "name": "Signup coupon", "status": "active", "priority": 10, "exclusive": true,
		"rule":   `event.type == "signup"`,
		"reward": map[string]any{"type": "coupon", "pool": pool, "data": map[string]any{"percent_off": 10}}}
}

var consolation = map[string]any{"id": "consolation", "name": "Signup points", "status": "active",
	"rule": `event.type == "signup"`, "reward": map[string]any{"type": "points", "points": 5}}

func signup(user string) map[string]any {
	return map[string]any{"id": "signup-" + user, "user_id": user, "type": "signup"}
}

// createPool creates pool id with n codes generated from SHIP-####-####.
func (c *client) createPool(id string, n int) {
	c.t.Helper()
	var p struct {
		Total int64 `json:"total"`
	}
	c.do("POST", "/v1/pools", c.token, map[string]any{"id": id, "name": "Pool " + id, "pattern": "SHIP-####-####", "count": n, "low_water": 20},
		http.StatusCreated, &p)
	require.Equal(c.t, int64(n), p.Total)
}

// storedReward is a reward as GET /v1/users/{id}/rewards shows it, with its payload.
type storedReward struct {
	ID         string         `json:"id"`
	CampaignID string         `json:"campaign_id"`
	Points     int64          `json:"points"`
	Payload    map[string]any `json:"payload"`
}

// requirePoolOutcome requires what users' qualifying for campaignID (whose reward takes
// codes from pool, consolation below it) must have led to: exactly issued codes, all
// distinct, each on one reward of one user, the same in the reward's stored payload, the
// user's coupons and its REWARDS message; every other user refused (stats:
// rewards_refused, pool_exhausted) and given the consolation points instead; the pool
// counting the codes issued and none left. It returns the codes by user.
func (c *client) requirePoolOutcome(campaignID, pool string, users []string, issued int) map[string]string {
	c.t.Helper()
	t := c.t
	codes := map[string]string{} // user -> code
	byCode := map[string]string{}
	rewardOf := map[string]string{} // reward id -> code
	consoled := 0
	for _, u := range users {
		var rs struct{ Rewards []storedReward }
		c.do("GET", "/v1/users/"+url.PathEscape(u)+"/rewards", c.token, nil, http.StatusOK, &rs)
		require.Len(t, rs.Rewards, 1, "%s: rewards %v", u, rs.Rewards)
		r := rs.Rewards[0]
		switch r.CampaignID {
		case campaignID:
			code, _ := r.Payload["coupon_code"].(string)
			require.NotEmpty(t, code, "%s: reward %s has no code: %v", u, r.ID, r.Payload)
			require.Equal(t, pool, r.Payload["pool"], "%s: reward %s", u, r.ID)
			other, dup := byCode[code]
			require.False(t, dup, "code %s on the rewards of %s and %s", code, other, u)
			byCode[code], codes[u], rewardOf[r.ID] = u, code, code
			var cs struct {
				Coupons []struct {
					Code     string `json:"code"`
					RewardID string `json:"reward_id"`
					Status   string `json:"status"`
				} `json:"coupons"`
			}
			c.do("GET", "/v1/users/"+url.PathEscape(u)+"/coupons", c.token, nil, http.StatusOK, &cs)
			require.Len(t, cs.Coupons, 1, "%s: coupons", u)
			require.Equal(t, code, cs.Coupons[0].Code, "%s: coupon", u)
			require.Equal(t, r.ID, cs.Coupons[0].RewardID, "%s: coupon's reward", u)
		case "consolation":
			require.Equal(t, int64(5), r.Points, "%s", u)
			consoled++
		default:
			t.Fatalf("%s: reward of campaign %q", u, r.CampaignID)
		}
	}
	require.Len(t, codes, issued, "codes issued")
	require.Equal(t, len(users)-issued, consoled, "users refused the coupon and given the points below it")

	var st struct {
		Rewards         int64            `json:"rewards"`
		RewardsRefused  int64            `json:"rewards_refused"`
		RefusedByReason map[string]int64 `json:"refused_by_reason"`
		Pool            struct {
			Left int64 `json:"left"`
			Low  bool  `json:"low"`
		} `json:"pool"`
	}
	c.do("GET", "/v1/campaigns/"+campaignID+"/stats", c.token, nil, http.StatusOK, &st)
	require.Equal(t, int64(issued), st.Rewards)
	require.Equal(t, int64(len(users)-issued), st.RewardsRefused, "stats: %+v", st)
	require.Equal(t, map[string]int64{"pool_exhausted": int64(len(users) - issued)}, st.RefusedByReason)
	require.Zero(t, st.Pool.Left)
	require.True(t, st.Pool.Low)
	var p struct {
		Total, Issued, Left int64
	}
	c.do("GET", "/v1/pools/"+pool, c.token, nil, http.StatusOK, &p)
	require.Equal(t, int64(issued), p.Issued, "pool %+v", p)
	require.Zero(t, p.Left, "pool %+v", p)

	// Downstream: one REWARDS message per reward, carrying the stored code.
	c.waitStreamMsgs(bus.RewardsStream, "rewards."+campaignID+".>", uint64(issued))
	for _, body := range c.streamBodies(bus.RewardsStream, "rewards."+campaignID+".>", issued) {
		var r storedReward
		require.NoError(t, json.Unmarshal(body, &r))
		require.Equal(t, rewardOf[r.ID], r.Payload["coupon_code"], "REWARDS message of %s: %s", r.ID, body)
		require.Equal(t, map[string]any{"percent_off": 10.0}, r.Payload["data"])
	}
	return codes
}

// streamBodies reads the first n messages of stream whose subjects match filter.
func (c *client) streamBodies(stream, filter string, n int) [][]byte {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.jetStream().Stream(ctx, stream)
	require.NoError(c.t, err)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	require.NoError(c.t, err)
	var out [][]byte
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(c.t, err)
		for m := range batch.Messages() {
			out = append(out, m.Data())
		}
		require.NoError(c.t, batch.Error())
		require.NoError(c.t, ctx.Err(), "%d of %d messages of %s %s", len(out), n, stream, filter)
	}
	return out
}

// metricValue is the value of the sample of /metrics that starts with series (name and
// labels as exported), or -1 when there is none.
func (c *client) metricValue(series string) float64 {
	c.t.Helper()
	status, body := c.raw("GET", "/metrics", "", nil)
	require.Equal(c.t, http.StatusOK, status)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			require.NoError(c.t, err, line)
			return v
		}
	}
	return -1
}

func poolUsers(prefix string, n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return users
}

// TestPoolOf150CodesGoesToExactly150Of200QualifyingUsers: 200 users qualify at the same
// moment for a coupon from a pool of 150 codes. Exactly 150 distinct codes are issued,
// one per reward (stored, listed, on REWARDS); the other 50 rewards are refused for the
// exhausted pool (stats, metric), and since the coupon campaign did not apply for them
// the campaign below it did.
func TestPoolOf150CodesGoesToExactly150Of200QualifyingUsers(t *testing.T) {
	e := newEnv(t)
	e.createPool("spring", 150)
	e.createCampaign(poolCampaign("spring-coupon", "spring"))
	e.createCampaign(consolation)
	users := poolUsers("shopper", 200)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, together(len(users), func(i int) error { return httpIngest.store(ctx, &e.client, signup(users[i]), nil) }))
	e.waitEngineIdle(patience)

	codes := e.requirePoolOutcome("spring-coupon", "spring", users, 150)
	require.Equal(t, 50.0, e.metricValue(`campaign_rewards_refused_total{campaign="spring-coupon",reason="pool_exhausted"}`))
	require.Equal(t, 150.0, e.metricValue(`campaign_pool_codes_issued_total{pool="spring"}`))
	poll(t, patience, "the pool gauge shows none left", func() bool {
		return e.metricValue(`campaign_pool_codes_left{pool="spring"}`) == 0
	})
	require.Equal(t, 20.0, e.metricValue(`campaign_pool_low_water{pool="spring"}`))
	require.Equal(t, 1.0, e.metricValue(`campaign_pool_active_campaigns{pool="spring"}`))
	// A pool no campaign takes from says so (the pool alerts stay quiet), and leaves the
	// gauges once deleted.
	e.createPool("spare", 0)
	poll(t, patience, "the spare pool's gauges", func() bool {
		return e.metricValue(`campaign_pool_active_campaigns{pool="spare"}`) == 0 && e.metricValue(`campaign_pool_codes_left{pool="spare"}`) == 0
	})
	e.do("DELETE", "/v1/pools/spare", e.token, nil, http.StatusOK, nil)
	poll(t, patience, "the deleted pool's gauges gone", func() bool {
		return e.metricValue(`campaign_pool_codes_left{pool="spare"}`) == -1 && e.metricValue(`campaign_pool_active_campaigns{pool="spare"}`) == -1
	})

	// The shop redeems a code: of two redeems at the same moment (other orders) one wins.
	var winner string
	for u, code := range codes {
		winner = u
		statuses := make([]int, 2)
		require.NoError(t, together(2, func(i int) error {
			res, err := e.try(ctx, "POST", "/v1/coupons/"+code+"/redeem", "key:"+e.apiKey,
				map[string]any{"user_id": u, "order_id": fmt.Sprintf("order-%d", i)})
			statuses[i] = res.status
			return err
		}))
		sort.Ints(statuses)
		require.Equal(t, []int{http.StatusOK, http.StatusConflict}, statuses)
		break
	}
	code := codes[winner]
	var again struct {
		Repeated bool   `json:"repeated"`
		OrderID  string `json:"order_id"`
	}
	// The winner's order again is 200 (idempotent); the other's stays 409.
	for _, order := range []string{"order-0", "order-1"} {
		res := e.request("POST", "/v1/coupons/"+code+"/redeem", "key:"+e.apiKey, map[string]any{"user_id": winner, "order_id": order})
		if res.status == http.StatusOK {
			require.NoError(t, json.Unmarshal(res.body, &again))
		} else {
			require.Equal(t, http.StatusConflict, res.status, string(res.body))
		}
	}
	require.True(t, again.Repeated)
	var pr struct {
		Status int    `json:"status"`
		Reason string `json:"reason"`
	}
	e.do("POST", "/v1/coupons/"+code+"/validate", "key:"+e.apiKey, map[string]any{"user_id": winner}, http.StatusConflict, &pr)
	require.Equal(t, "redeemed", pr.Reason)

	// The redemption is on LOYALTY once, for the webhooks and other downstream systems.
	filter := bus.CouponRedeemedSubject(event.Token(winner))
	e.waitStreamMsgs(bus.LoyaltyStream, filter, 1)
	var n loyalty.CouponRedeemed
	require.NoError(t, json.Unmarshal(e.streamBodies(bus.LoyaltyStream, filter, 1)[0], &n))
	require.Equal(t, "coupon_redeemed", n.Type)
	require.Equal(t, code, n.Code)
	require.Equal(t, again.OrderID, n.OrderID)
	require.Equal(t, winner, n.UserID)

	// Codes imported later reach the engine: the next qualifying user gets one.
	e.do("POST", "/v1/pools/spring/codes", e.token, map[string]any{"codes": []string{"LATE-0001"}}, http.StatusOK, nil)
	require.NoError(t, httpIngest.store(ctx, &e.client, signup("latecomer"), nil))
	e.waitUser("latecomer", 1)
	var rs struct{ Rewards []storedReward }
	e.do("GET", "/v1/users/latecomer/rewards", e.token, nil, http.StatusOK, &rs)
	require.Len(t, rs.Rewards, 1)
	require.Equal(t, "LATE-0001", rs.Rewards[0].Payload["coupon_code"])
}

// TestPoolCodesStayExactAcrossKillNine: the 200 users of a 150-code pool sign up while a
// purchase load runs and campaignd is SIGKILLed several times. Exactly 150 codes are
// issued, distinct, each on one reward; exactly 50 rewards refused; the purchase load
// applied exactly once.
func TestPoolCodesStayExactAcrossKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and kills a campaignd process")
	}
	d, c := startCrashDaemon(t, httpIngest)
	c.createPool("crash-pool", 150)
	c.do("POST", "/v1/campaigns", c.token, poolCampaign("crash-coupon", "crash-pool"), http.StatusCreated, nil)
	c.do("POST", "/v1/campaigns", c.token, consolation, http.StatusCreated, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A probe signup shows both campaigns reached the engine.
	require.NoError(t, httpIngest.store(ctx, c, signup("probe-signup"), nil))
	c.waitUser("probe-signup", 1)
	require.Len(t, c.rewards("probe-signup"), 1, "the probe's coupon")

	// The signups ride on the purchase load: every third stored purchase sends the next
	// one, so they spread over the whole run and its kills.
	users := poolUsers("crash-shopper", 199) // and the probe: 200 users for 150 codes
	var stored, next atomic.Int64
	withSignups := ingester{name: "http with signups", try: func(ctx context.Context, c *client, ev map[string]any, st *ingestStats) (receipt, error) {
		r, err := tryHTTP(ctx, c, ev, st)
		if err != nil || r.refused != nil || stored.Add(1)%3 != 0 {
			return r, err
		}
		if i := next.Add(1) - 1; i < int64(len(users)) {
			if err := httpIngest.store(ctx, c, signup(users[i]), st); err != nil {
				return receipt{}, fmt.Errorf("%w: %v", errUnexpected, err)
			}
		}
		return r, nil
	}}
	l := purchaseLoad{name: "poolcrash", users: 12, perUser: 60}
	var st ingestStats
	killedAt := killUnderLoad(t, d, c, withSignups, l, 3, &st)
	for i := next.Add(1) - 1; i < int64(len(users)); i++ { // the few left, if any
		require.NoError(t, httpIngest.store(ctx, c, signup(users[i]), &st))
	}
	t.Logf("pool crash test: SIGKILL at %v purchases stored; %s", killedAt, &st)
	l.requireExactlyOnce(t, c, 30*time.Second)
	c.requirePoolOutcome("crash-coupon", "crash-pool", append([]string{"probe-signup"}, users...), 150)
}

// couponProblem is the problem details answer of a code that cannot be used.
type couponProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Reason string `json:"reason"`
}

// requireCouponProblem posts body to the code's action (validate or redeem) and requires
// an RFC 9457 problem of status naming reason.
func (c *client) requireCouponProblem(code, action string, body map[string]any, status int, reason string) {
	c.t.Helper()
	res := c.request("POST", "/v1/coupons/"+url.PathEscape(code)+"/"+action, "key:"+c.apiKey, body)
	require.Equal(c.t, status, res.status, "%s %s %v: %s", action, code, body, res.body)
	require.Equal(c.t, "application/problem+json", res.header.Get("Content-Type"), "%s %s", action, code)
	var p couponProblem
	require.NoError(c.t, json.Unmarshal(res.body, &p))
	require.Equal(c.t, couponProblem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: p.Detail, Reason: reason}, p)
	require.NotEmpty(c.t, p.Detail)
}

// userCoupon is an entry of GET /v1/users/{id}/coupons.
type userCoupon struct {
	Code       string         `json:"code"`
	PoolID     string         `json:"pool_id"`
	RewardID   string         `json:"reward_id"`
	CampaignID string         `json:"campaign_id"`
	Type       string         `json:"type"`
	Data       map[string]any `json:"data"`
	Status     string         `json:"status"`
	OrderID    string         `json:"order_id"`
}

func (c *client) userCoupons(id string) []userCoupon {
	c.t.Helper()
	var out struct{ Coupons []userCoupon }
	c.do("GET", "/v1/users/"+url.PathEscape(id)+"/coupons", c.token, nil, http.StatusOK, &out)
	return out.Coupons
}

// TestCouponValidateAndRedeemSayWhyAfterTheEngineIssuedTheCode: codes issued by the
// engine to alice and bob are valid for their owner only; a storefront learns why one
// cannot be used, as a problem naming the reason (unknown 404, other_user 403, redeemed
// 409, expired 410); redeeming is idempotent on the order; the user's coupons show each
// code's status.
func TestCouponValidateAndRedeemSayWhyAfterTheEngineIssuedTheCode(t *testing.T) {
	e := newEnv(t)
	e.createPool("welcome", 5)
	e.createCampaign(poolCampaign("welcome-coupon", "welcome"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	codes := map[string]string{}
	for _, u := range []string{"alice", "bob"} {
		require.NoError(t, httpIngest.store(ctx, &e.client, signup(u), nil))
		e.waitUser(u, 1)
		var rs struct{ Rewards []storedReward }
		e.do("GET", "/v1/users/"+u+"/rewards", e.token, nil, http.StatusOK, &rs)
		require.Len(t, rs.Rewards, 1, u)
		codes[u], _ = rs.Rewards[0].Payload["coupon_code"].(string)
		require.Regexp(t, `^SHIP-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$`, codes[u], u)
	}
	alice, bob := codes["alice"], codes["bob"]

	var v struct {
		Valid      bool           `json:"valid"`
		Code       string         `json:"code"`
		UserID     string         `json:"user_id"`
		CampaignID string         `json:"campaign_id"`
		Type       string         `json:"type"`
		Data       map[string]any `json:"data"`
	}
	e.do("POST", "/v1/coupons/"+strings.ToLower(alice)+"/validate", "key:"+e.apiKey, map[string]any{"user_id": "alice"}, http.StatusOK, &v)
	require.True(t, v.Valid)
	require.Equal(t, alice, v.Code)
	require.Equal(t, "alice", v.UserID)
	require.Equal(t, "welcome-coupon", v.CampaignID)
	require.Equal(t, "coupon", v.Type)
	require.Equal(t, map[string]any{"percent_off": 10.0}, v.Data)
	e.requireCouponProblem(alice, "validate", map[string]any{"user_id": "bob"}, http.StatusForbidden, "other_user")
	e.requireCouponProblem("SHIP-NOPE-NOPE", "validate", map[string]any{"user_id": "alice"}, http.StatusNotFound, "unknown")
	e.requireCouponProblem("not a code", "validate", map[string]any{"user_id": "alice"}, http.StatusNotFound, "unknown")
	e.requireCouponProblem(alice, "redeem", map[string]any{"user_id": "bob", "order_id": "o-bob"}, http.StatusForbidden, "other_user")
	// Without an API key the coupon API is closed, like ingest.
	require.Equal(t, http.StatusUnauthorized, e.request("POST", "/v1/coupons/"+alice+"/validate", "", map[string]any{"user_id": "alice"}).status)

	e.do("POST", "/v1/coupons/"+alice+"/redeem", "key:"+e.apiKey, map[string]any{"user_id": "alice", "order_id": "o-1"}, http.StatusOK, nil)
	e.do("POST", "/v1/coupons/"+alice+"/redeem", "key:"+e.apiKey, map[string]any{"user_id": "alice", "order_id": "o-1"}, http.StatusOK, nil)
	e.requireCouponProblem(alice, "redeem", map[string]any{"user_id": "alice", "order_id": "o-2"}, http.StatusConflict, "redeemed")
	e.requireCouponProblem(alice, "validate", map[string]any{"user_id": "alice"}, http.StatusConflict, "redeemed")

	// bob's code expires (its expiry moved to the past, as time would).
	conn, err := pgx.Connect(ctx, e.dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `UPDATE coupon_codes SET expires_at = now() - interval '1 second' WHERE code = $1`, bob)
	require.NoError(t, err)
	e.requireCouponProblem(bob, "validate", map[string]any{"user_id": "bob"}, http.StatusGone, "expired")
	e.requireCouponProblem(bob, "redeem", map[string]any{"user_id": "bob", "order_id": "o-3"}, http.StatusGone, "expired")

	a := e.userCoupons("alice")
	require.Len(t, a, 1)
	require.Equal(t, userCoupon{Code: alice, PoolID: "welcome", RewardID: a[0].RewardID, CampaignID: "welcome-coupon", Type: "coupon",
		Data: map[string]any{"percent_off": 10.0}, Status: "redeemed", OrderID: "o-1"}, a[0])
	b := e.userCoupons("bob")
	require.Len(t, b, 1)
	require.Equal(t, "expired", b[0].Status)
	require.Equal(t, http.StatusNotFound, e.request("GET", "/v1/users/ghost/coupons", e.token, nil).status)
	var p struct{ Issued, Redeemed, Left int64 }
	e.do("GET", "/v1/pools/welcome", e.token, nil, http.StatusOK, &p)
	require.Equal(t, struct{ Issued, Redeemed, Left int64 }{2, 1, 3}, p)
}
