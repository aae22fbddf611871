package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/actors/webhook"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/persistence"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const patience = 20 * time.Second

// poll calls cond until it is true, failing the test after patience.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// verify checks a delivery as a receiver following the Standard Webhooks spec does,
// written from the spec and independent of the package's signer: the key is the base64
// after whsec_, the signed content id.timestamp.body, each space-separated entry
// v1,<base64 HMAC-SHA256>; any entry matching is enough. It returns how many match.
func verify(t *testing.T, secret string, h http.Header, body []byte) int {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	require.NotEmpty(t, id)
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err, "webhook-timestamp is integer seconds")
	require.InDelta(t, time.Now().Unix(), sec, 300, "webhook-timestamp within 5 minutes")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	n := 0
	for entry := range strings.SplitSeq(h.Get("webhook-signature"), " ") {
		version, sig, ok := strings.Cut(entry, ",")
		require.True(t, ok, "entry %q is version,signature", entry)
		require.Equal(t, "v1", version)
		raw, err := base64.StdEncoding.DecodeString(sig)
		require.NoError(t, err)
		if hmac.Equal(raw, want) {
			n++
		}
	}
	return n
}

// received is one request a receiver got.
type received struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver is an HTTP endpoint on 127.0.0.1 answering what answer says for the n-th
// request (1-based) of a webhook-id.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
	byID map[string]int
}

func newReceiver(t testing.TB, answer func(id string, n int, w http.ResponseWriter)) *receiver {
	r := &receiver{byID: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.reqs = append(r.reqs, received{at: time.Now(), header: req.Header.Clone(), body: body})
		r.byID[id]++
		n := r.byID[id]
		r.mu.Unlock()
		answer(id, n, w)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// total is how many requests the receiver got.
func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func (r *receiver) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

func ok(string, int, http.ResponseWriter) {}

// rig is NATS, Postgres and the bus side of webhooks for one test.
type rig struct {
	t     testing.TB
	js    jetstream.JetStream
	store *persistence.Store
	bus   *bus.Webhooks
}

func newRig(t testing.TB) *rig {
	t.Helper()
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 4})
	require.NoError(t, err)
	store, err := persistence.Open(ctx, pgtest.New(t))
	require.NoError(t, err)
	t.Cleanup(store.Close)
	wb, err := bus.OpenWebhooks(ctx, js, bus.WebhookConsumerConfig{AckWait: 10 * time.Second})
	require.NoError(t, err)
	return &rig{t: t, js: js, store: store, bus: wb}
}

// endpoint creates an endpoint for url with filter, as the admin API does: Postgres,
// then its consumers and the bucket.
func (r *rig) endpoint(url string, filter persistence.WebhookFilter) persistence.Webhook {
	r.t.Helper()
	ctx := r.t.Context()
	w, err := r.store.CreateWebhook(ctx, persistence.Webhook{URL: url, Enabled: true, Filter: filter}, "test")
	require.NoError(r.t, err)
	r.put(w)
	return w
}

func (r *rig) put(w persistence.Webhook) {
	r.t.Helper()
	value, err := json.Marshal(&w)
	require.NoError(r.t, err)
	require.NoError(r.t, r.bus.Put(r.t.Context(), bus.WebhookSpec{ID: w.ID, Kinds: w.Filter.Kinds(), Campaigns: w.Filter.Campaigns, Since: w.UpdatedAt}, value))
}

// dispatcher starts a Dispatcher (one replica's) with cfg and private addresses allowed.
func (r *rig) dispatcher(cfg webhook.Config, timeout time.Duration) *webhook.Dispatcher {
	r.t.Helper()
	d, err := webhook.New(webhook.Deps{Bus: r.bus, Store: r.store, Sender: webhook.NewSender(webhook.SenderConfig{AllowPrivate: true, Timeout: timeout}),
		Logger: slog.New(slog.DiscardHandler)}, cfg)
	require.NoError(r.t, err)
	require.NoError(r.t, d.Start(r.t.Context()))
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(r.t, d.Close(ctx))
	})
	select {
	case <-d.Loaded():
	case <-time.After(patience):
		r.t.Fatal("dispatcher did not load the bucket")
	}
	return d
}

// reward publishes a reward notice of campaign for user as the engine does.
func (r *rig) reward(campaign, user, id, typ string) {
	r.t.Helper()
	body := fmt.Appendf(nil, `{"id":%q,"user_id":%q,"campaign_id":%q,"type":%q,"points":10}`, id, user, campaign, typ)
	n := bus.RewardNotice(campaign, user, id, "", body)
	_, err := r.js.PublishMsg(r.t.Context(), n.Msg())
	require.NoError(r.t, err)
}

// backlog is what the endpoint id's consumers hold: notices not handed out yet, and
// handed out but not acknowledged.
func (r *rig) backlog(id string) uint64 {
	r.t.Helper()
	var total uint64
	for _, stream := range bus.WebhookStreams {
		c, err := r.js.Consumer(r.t.Context(), stream, bus.WebhookConsumerName(id))
		if err != nil {
			continue
		}
		ci := c.CachedInfo()
		total += ci.NumPending + uint64(ci.NumAckPending)
	}
	return total
}

func (r *rig) delivery(webhookID, id string) persistence.Delivery {
	r.t.Helper()
	var d persistence.Delivery
	poll(r.t, "delivery "+id+" recorded", func() bool {
		var err error
		d, err = r.store.GetDelivery(r.t.Context(), webhookID, id)
		return err == nil
	})
	return d
}

func TestDeliveriesAreSignedPerStandardWebhooksWithBothSecretsDuringARotation(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, ok)
	w := r.endpoint(rcv.URL, persistence.WebhookFilter{})
	r.dispatcher(webhook.Config{}, 5*time.Second)

	r.reward("summer", "alice", "rwd_1", "points")
	poll(t, "the reward delivered", func() bool { return rcv.count("rwd_1") == 1 })
	got := rcv.all()[0]
	require.Equal(t, 1, verify(t, w.Secret, got.header, got.body))
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	var body struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.body, &body))
	require.Equal(t, "reward.granted", body.Type)
	require.False(t, body.Timestamp.IsZero())
	require.JSONEq(t, `{"id":"rwd_1","user_id":"alice","campaign_id":"summer","type":"points","points":10}`, string(body.Data))
	d := r.delivery(w.ID, "rwd_1")
	require.Equal(t, persistence.DeliverySucceeded, d.Status)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, 200, d.LastStatus)

	// A rotation with an overlap: both the new and the old secret sign.
	rotated, err := r.store.RotateWebhookSecret(t.Context(), w.ID, time.Hour, "test")
	require.NoError(t, err)
	r.put(rotated)
	poll(t, "the rotation reached the dispatcher", func() bool {
		r.reward("summer", "alice", "rwd_probe_"+strconv.Itoa(len(rcv.all())), "points")
		last := rcv.all()[len(rcv.all())-1]
		return verify(t, rotated.Secret, last.header, last.body) == 1
	})
	last := rcv.all()[len(rcv.all())-1]
	require.Len(t, strings.Split(last.header.Get("webhook-signature"), " "), 2)
	require.Equal(t, 1, verify(t, w.Secret, last.header, last.body), "the old secret still signs")
	require.Equal(t, 1, verify(t, rotated.Secret, last.header, last.body), "the new secret signs")
}

func TestFailedAttemptsComeAgainWithGrowingGapsAndTheSameID(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, func(_ string, n int, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	w := r.endpoint(rcv.URL, persistence.WebhookFilter{})
	r.dispatcher(webhook.Config{RetryBase: 300 * time.Millisecond}, 5*time.Second)

	r.reward("summer", "bob", "rwd_retry", "points")
	poll(t, "three attempts", func() bool { return rcv.count("rwd_retry") == 3 })
	reqs := rcv.all()
	require.Len(t, reqs, 3)
	for _, q := range reqs {
		require.Equal(t, "rwd_retry", q.header.Get("webhook-id"))
		require.Equal(t, 1, verify(t, w.Secret, q.header, q.body))
		require.Equal(t, string(reqs[0].body), string(q.body), "every attempt carries the same body")
	}
	gap1, gap2 := reqs[1].at.Sub(reqs[0].at), reqs[2].at.Sub(reqs[1].at)
	t.Logf("gaps between attempts: %s, %s", gap1, gap2)
	require.GreaterOrEqual(t, gap1, 240*time.Millisecond, "the first retry waits the base, less 20 % jitter at most")
	require.Greater(t, gap2, gap1*3/2, "the gaps grow: the second is 4 times the base, ±20 %")
	poll(t, "the record shows the third attempt succeeded", func() bool {
		d, err := r.store.GetDelivery(t.Context(), w.ID, "rwd_retry")
		return err == nil && d.Status == persistence.DeliverySucceeded && d.Attempts == 3
	})
}

func TestAnEndpointAnswering410IsDisabledAndKeepsItsNoticesUntilEnabled(t *testing.T) {
	r := newRig(t)
	var gone atomic.Bool
	gone.Store(true)
	rcv := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
		}
	})
	w := r.endpoint(rcv.URL, persistence.WebhookFilter{})
	d := r.dispatcher(webhook.Config{RetryBase: 50 * time.Millisecond}, 5*time.Second)

	r.reward("summer", "carol", "rwd_gone", "points")
	poll(t, "the endpoint disabled", func() bool {
		cur, err := r.store.GetWebhook(t.Context(), w.ID)
		return err == nil && !cur.Enabled && strings.Contains(cur.DisabledReason, "410")
	})
	poll(t, "the bucket says disabled", func() bool {
		value, err := r.bus.Bucket().Get(t.Context(), w.ID)
		return err == nil && strings.Contains(string(value), `"enabled":false`)
	})
	poll(t, "the endpoint's stage stopped", func() bool { return !slices.Contains(d.Running(), w.ID) })
	seen := len(rcv.all())
	r.reward("summer", "carol", "rwd_after", "points")
	poll(t, "rwd_after waits in the endpoint's consumer", func() bool { return r.backlog(w.ID) >= 2 })
	require.Equal(t, seen, len(rcv.all()), "a disabled endpoint gets nothing: no stage delivers to it")

	// Enabled again, it gets what waited, the refused notice included.
	gone.Store(false)
	_, enabled, err := r.store.ModifyWebhook(t.Context(), w.ID, "test", "webhook.update", func(w *persistence.Webhook) error {
		w.Enabled, w.DisabledReason = true, ""
		return nil
	})
	require.NoError(t, err)
	r.put(enabled)
	poll(t, "both notices delivered after the endpoint is enabled", func() bool {
		d1, err1 := r.store.GetDelivery(t.Context(), w.ID, "rwd_gone")
		d2, err2 := r.store.GetDelivery(t.Context(), w.ID, "rwd_after")
		return err1 == nil && err2 == nil && d1.Status == persistence.DeliverySucceeded && d2.Status == persistence.DeliverySucceeded
	})
	require.Equal(t, 1, rcv.count("rwd_after"))
}

func TestPrivateAddressesAreRefusedAtSaveAndAtConnect(t *testing.T) {
	rcv := newReceiver(t, ok)
	strict := webhook.NewSender(webhook.SenderConfig{Timeout: 2 * time.Second})
	for _, u := range []string{rcv.URL, "http://localhost:8080/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest",
		"http://192.168.0.1/", "http://100.64.0.1/", "http://0.0.0.0/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/"} {
		require.ErrorIs(t, strict.CheckURL(t.Context(), u), webhook.ErrPrivateAddress, u)
	}
	for _, u := range []string{"ftp://example.com/", "/relative", "http://user:pw@example.com/", "http://example.com/#frag", "http://"} {
		require.ErrorIs(t, strict.CheckURL(t.Context(), u), webhook.ErrBadURL, u)
	}
	require.NoError(t, strict.CheckURL(t.Context(), "https://93.184.215.14/hooks"))
	// At connect time too: a name that resolved to a public address at save may point
	// at a private one later; here the URL is private from the start.
	w := &persistence.Webhook{ID: "wh_x", URL: rcv.URL, Secret: persistence.NewWebhookSecret()}
	a := strict.Send(t.Context(), w, "rwd_1", []byte(`{}`))
	require.ErrorIs(t, a.Err, webhook.ErrPrivateAddress)
	require.Empty(t, rcv.all(), "nothing reached the private address")
	allowed := webhook.NewSender(webhook.SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	require.NoError(t, allowed.CheckURL(t.Context(), rcv.URL))
	require.True(t, allowed.Send(t.Context(), w, "rwd_1", []byte(`{}`)).OK())
}

func TestRedirectsAreNotFollowedAndBodiesAreReadUpToALimit(t *testing.T) {
	target := newReceiver(t, ok)
	rcv := newReceiver(t, func(id string, _ int, w http.ResponseWriter) {
		if id == "big" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
			return
		}
		w.Header().Set("Location", target.URL)
		w.WriteHeader(http.StatusFound)
	})
	s := webhook.NewSender(webhook.SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	w := &persistence.Webhook{ID: "wh_x", URL: rcv.URL, Secret: persistence.NewWebhookSecret()}
	a := s.Send(t.Context(), w, "redirect", []byte(`{}`))
	require.Equal(t, http.StatusFound, a.Status)
	require.False(t, a.OK())
	require.Empty(t, target.all(), "the redirect was not followed")
	a = s.Send(t.Context(), w, "big", []byte(`{}`))
	require.Equal(t, http.StatusBadRequest, a.Status)
	require.Less(t, len(a.Err.Error()), 400, "the error keeps only the start of the body")
}

func TestADeadEndpointDoesNotSlowAHealthyOne(t *testing.T) {
	r := newRig(t)
	release := make(chan struct{})
	dead := newReceiver(t, func(string, int, http.ResponseWriter) { <-release }) // never answers in time
	t.Cleanup(func() { close(release) })                                         // before the receiver closes (cleanups run last first)
	healthy := newReceiver(t, ok)
	wd := r.endpoint(dead.URL, persistence.WebhookFilter{})
	wh := r.endpoint(healthy.URL, persistence.WebhookFilter{})
	r.dispatcher(webhook.Config{Concurrency: 4, RetryBase: time.Minute}, 3*time.Second)

	const n = 200
	for i := range n {
		r.reward("summer", "dave", fmt.Sprintf("rwd_%d", i), "points")
	}
	poll(t, "the healthy endpoint got every notice", func() bool { return len(healthy.all()) == n })
	poll(t, "the healthy endpoint's backlog is empty", func() bool { return r.backlog(wh.ID) == 0 })
	require.Greater(t, r.backlog(wd.ID), uint64(n/2), "the dead endpoint's backlog waits")
	require.LessOrEqual(t, len(dead.all()), 4, "at most Concurrency attempts hang on the dead endpoint")
}

func TestTwoReplicasDeliverEachNoticeOnce(t *testing.T) {
	r := newRig(t)
	rcv := newReceiver(t, func(string, int, http.ResponseWriter) { time.Sleep(time.Millisecond) })
	w := r.endpoint(rcv.URL, persistence.WebhookFilter{})
	r.dispatcher(webhook.Config{}, 5*time.Second)
	r.dispatcher(webhook.Config{}, 5*time.Second)

	const n = 300
	for i := range n {
		r.reward("summer", "erin", fmt.Sprintf("rwd_%d", i), "points")
	}
	poll(t, "every notice delivered", func() bool { return len(rcv.all()) >= n })
	// Once every notice is acknowledged, none can come again.
	poll(t, "every notice acknowledged", func() bool { return r.backlog(w.ID) == 0 })
	require.Len(t, rcv.all(), n)
	for i := range n {
		require.Equal(t, 1, rcv.count(fmt.Sprintf("rwd_%d", i)))
	}
	info, err := r.js.Consumer(t.Context(), bus.RewardsStream, bus.WebhookConsumerName(w.ID))
	require.NoError(t, err)
	require.Zero(t, info.CachedInfo().NumRedelivered, "no notice was handed out twice")
}

func TestTheLastFailedAttemptIsRecordedFailedAndCanBeRetried(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	healthy := false
	rcv := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	w := r.endpoint(rcv.URL, persistence.WebhookFilter{RewardTypes: []string{"coupon"}})
	r.dispatcher(webhook.Config{MaxAttempts: 2, RetryBase: 50 * time.Millisecond}, 5*time.Second)

	r.reward("summer", "frank", "rwd_points", "points") // not selected by the filter
	r.reward("summer", "frank", "rwd_coupon", "coupon")
	poll(t, "the delivery failed", func() bool {
		d, err := r.store.GetDelivery(t.Context(), w.ID, "rwd_coupon")
		return err == nil && d.Status == persistence.DeliveryFailed
	})
	require.Equal(t, 2, rcv.count("rwd_coupon"))
	require.Equal(t, 0, rcv.count("rwd_points"), "filtered out")
	d := r.delivery(w.ID, "rwd_coupon")
	require.Equal(t, 2, d.Attempts)
	require.Equal(t, 503, d.LastStatus)
	require.Equal(t, bus.RewardsStream, d.Stream)

	mu.Lock()
	healthy = true
	mu.Unlock()
	_, err := r.store.RetryDelivery(t.Context(), w.ID, "rwd_coupon", "test")
	require.NoError(t, err)
	require.NoError(t, r.bus.Redeliver(t.Context(), w.ID, d.Stream, d.StreamSeq, d.Attempts))
	poll(t, "the retried delivery succeeded", func() bool {
		d, err := r.store.GetDelivery(t.Context(), w.ID, "rwd_coupon")
		return err == nil && d.Status == persistence.DeliverySucceeded && d.Attempts == 3
	})
	require.Equal(t, 3, rcv.count("rwd_coupon"))
}

// TestRetryAfterIsReadInSecondsOrAsAnHTTPDate: a 503 or 429's Retry-After sets the
// attempt's wait whether it gives seconds or a date (RFC 9110 §10.2.3); a past date, a
// negative or a malformed value asks for none.
func TestRetryAfterIsReadInSecondsOrAsAnHTTPDate(t *testing.T) {
	var value atomic.Value
	rcv := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) {
		w.Header().Set("Retry-After", value.Load().(func() string)())
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	s := webhook.NewSender(webhook.SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second})
	w := &persistence.Webhook{ID: "wh_ra", URL: rcv.URL, Secret: persistence.NewWebhookSecret()}
	for _, tc := range []struct {
		name     string
		header   func() string
		min, max time.Duration
	}{
		{"seconds", func() string { return "120" }, 120 * time.Second, 120 * time.Second},
		{"HTTP date", func() string { return time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat) }, 85 * time.Second, 91 * time.Second},
		{"date in the past", func() string { return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat) }, 0, 0},
		{"negative", func() string { return "-5" }, 0, 0},
		{"malformed", func() string { return "soon" }, 0, 0},
	} {
		value.Store(tc.header)
		a := s.Send(t.Context(), w, "rwd_ra", []byte(`{}`))
		require.Equal(t, http.StatusServiceUnavailable, a.Status, tc.name)
		require.GreaterOrEqual(t, a.RetryAfter, tc.min, tc.name)
		require.LessOrEqual(t, a.RetryAfter, tc.max, tc.name)
	}
}
