package main

import (
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

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// The webhook delivery through a running campaignd: endpoints made over the admin API, a
// receiver that is an HTTP server of the test on 127.0.0.1, rewards from events posted
// to ingest.

// hookRequest is one request a receiver got, and the status it answered.
type hookRequest struct {
	at     time.Time
	header http.Header
	body   []byte
	status int
}

// receiver is a webhook endpoint on 127.0.0.1: answer gives the status of the n-th
// request (1-based) of a webhook-id; it may block (a slow or dead endpoint).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
	byID map[string][]hookRequest
}

func newReceiver(t *testing.T, answer func(id string, n int) int) *receiver {
	t.Helper()
	r := &receiver{byID: map[string][]hookRequest{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		n := len(r.byID[id]) + 1
		r.mu.Unlock()
		status := answer(id, n)
		got := hookRequest{at: time.Now(), header: req.Header.Clone(), body: body, status: status}
		r.mu.Lock()
		r.reqs = append(r.reqs, got)
		r.byID[id] = append(r.byID[id], got)
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func answerOK(string, int) int { return http.StatusOK }

// of returns the requests of webhook-id id, in arrival order.
func (r *receiver) of(id string) []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.byID[id]...)
}

// ids are the webhook-ids the receiver answered 2xx, with how many such answers.
func (r *receiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for id, reqs := range r.byID {
		for _, q := range reqs {
			if q.status < 300 {
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
			if q.status < 300 {
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
