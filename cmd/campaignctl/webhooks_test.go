package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookLog is a webhook receiver on 127.0.0.1 that answers status and keeps the
// webhook-ids and types it got.
type hookLog struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	ids    []string
	bodies []string
}

func newHookLog(t *testing.T) *hookLog {
	h := &hookLog{status: http.StatusOK}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ids = append(h.ids, r.Header.Get("webhook-id"))
		h.bodies = append(h.bodies, string(body))
		w.WriteHeader(h.status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookLog) answer(status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = status
}

func (h *hookLog) got(substr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range h.bodies {
		if strings.Contains(b, substr) {
			return true
		}
	}
	return false
}

// waitUntil polls cond every 100ms for up to 30s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		<-tick.C
	}
}

// TestCLIWebhooks drives campaignctl webhooks against a real campaignd and a receiver:
// create (secret shown once), list, get, update, test ping, a delivery that fails for
// good and is listed and retried, rotation, delete.
func TestCLIWebhooks(t *testing.T) {
	server := startCampaignd(t, "CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true", "CAMPAIGN_WEBHOOK_MAX_ATTEMPTS=2",
		"CAMPAIGN_WEBHOOK_RETRY_BASE=100ms", "CAMPAIGN_WEBHOOK_TIMEOUT=3s")
	c := ctl{t: t, server: server, configDir: filepath.Join(t.TempDir(), "config")}
	c.must(exitOK, "login", "--username", "admin", "--password", adminPassword)
	rcv := newHookLog(t)

	r := c.must(exitOK, "webhooks", "create", "--url", rcv.URL, "--description", "shop e-mails", "--notice", "reward", "--reward-type", "coupon,free_shipping")
	id := regexp.MustCompile(`(?m)^ID:\s+(wh_\S+)$`).FindStringSubmatch(r.stdout)
	secret := regexp.MustCompile(`(?m)^Secret:\s+(whsec_\S+)$`).FindStringSubmatch(r.stdout)
	if id == nil || secret == nil || !strings.Contains(r.stderr, "only once") {
		t.Fatalf("create shows no id or secret:\n%s%s", r.stdout, r.stderr)
	}
	hook := id[1]
	if r := c.must(exitOK, "webhooks", "list"); !strings.Contains(r.stdout, hook) || !strings.Contains(r.stdout, "reward_types=coupon,free_shipping") {
		t.Errorf("list:\n%s", r.stdout)
	}
	if r := c.must(exitOK, "webhooks", "get", hook); strings.Contains(r.stdout, "whsec_") || !strings.Contains(r.stdout, "shop e-mails") {
		t.Errorf("get shows a secret or not the endpoint:\n%s", r.stdout)
	}
	if r := c.must(exitOK, "webhooks", "test", hook); !strings.Contains(r.stdout, "webhook.test") || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("test:\n%s", r.stdout)
	}
	c.must(exitUsage, "webhooks", "update", hook)
	c.must(exitOK, "webhooks", "update", hook, "--notice", "reward")
	c.must(exitError, "webhooks", "update", hook, "--notice", "birthday")
	c.must(exitNotFound, "webhooks", "get", "wh_nope")

	// A reward the endpoint refuses twice (the attempts' limit) is failed, listed, retried.
	rcv.answer(http.StatusServiceUnavailable)
	key := regexp.MustCompile(`(?m)^Key:\s+(\S+)$`).FindStringSubmatch(c.must(exitOK, "keys", "create", "--name", "shop").stdout)[1]
	active := activeCampaigns(t, server)
	liveAfter(t, server, active, c.must(exitOK, "campaigns", "apply", "-f", writeFile(t, "id: coupons\nname: Coupons\nstatus: active\nrule: event.type == \"purchase\"\nreward:\n  type: coupon\n")).stdout)
	postEvent(t, server, key, `{"id":"order-1","user_id":"alice","type":"purchase","amount":30}`)
	var rid string
	waitUntil(t, "the delivery failed", func() bool {
		r := c.run("", "webhooks", "deliveries", hook, "--status", "failed")
		m := regexp.MustCompile(`(?m)^(rw_\S+)\s+reward\.granted\s+failed\s+2\s+503`).FindStringSubmatch(r.stdout)
		if m != nil {
			rid = m[1]
		}
		return m != nil
	})
	rcv.answer(http.StatusOK)
	if r := c.must(exitOK, "webhooks", "retry", hook, rid); !strings.Contains(r.stdout, "queued again") {
		t.Errorf("retry:\n%s", r.stdout)
	}
	waitUntil(t, "the retried delivery succeeded", func() bool {
		return regexp.MustCompile(`(?m)^` + rid + `\s+reward\.granted\s+succeeded\s+3\s+200`).MatchString(c.run("", "webhooks", "deliveries", hook).stdout)
	})
	if !rcv.got(`"coupon_code"`) {
		t.Error("the reward's body holds no coupon_code")
	}
	c.must(exitError, "webhooks", "retry", hook, rid) // 409: it has not failed

	r = c.must(exitOK, "webhooks", "rotate-secret", hook, "--overlap", "1h")
	if !strings.Contains(r.stdout, "Previous secret signs until") || strings.Contains(r.stdout, secret[1]) {
		t.Errorf("rotate-secret:\n%s", r.stdout)
	}
	c.must(exitOK, "-o", "json", "webhooks", "deliveries", hook)
	c.must(exitOK, "webhooks", "delete", hook)
	c.must(exitNotFound, "webhooks", "get", hook)
}
