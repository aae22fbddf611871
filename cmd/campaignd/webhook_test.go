package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// The webhook delivery through a running campaignd: endpoints made over the admin API, a
// receiver that is an HTTP server of the test on 127.0.0.1, rewards from events posted
// to ingest.

// hookRequest is one request a receiver got, and the status it answered (0 while it is
// answering).
type hookRequest struct {
	at     time.Time
	header http.Header
	body   []byte
	status int
}

// receiver is a webhook endpoint on 127.0.0.1: answer gives the status of the n-th
// request (1-based) of a webhook-id, or hangUp; it may block (a slow or dead endpoint).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*hookRequest
	byID map[string][]*hookRequest
}

func newReceiver(t *testing.T, answer func(id string, n int) int) *receiver {
	t.Helper()
	r := &receiver{byID: map[string][]*hookRequest{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		got := &hookRequest{at: time.Now(), header: req.Header.Clone(), body: body}
		r.reqs = append(r.reqs, got)
		r.byID[id] = append(r.byID[id], got)
		n := len(r.byID[id])
		r.mu.Unlock()
		status := answer(id, n)
		r.mu.Lock()
		got.status = status
		r.mu.Unlock()
		if status == hangUp {
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func answerOK(string, int) int { return http.StatusOK }

// hangUp, as an answer, closes the connection without one.
const hangUp = -1

// of returns the requests of webhook-id id, in arrival order.
func (r *receiver) of(id string) []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]hookRequest, 0, len(r.byID[id]))
	for _, q := range r.byID[id] {
		out = append(out, *q)
	}
	return out
}

// count is how many requests the receiver got.
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// ids are the webhook-ids the receiver answered 2xx, with how many such answers.
func (r *receiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for id, reqs := range r.byID {
		for _, q := range reqs {
			if q.status >= 200 && q.status < 300 {
				out[id]++
			}
		}
	}
	return out
}

// waitFor polls until the receiver has answered 2xx to webhook-id id and returns that
// request.
func (r *receiver) waitFor(t *testing.T, id string) hookRequest {
	t.Helper()
	var got hookRequest
	poll(t, patience, "webhook "+id+" received", func() bool {
		for _, q := range r.of(id) {
			if q.status >= 200 && q.status < 300 {
				got = q
				return true
			}
		}
		return false
	})
	return got
}

// verifyHook checks a delivery with the official Standard Webhooks library, as a
// receiver following README's instructions does, for each secret: it must verify.
func verifyHook(t *testing.T, q hookRequest, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(q.body, q.header), "the delivery verifies with %s…", s[:10])
	}
}

// signatureMatches counts the webhook-signature entries of q that are the documented
// HMAC (README: base64 HMAC-SHA256, keyed with the base64-decoded text after whsec_, of
// id.timestamp.body), written from the documentation alone.
func signatureMatches(t *testing.T, q hookRequest, secret string) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(q.header.Get("webhook-id") + "." + q.header.Get("webhook-timestamp") + "."))
	mac.Write(q.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	n := 0
	for entry := range strings.SplitSeq(q.header.Get("webhook-signature"), " ") {
		if hmac.Equal([]byte(entry), []byte(want)) {
			n++
		}
	}
	return n
}

// hookBody is a webhook body: its type, when the notice was stored, and the notice.
type hookBody struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// webhookVars are the settings of a campaignd that delivers to the test's receivers:
// private addresses allowed, a short attempt timeout, quick retries.
func webhookVars(extra map[string]string) map[string]string {
	vars := map[string]string{
		"CAMPAIGN_WEBHOOK_ALLOW_PRIVATE": "true",
		"CAMPAIGN_WEBHOOK_TIMEOUT":       "3s",
		"CAMPAIGN_WEBHOOK_RETRY_BASE":    "300ms",
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars
}

// newEnvWith is newEnv with the environment vars set at the first start.
func newEnvWith(t *testing.T, vars map[string]string) *env {
	t.Helper()
	e := &env{client: *newClient(t, "", ""), dbURL: pgtest.New(t), dataDir: t.TempDir(), vars: vars}
	e.start()
	t.Cleanup(e.stop)
	e.token = e.login("admin", adminPassword)
	e.newAPIKey("storefront")
	e.waitKey()
	return e
}

// couponOnPurchase grants a coupon for every purchase.
var couponOnPurchase = map[string]any{
	"id": "coupon-on-purchase", "name": "A coupon per purchase", "status": "active",
	"rule": `event.type == "purchase"`, "reward": map[string]any{"type": "coupon", "data": map[string]any{"discount": "10%"}},
}

// hookView is an endpoint as the admin API shows it.
type hookView struct {
	ID                  string         `json:"id"`
	URL                 string         `json:"url"`
	Filter              map[string]any `json:"filter"`
	Enabled             bool           `json:"enabled"`
	DisabledReason      string         `json:"disabled_reason"`
	PreviousSecretUntil *time.Time     `json:"previous_secret_until"`
	Version             int64          `json:"version"`
	Secret              string         `json:"secret"`
}

// delivery is a delivery record as the admin API shows it.
type delivery struct {
	ID            string     `json:"id"`
	Type          string     `json:"type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error"`
	LastLatencyMS *float64   `json:"last_latency_ms"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	Stream        string     `json:"stream"`
}

// createHook creates an endpoint for url receiving what filter selects (nil: all).
func (c *client) createHook(url string, filter map[string]any) hookView {
	c.t.Helper()
	body := map[string]any{"url": url, "description": "test receiver"}
	if filter != nil {
		body["filter"] = filter
	}
	var w hookView
	c.do("POST", "/v1/webhooks", c.token, body, http.StatusCreated, &w)
	require.True(c.t, strings.HasPrefix(w.Secret, "whsec_"), "the secret is shown on create: %+v", w)
	return w
}

// deliveries lists an endpoint's delivery records; query is "" or "?status=…".
func (c *client) deliveries(id, query string) []delivery {
	c.t.Helper()
	var page struct {
		Deliveries []delivery `json:"deliveries"`
	}
	c.do("GET", "/v1/webhooks/"+id+"/deliveries"+query, c.token, nil, http.StatusOK, &page)
	return page.Deliveries
}

// waitDelivery polls until the record of notice nid's delivery to endpoint id has
// status and returns it.
func (c *client) waitDelivery(id, nid, status string) delivery {
	c.t.Helper()
	var d delivery
	poll(c.t, patience, fmt.Sprintf("delivery %s of %s %s", nid, id, status), func() bool {
		res := c.request("GET", "/v1/webhooks/"+id+"/deliveries/"+nid, c.token, nil)
		if res.status != http.StatusOK {
			return false
		}
		d = delivery{}
		require.NoError(c.t, json.Unmarshal(res.body, &d))
		return d.Status == status
	})
	return d
}

// rewardOf waits for the reward campaign granted user and returns its id (the
// webhook-id of its delivery).
func (c *client) rewardOf(user, campaign string) string {
	c.t.Helper()
	var id string
	poll(c.t, patience, "a reward of "+campaign+" for "+user, func() bool {
		if _, ok := c.user(user); !ok {
			return false
		}
		for _, r := range c.rewards(user) {
			if r.CampaignID == campaign {
				id = r.ID
				return true
			}
		}
		return false
	})
	return id
}

// purchase posts a purchase of user and returns its reward's id under couponOnPurchase.
func (c *client) purchase(user, eventID string) string {
	c.t.Helper()
	c.postEvent(map[string]any{"id": eventID, "user_id": user, "type": "purchase", "amount": 20, "currency": "EUR"}, http.StatusAccepted)
	return c.rewardOf(user, "coupon-on-purchase")
}

func TestWebhookDeliveriesVerifyPerStandardWebhooksAndBothSecretsSignDuringARotation(t *testing.T) {
	e := newEnvWith(t, webhookVars(nil))
	rcv := newReceiver(t, answerOK)
	w := e.createHook(rcv.URL, map[string]any{"notices": []string{"reward"}, "reward_types": []string{"coupon"}})
	e.createCampaign(couponOnPurchase)

	rid := e.purchase("alice", "order-1")
	q := rcv.waitFor(t, rid)
	verifyHook(t, q, w.Secret)
	require.Equal(t, 1, signatureMatches(t, q, w.Secret), "the documented algorithm gives the signature")
	require.Equal(t, "application/json", q.header.Get("Content-Type"))
	ts, err := strconv.ParseInt(q.header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err, "webhook-timestamp is Unix seconds")
	require.InDelta(t, time.Now().Unix(), ts, 300)
	var body hookBody
	require.NoError(t, json.Unmarshal(q.body, &body))
	require.Equal(t, "reward.granted", body.Type)
	require.False(t, body.Timestamp.IsZero())
	var reward struct {
		ID         string         `json:"id"`
		UserID     string         `json:"user_id"`
		CampaignID string         `json:"campaign_id"`
		EventID    string         `json:"event_id"`
		Type       string         `json:"type"`
		Payload    map[string]any `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(body.Data, &reward))
	require.Equal(t, rid, reward.ID)
	require.Equal(t, "coupon", reward.Type)
	require.Equal(t, "order-1", reward.EventID)
	require.Equal(t, "alice", reward.UserID)
	require.NotEmpty(t, reward.Payload["coupon_code"], "the coupon code travels in the body: %s", body.Data)

	d := e.waitDelivery(w.ID, rid, "succeeded")
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, http.StatusOK, d.LastStatus)
	require.NotNil(t, d.LastLatencyMS)
	require.Equal(t, "REWARDS", d.Stream)

	// A rotation with the default overlap: both secrets sign the next delivery.
	var rotated hookView
	e.do("POST", "/v1/webhooks/"+w.ID+"/rotate-secret", e.token, nil, http.StatusOK, &rotated)
	require.NotEqual(t, w.Secret, rotated.Secret)
	require.NotNil(t, rotated.PreviousSecretUntil)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), *rotated.PreviousSecretUntil, time.Minute)
	rid2 := e.waitRotated(rcv, "bob", rotated.Secret)
	q2 := rcv.waitFor(t, rid2)
	require.Len(t, strings.Split(q2.header.Get("webhook-signature"), " "), 2)
	verifyHook(t, q2, w.Secret, rotated.Secret)
	require.Equal(t, 1, signatureMatches(t, q2, w.Secret))
	require.Equal(t, 1, signatureMatches(t, q2, rotated.Secret))

	// Without an overlap only the new secret signs.
	var again hookView
	e.do("POST", "/v1/webhooks/"+w.ID+"/rotate-secret?overlap=0s", e.token, nil, http.StatusOK, &again)
	rid3 := e.waitRotated(rcv, "carol", again.Secret)
	q3 := rcv.waitFor(t, rid3)
	require.Len(t, strings.Split(q3.header.Get("webhook-signature"), " "), 1)
	require.Zero(t, signatureMatches(t, q3, rotated.Secret))

	var got hookView
	e.do("GET", "/v1/webhooks/"+w.ID, e.token, nil, http.StatusOK, &got)
	require.Empty(t, got.Secret, "a secret is shown on create and rotation only")
	metrics := string(e.request("GET", "/metrics", "", nil).body)
	for _, m := range []string{`campaign_webhook_deliveries_total{outcome="delivered",webhook="` + w.ID + `"}`,
		`campaign_webhook_attempt_duration_seconds_bucket{webhook="` + w.ID + `",le="+Inf"}`} {
		require.Contains(t, metrics, m)
	}
}

// waitRotated posts purchases of user until one's delivery is signed with secret (the
// rotation has reached the engine) and returns that reward's id.
func (e *env) waitRotated(rcv *receiver, user, secret string) string {
	e.t.Helper()
	var rid string
	n := 0
	poll(e.t, patience, "a delivery signed with the new secret", func() bool {
		n++
		rid = e.purchase(fmt.Sprintf("%s-%d", user, n), fmt.Sprintf("%s-order-%d", user, n))
		return signatureMatches(e.t, rcv.waitFor(e.t, rid), secret) == 1
	})
	return rid
}

func TestWebhookFailedAttemptsComeAgainWithGrowingGapsAndTheSameID(t *testing.T) {
	e := newEnvWith(t, webhookVars(nil))
	rcv := newReceiver(t, func(_ string, n int) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	w := e.createHook(rcv.URL, nil)
	e.createCampaign(couponOnPurchase)

	rid := e.purchase("dave", "order-1")
	d := e.waitDelivery(w.ID, rid, "succeeded")
	require.Equal(t, 3, d.Attempts)
	reqs := rcv.of(rid)
	require.Len(t, reqs, 3, "500, 500, then 200: three attempts")
	for _, q := range reqs {
		require.Equal(t, rid, q.header.Get("webhook-id"), "every attempt has the same webhook-id")
		require.Equal(t, string(reqs[0].body), string(q.body), "and the same body")
		verifyHook(t, q, w.Secret)
	}
	gap1, gap2 := reqs[1].at.Sub(reqs[0].at), reqs[2].at.Sub(reqs[1].at)
	t.Logf("gaps between attempts: %s, %s (retry base 300ms, x4 per attempt, ±20%%)", gap1, gap2)
	require.GreaterOrEqual(t, gap1, 240*time.Millisecond, "the first retry waits the base, less 20 %% at most")
	require.Greater(t, gap2, gap1, "the gaps grow")
}

func TestWebhookEndpointAnswering410IsDisabledAndResumesWhenEnabled(t *testing.T) {
	e := newEnvWith(t, webhookVars(nil))
	var mu sync.Mutex
	gone := true
	rcv := newReceiver(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			return http.StatusGone
		}
		return http.StatusOK
	})
	w := e.createHook(rcv.URL, nil)
	e.createCampaign(couponOnPurchase)

	rid := e.purchase("erin", "order-1")
	var got hookView
	poll(t, patience, "the endpoint disabled", func() bool {
		e.do("GET", "/v1/webhooks/"+w.ID, e.token, nil, http.StatusOK, &got)
		return !got.Enabled
	})
	require.Contains(t, got.DisabledReason, "410")
	mu.Lock()
	gone = false
	mu.Unlock()
	var enabled hookView
	e.do("PATCH", "/v1/webhooks/"+w.ID, e.token, map[string]any{"enabled": true}, http.StatusOK, &enabled)
	require.True(t, enabled.Enabled)
	require.Empty(t, enabled.DisabledReason)
	rcv.waitFor(t, rid)
	e.waitDelivery(w.ID, rid, "succeeded")
}

func TestWebhookPrivateURLIsRefusedWithoutTheFlag(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, answerOK)
	for _, u := range []string{rcv.URL, "http://localhost:9/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest", "http://[::1]/hook"} {
		status, data := e.raw("POST", "/v1/webhooks", e.token, map[string]any{"url": u})
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", u, data)
		var p problem
		require.NoError(t, json.Unmarshal(data, &p))
		require.Equal(t, "url", p.Field, "the problem names the field: %s", data)
		require.Contains(t, p.Detail, "CAMPAIGN_WEBHOOK_ALLOW_PRIVATE")
	}
	status, data := e.raw("POST", "/v1/webhooks", e.token, map[string]any{"url": "ftp://example.com/x"})
	require.Equal(t, http.StatusBadRequest, status, string(data))
	require.Contains(t, string(data), `"field":"url"`)
	// A public address is taken (no request is made on create), and may not become a
	// private one.
	var w hookView
	e.do("POST", "/v1/webhooks", e.token, map[string]any{"url": "https://93.184.215.14/hook"}, http.StatusCreated, &w)
	status, data = e.raw("PATCH", "/v1/webhooks/"+w.ID, e.token, map[string]any{"url": rcv.URL})
	require.Equal(t, http.StatusBadRequest, status, string(data))
	require.Contains(t, string(data), `"field":"url"`)
	require.Empty(t, rcv.ids(), "nothing reached the private address")
}

func TestWebhookFailedDeliveryIsListedRetriedAndPinged(t *testing.T) {
	e := newEnvWith(t, webhookVars(map[string]string{"CAMPAIGN_WEBHOOK_MAX_ATTEMPTS": "2", "CAMPAIGN_WEBHOOK_RETRY_BASE": "100ms"}))
	var mu sync.Mutex
	healthy := false
	rcv := newReceiver(t, func(string, int) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	w := e.createHook(rcv.URL, nil)
	e.createCampaign(couponOnPurchase)

	rid := e.purchase("frank", "order-1")
	d := e.waitDelivery(w.ID, rid, "failed")
	require.Equal(t, 2, d.Attempts)
	require.Equal(t, http.StatusServiceUnavailable, d.LastStatus)
	require.Nil(t, d.NextAttemptAt, "a failed delivery is not attempted again by itself")
	failed := e.deliveries(w.ID, "?status=failed")
	require.Len(t, failed, 1)
	require.Equal(t, rid, failed[0].ID)

	mu.Lock()
	healthy = true
	mu.Unlock()
	var queued delivery
	e.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+rid+"/retry", e.token, nil, http.StatusAccepted, &queued)
	require.Equal(t, "pending", queued.Status)
	d = e.waitDelivery(w.ID, rid, "succeeded")
	require.Equal(t, 3, d.Attempts, "the retry is the third attempt")
	reqs := rcv.of(rid)
	require.Len(t, reqs, 3)
	for _, q := range reqs {
		require.Equal(t, string(reqs[0].body), string(q.body), "a retry sends the same body")
		verifyHook(t, q, w.Secret)
	}
	e.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+rid+"/retry", e.token, nil, http.StatusConflict, nil)
	e.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/nope/retry", e.token, nil, http.StatusNotFound, nil)

	var ping delivery
	e.do("POST", "/v1/webhooks/"+w.ID+"/test", e.token, nil, http.StatusOK, &ping)
	require.Equal(t, "succeeded", ping.Status)
	require.Equal(t, "webhook.test", ping.Type)
	q := rcv.waitFor(t, ping.ID)
	verifyHook(t, q, w.Secret)
	var body hookBody
	require.NoError(t, json.Unmarshal(q.body, &body))
	require.Equal(t, "webhook.test", body.Type)
	require.Len(t, e.deliveries(w.ID, ""), 2, "the reward's delivery and the ping")

	var audit struct {
		Entries []struct {
			Action string `json:"action"`
		} `json:"entries"`
	}
	e.do("GET", "/v1/audit?target_type=webhook", e.token, nil, http.StatusOK, &audit)
	var actions []string
	for _, en := range audit.Entries {
		actions = append(actions, en.Action)
	}
	require.Subset(t, actions, []string{"webhook.create", "webhook.delivery_retry", "webhook.test"})
}

// backlogOf reads the endpoint's campaign_webhook_backlog from /metrics; ok is false
// before the first sample.
func (c *client) backlogOf(id string) (n float64, ok bool) {
	c.t.Helper()
	sample := `campaign_webhook_backlog{webhook="` + id + `"}`
	for line := range strings.SplitSeq(string(c.request("GET", "/metrics", "", nil).body), "\n") {
		if v, found := strings.CutPrefix(line, sample+" "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(c.t, err)
			return f, true
		}
	}
	return 0, false
}

func TestWebhookDeadEndpointDoesNotSlowAHealthyOneOrTheRewardLoop(t *testing.T) {
	e := newEnvWith(t, webhookVars(map[string]string{"CAMPAIGN_WEBHOOK_TIMEOUT": "2s", "CAMPAIGN_WEBHOOK_RETRY_BASE": "1m"}))
	release := make(chan struct{})
	dead := newReceiver(t, func(string, int) int { <-release; return http.StatusOK }) // never answers in time
	t.Cleanup(func() { close(release) })                                              // before the receiver closes: cleanups run last first
	healthy := newReceiver(t, answerOK)
	wd := e.createHook(dead.URL, nil)
	wh := e.createHook(healthy.URL, nil)
	e.createCampaign(couponOnPurchase)

	const users = 150
	for i := range users {
		e.postEvent(map[string]any{"id": fmt.Sprintf("order-%d", i), "user_id": fmt.Sprintf("buyer-%d", i), "type": "purchase", "amount": 5}, http.StatusAccepted)
	}
	start := time.Now()
	e.waitEngineIdle(patience) // the reward loop did not wait for either endpoint
	t.Logf("engine idle after %s", time.Since(start))
	poll(t, patience, "the healthy endpoint got every reward", func() bool { return len(healthy.ids()) == users })
	t.Logf("healthy endpoint done after %s", time.Since(start))
	// Both backlogs as the metrics sample them: the healthy one empty, every notice of
	// the dead one waiting (none was answered).
	poll(t, patience, "backlogs: healthy 0, dead all", func() bool {
		h, ok1 := e.backlogOf(wh.ID)
		d, ok2 := e.backlogOf(wd.ID)
		return ok1 && ok2 && h == 0 && d == users
	})
	require.Empty(t, dead.ids(), "the dead endpoint answered nothing in time")
	t.Logf("backlogs: healthy 0, dead %d; attempts on the dead endpoint so far: %d", users, dead.count())
}

func TestWebhookTwoReplicasDeliverEachNoticeOnce(t *testing.T) {
	ns := bustest.Start(t)
	dbURL := pgtest.New(t)
	vars := webhookVars(map[string]string{
		"CAMPAIGN_HTTP_ADDR": "127.0.0.1:0", "NATS_URL": ns.ClientURL(), "DATABASE_URL": dbURL,
		"CAMPAIGN_JWT_SECRET": testSecret, "CAMPAIGN_ADMIN_PASSWORD": adminPassword, "CAMPAIGN_PARTITIONS": "8",
	})
	var apps []*App
	var clients []*client
	for i := range 2 {
		vars["CAMPAIGN_DATA_DIR"] = t.TempDir()
		app := startApp(t, vars)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, app.Close(ctx))
		})
		c := newClient(t, "http://"+app.http.Addr(), ns.ClientURL())
		c.token = c.login("admin", adminPassword)
		if i == 0 {
			c.newAPIKey("storefront")
		} else {
			c.apiKey = clients[0].apiKey
		}
		apps, clients = append(apps, app), append(clients, c)
	}
	rcv := newReceiver(t, answerOK)
	w := clients[0].createHook(rcv.URL, nil)
	clients[0].do("POST", "/v1/campaigns", clients[0].token, couponOnPurchase, http.StatusCreated, nil)
	for _, app := range apps {
		poll(t, patience, "the endpoint and the campaign reached both replicas", func() bool {
			_, ok := app.keys.CheckAPIKey(clients[0].apiKey)
			return ok && len(app.dispatcher.Running()) == 1 && len(app.engine.Rules().Campaigns()) == 1
		})
	}

	const n = 200
	for i := range n {
		clients[i%2].postEvent(map[string]any{"id": fmt.Sprintf("order-%d", i), "user_id": fmt.Sprintf("twin-%d", i), "type": "purchase", "amount": 5}, http.StatusAccepted)
	}
	clients[0].waitEngineIdle(patience)
	poll(t, patience, "every reward delivered", func() bool { return len(rcv.ids()) == n })
	js := clients[0].jetStream()
	var info *jetstream.ConsumerInfo
	poll(t, patience, "every delivery acknowledged", func() bool {
		c, err := js.Consumer(t.Context(), bus.RewardsStream, bus.WebhookConsumerName(w.ID))
		require.NoError(t, err)
		info = c.CachedInfo()
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	for id, k := range rcv.ids() {
		require.Equal(t, 1, k, "reward %s delivered %d times", id, k)
	}
	require.Equal(t, n, rcv.count(), "no attempt was made twice")
	require.Zero(t, info.NumRedelivered, "no notice was handed to a replica twice")
	fetched := 0
	for _, app := range apps {
		v := metricValue(t, &client{t: t, base: "http://" + app.http.Addr(), http: http.DefaultClient},
			`campaign_webhook_deliveries_total{outcome="delivered",webhook="`+w.ID+`"}`)
		t.Logf("replica delivered %.0f", v)
		fetched += int(v)
	}
	require.Equal(t, n, fetched)
}

func TestWebhookKillNineMidDeliveryStillDeliversWithTheSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and kills a campaignd process")
	}
	var mu sync.Mutex
	var held string // the webhook-id whose first attempt is held while campaignd is killed
	arm := make(chan struct{})
	caught := make(chan string, 1)
	release := make(chan struct{})
	rcv := newReceiver(t, func(id string, n int) int {
		select {
		case <-arm:
		default:
			return http.StatusOK // the probe
		}
		mu.Lock()
		first := held == ""
		if first {
			held = id
		}
		mu.Unlock()
		if first {
			caught <- id
			<-release // campaignd dies meanwhile
			return hangUp
		}
		return http.StatusOK
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	natsPort, httpPort := freePort(t), freePort(t)
	vars := webhookVars(map[string]string{
		"CAMPAIGN_HTTP_ADDR": "127.0.0.1:" + strconv.Itoa(httpPort), "CAMPAIGN_NATS_LISTEN": "127.0.0.1:" + strconv.Itoa(natsPort),
		"DATABASE_URL": pgtest.New(t), "CAMPAIGN_DATA_DIR": t.TempDir(), "CAMPAIGN_JWT_SECRET": testSecret,
		"CAMPAIGN_ADMIN_PASSWORD": adminPassword, "CAMPAIGN_PARTITIONS": "8", "CAMPAIGN_LOG_LEVEL": "warn", "CAMPAIGN_LOG_FORMAT": "text",
	})
	d := newDaemon(t, buildCampaignd(t), vars)
	d.start()
	c := newClient(t, d.base, "nats://"+vars["CAMPAIGN_NATS_LISTEN"], d.natsAuth()...)
	c.token = c.login("admin", adminPassword)
	c.newAPIKey("crash-test")
	w := c.createHook(rcv.URL, nil)
	c.do("POST", "/v1/campaigns", c.token, couponOnPurchase, http.StatusCreated, nil)
	poll(t, patience, "the probe purchase stored", func() bool {
		status, _ := c.raw("POST", "/v1/events", "key:"+c.apiKey, map[string]any{"id": "probe", "user_id": "probe", "type": "purchase", "amount": 1})
		return status == http.StatusAccepted || status == http.StatusOK
	})
	rcv.waitFor(t, c.rewardOf("probe", "coupon-on-purchase")) // key, campaign and endpoint live

	close(arm)
	const n = 20
	for i := range n {
		c.postEvent(map[string]any{"id": fmt.Sprintf("order-%d", i), "user_id": fmt.Sprintf("crash-%d", i), "type": "purchase", "amount": 5}, http.StatusAccepted)
	}
	var id string
	select {
	case id = <-caught:
	case <-time.After(patience):
		t.Fatal("no delivery reached the receiver")
	}
	// While its attempt is in flight the notice is not acknowledged: once the others are
	// delivered and acked, it is the one left pending in the endpoint's consumer. And a
	// notice is acked only once its delivery is recorded, so the others' records are
	// there the moment they are acked.
	var others []string
	for i := range n {
		if rid := c.rewardOf(fmt.Sprintf("crash-%d", i), "coupon-on-purchase"); rid != id {
			rcv.waitFor(t, rid)
			others = append(others, rid)
		}
	}
	js := c.jetStream()
	poll(t, patience, "only the held notice unacknowledged", func() bool {
		cons, err := js.Consumer(t.Context(), bus.RewardsStream, bus.WebhookConsumerName(w.ID))
		require.NoError(t, err)
		info := cons.CachedInfo()
		return info.NumPending == 0 && info.NumAckPending == 1
	})
	for _, rid := range others {
		var rec delivery
		c.do("GET", "/v1/webhooks/"+w.ID+"/deliveries/"+rid, c.token, nil, http.StatusOK, &rec)
		require.Equal(t, "succeeded", rec.Status, "an acknowledged delivery is recorded")
	}
	d.kill() // mid-delivery: the attempt of id is in flight
	close(release)
	d.start()

	got := rcv.waitFor(t, id)
	verifyHook(t, got, w.Secret)
	reqs := rcv.of(id)
	require.GreaterOrEqual(t, len(reqs), 2, "the interrupted delivery came again")
	require.Equal(t, hangUp, reqs[0].status, "the first attempt got no answer")
	require.Equal(t, string(reqs[0].body), string(got.body), "the same notice")
	for i := range n {
		rid := c.rewardOf(fmt.Sprintf("crash-%d", i), "coupon-on-purchase")
		rcv.waitFor(t, rid) // nothing is skipped
		c.waitDelivery(w.ID, rid, "succeeded")
	}
	require.Len(t, rcv.ids(), n+1, "the probe and every purchase's reward, each under its own id")
}

// TestWebhookEndpointReceivesWhatCameAfterItWasSavedAndNothingBefore: a reward granted
// before the endpoint was created is not delivered, the next one is; its consumer starts
// right after the stream's end read before the save (by sequence, not by a clock).
func TestWebhookEndpointReceivesWhatCameAfterItWasSavedAndNothingBefore(t *testing.T) {
	e := newEnvWith(t, webhookVars(nil))
	e.createCampaign(couponOnPurchase)
	before := e.purchase("alice", "order-before")
	require.NotEmpty(t, before)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	rewards, err := e.jetStream().Stream(ctx, bus.RewardsStream)
	require.NoError(t, err)
	var end uint64
	poll(t, patience, "the earlier reward on REWARDS", func() bool {
		info, err := rewards.Info(ctx)
		require.NoError(t, err)
		end = info.State.LastSeq
		return end >= 1
	})

	rcv := newReceiver(t, answerOK)
	w := e.createHook(rcv.URL, map[string]any{"notices": []string{"reward"}})
	cons, err := e.jetStream().Consumer(ctx, bus.RewardsStream, bus.WebhookConsumerName(w.ID))
	require.NoError(t, err)
	cfg := cons.CachedInfo().Config
	require.Equal(t, jetstream.DeliverByStartSequencePolicy, cfg.DeliverPolicy)
	require.Equal(t, end+1, cfg.OptStartSeq, "starts right after the stream's end when the endpoint was saved")

	after := e.purchase("bob", "order-after")
	rcv.waitFor(t, after)
	require.Empty(t, rcv.of(before), "a reward granted before the endpoint existed is not delivered")
}
