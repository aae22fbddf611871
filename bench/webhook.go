package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Webhook modes of a phase (Phase.Webhook).
const (
	// WebhookOff: no endpoint, or the bench endpoint disabled.
	WebhookOff = ""
	// WebhookOn: the bench endpoint enabled during the phase; the phase waits until it
	// has received every reward.
	WebhookOn = "on"
	// WebhookBacklog: the endpoint disabled during the phase, so the rewards pile up in
	// its consumer; then it is enabled and the backlog's delivery is timed.
	WebhookBacklog = "backlog"
)

// WebhookStats is what the bench's receiver got in a phase.
type WebhookStats struct {
	// Received counts deliveries of distinct notices; Duplicates the ones received again;
	// BadSignatures those whose webhook-signature did not verify (answered 401).
	Received      int64 `json:"received"`
	Duplicates    int64 `json:"duplicates"`
	BadSignatures int64 `json:"bad_signatures"`
	// Missing are the phase's rewards not received before the drain deadline.
	Missing int64 `json:"missing"`
	// Rate is notices received per second: from the phase's start (on) or from the
	// endpoint's enabling (backlog) to the last one received.
	Rate float64 `json:"rate"`
	// Latency runs from the reward's publication to REWARDS, right after its commit (the
	// body's timestamp: when the stream stored it), to its receipt.
	Latency Latency `json:"latency"`
	// FromCreated runs from the reward's created_at (set as its transaction is built, so
	// the commit itself is in it) to its receipt.
	FromCreated Latency `json:"from_created"`
}

// hookSink is the bench's webhook endpoint on 127.0.0.1: it verifies each delivery's
// signature as README documents it, answers 204, and keeps the phase's counts and the
// publication-to-receipt latency of each first delivery (and from created_at).
type hookSink struct {
	srv *http.Server
	ln  net.Listener
	URL string

	key atomic.Pointer[[]byte]

	mu       sync.Mutex
	seen     map[string]struct{}
	hist     *hdrhistogram.Histogram // from the body's timestamp (REWARDS stored it)
	created  *hdrhistogram.Histogram // from data.created_at
	from     time.Time
	last     time.Time
	received atomic.Int64
	dups     atomic.Int64
	bad      atomic.Int64
}

// startHookSink listens on a free loopback port and serves until Close.
func startHookSink() (*hookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookSink{ln: ln, URL: "http://" + ln.Addr().String() + "/hooks", seen: map[string]struct{}{}, hist: newHist(), created: newHist()}
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }() // ends with Close
	return h, nil
}

// Close stops the receiver.
func (h *hookSink) Close() { _ = h.srv.Close() }

// setSecret sets the whsec_ secret deliveries are verified with.
func (h *hookSink) setSecret(secret string) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return fmt.Errorf("webhook secret %q is not whsec_<base64>", secret)
	}
	h.key.Store(&key)
	return nil
}

// reset starts a phase's counts, measured from from.
func (h *hookSink) reset(from time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen, h.hist, h.created, h.from, h.last = map[string]struct{}{}, newHist(), newHist(), from, time.Time{}
	h.received.Store(0)
	h.dups.Store(0)
	h.bad.Store(0)
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !h.verify(r.Header, body) {
		h.bad.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			CreatedAt time.Time `json:"created_at"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	id := r.Header.Get("webhook-id")
	h.mu.Lock()
	if _, dup := h.seen[id]; dup {
		h.mu.Unlock()
		h.dups.Add(1)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.seen[id] = struct{}{}
	if !msg.Timestamp.IsZero() {
		_ = h.hist.RecordValue(min(max(now.Sub(msg.Timestamp).Microseconds(), 1), histMax))
	}
	if !msg.Data.CreatedAt.IsZero() {
		_ = h.created.RecordValue(min(max(now.Sub(msg.Data.CreatedAt).Microseconds(), 1), histMax))
	}
	h.last = now
	h.mu.Unlock()
	h.received.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// verify checks webhook-signature: any v1 entry equal to the base64 HMAC-SHA256 of
// id.timestamp.body.
func (h *hookSink) verify(hd http.Header, body []byte) bool {
	key := h.key.Load()
	if key == nil {
		return false
	}
	mac := hmac.New(sha256.New, *key)
	mac.Write([]byte(hd.Get("webhook-id") + "." + hd.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for sig := range strings.SplitSeq(hd.Get("webhook-signature"), " ") {
		if hmac.Equal([]byte(sig), want) {
			return true
		}
	}
	return false
}

// stats are the phase's counts; want is how many notices the phase granted.
func (h *hookSink) stats(want int64) WebhookStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := WebhookStats{Received: h.received.Load(), Duplicates: h.dups.Load(), BadSignatures: h.bad.Load(),
		Latency: Summarize(h.hist), FromCreated: Summarize(h.created)}
	s.Missing = max(want-s.Received, 0)
	if el := h.last.Sub(h.from).Seconds(); el > 0 {
		s.Rate = float64(s.Received) / el
	}
	return s
}

// waitReceived waits until the receiver has want notices, or until deadline.
func (h *hookSink) waitReceived(ctx context.Context, want int64, deadline time.Time) {
	for h.received.Load() < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// CreateWebhook creates an endpoint for url receiving rewards and returns its id and
// secret.
func (a *API) CreateWebhook(ctx context.Context, url string) (id, secret string, err error) {
	var out struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	_, err = a.do(ctx, "POST", "/v1/webhooks", map[string]any{"url": url, "description": "campaignbench receiver",
		"filter": map[string]any{"notices": []string{"reward"}}}, &out)
	if err == nil && (out.ID == "" || out.Secret == "") {
		err = errors.New("POST /v1/webhooks answered no id or secret")
	}
	return out.ID, out.Secret, err
}

// EnableWebhook turns the endpoint id on or off.
func (a *API) EnableWebhook(ctx context.Context, id string, on bool) error {
	_, err := a.do(ctx, "PATCH", "/v1/webhooks/"+id, map[string]any{"enabled": on}, nil)
	return err
}

// DeleteWebhook deletes the endpoint id.
func (a *API) DeleteWebhook(ctx context.Context, id string) error {
	_, err := a.do(ctx, "DELETE", "/v1/webhooks/"+id, nil, nil)
	return err
}

// usesWebhooks reports whether a phase of sc has an endpoint.
func usesWebhooks(sc Scenario) bool {
	for _, p := range sc.Phases {
		if p.Webhook != WebhookOff {
			return true
		}
	}
	return false
}

// prepareWebhook puts the bench endpoint in the state phase ph needs before it starts:
// created on first use (it then receives the rewards committed from now on), enabled
// for "on", disabled for "backlog" and for a phase without webhooks.
func (r *runner) prepareWebhook(ctx context.Context, ph Phase) error {
	if ph.Webhook == WebhookOff && r.hookID == "" {
		return nil
	}
	if r.hookID == "" {
		sink, err := startHookSink()
		if err != nil {
			return fmt.Errorf("webhook receiver: %w", err)
		}
		id, secret, err := r.api.CreateWebhook(ctx, sink.URL)
		if err != nil {
			sink.Close()
			return fmt.Errorf("create webhook (a campaignd of your own needs CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true): %w", err)
		}
		if err := sink.setSecret(secret); err != nil {
			sink.Close()
			return err
		}
		r.hook, r.hookID = sink, id
		fmt.Fprintf(r.opts.Stderr, "bench: webhook %s -> %s\n", id, sink.URL)
	}
	return r.api.EnableWebhook(ctx, r.hookID, ph.Webhook == WebhookOn)
}

// finishWebhook waits for the phase's notices at the receiver (for a backlog, after
// enabling the endpoint) and returns what it got; nil for a phase without webhooks.
func (r *runner) finishWebhook(ctx context.Context, ph Phase, tr *Tracker) (*WebhookStats, error) {
	switch ph.Webhook {
	case WebhookOn:
	case WebhookBacklog:
		r.hook.reset(time.Now())
		fmt.Fprintf(r.opts.Stderr, "bench: %s: enabling the endpoint, %d notices waiting\n", ph.Name, tr.rewards.Load())
		if err := r.api.EnableWebhook(ctx, r.hookID, true); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	want := tr.rewards.Load()
	r.hook.waitReceived(ctx, want, time.Now().Add(r.opts.Scenario.Drain))
	s := r.hook.stats(want)
	fmt.Fprintf(r.opts.Stderr, "bench: %s: webhook received %d of %d (%d again, %d bad signatures), %.0f notices/s, commit to received p50 %.1fms p99 %.1fms max %.1fms\n",
		ph.Name, s.Received, want, s.Duplicates, s.BadSignatures, s.Rate, s.Latency.P50, s.Latency.P99, s.Latency.Max)
	return &s, nil
}
