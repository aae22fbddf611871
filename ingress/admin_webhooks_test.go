package ingress

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/webhook"
	"github.com/campaignmanager/campaignmanager/ingress/admin"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// webhookBus is what withWebhooks gave the admin API: the bus side (an embedded NATS) and
// the sender, with private addresses allowed unless strict.
type webhookBus struct {
	js  jetstream.JetStream
	bus *bus.Webhooks
}

// withWebhooks gives the admin API its webhook routes over a real embedded JetStream and
// a real sender (private addresses allowed unless strict), and returns what it made.
func withWebhooks(t *testing.T, strict bool, out **webhookBus) envOption {
	t.Helper()
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	wb, err := bus.OpenWebhooks(ctx, js, bus.WebhookConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		*out = &webhookBus{js: js, bus: wb}
	}
	sender := webhook.NewSender(webhook.SenderConfig{AllowPrivate: !strict, Timeout: 5 * time.Second})
	return func(ad *admin.Deps, _ *Deps) { ad.Webhooks, ad.WebhookSender = webhook.Endpoints{Bus: wb}, sender }
}

// TestWebhookAnswersMatchTheContract walks every webhook route through env.do, so each
// answer is checked against /openapi.json: create, list with pages, get, patch with
// If-Match, rotation, a test ping to a receiver, deliveries, a retry, delete.
func TestWebhookAnswersMatchTheContract(t *testing.T) {
	t.Parallel()
	var wb *webhookBus
	env := newTestEnv(t, withWebhooks(t, false, &wb))
	adm, viewer := env.tokens["admin"], env.tokens["viewer"]
	var mu sync.Mutex
	var got []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("webhook-id")+" "+string(body))
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	created := env.expect(t, 201, "POST", "/v1/webhooks", adm, map[string]any{"url": rcv.URL, "description": "shop",
		"filter": map[string]any{"notices": []string{"reward", "tier_changed"}, "reward_types": []string{"coupon"}}})
	id := created["id"].(string)
	if !strings.HasPrefix(created["secret"].(string), "whsec_") || created["enabled"] != true {
		t.Fatalf("created = %v", created)
	}
	env.expect(t, 201, "POST", "/v1/webhooks", adm, map[string]any{"url": rcv.URL + "/second", "enabled": false})
	env.expect(t, 403, "POST", "/v1/webhooks", viewer, map[string]any{"url": rcv.URL})
	for name, body := range map[string]any{
		"no url":                 map[string]any{"description": "x"},
		"unknown notice":         map[string]any{"url": rcv.URL, "filter": map[string]any{"notices": []string{"birthday"}}},
		"types without rewards":  map[string]any{"url": rcv.URL, "filter": map[string]any{"notices": []string{"tier_changed"}, "reward_types": []string{"coupon"}}},
		"bad campaign id":        map[string]any{"url": rcv.URL, "filter": map[string]any{"campaigns": []string{"Not A Slug"}}},
		"unknown field":          map[string]any{"url": rcv.URL, "secret": "whsec_x"},
		"a relative url":         map[string]any{"url": "/hooks"},
		"repeated reward type":   map[string]any{"url": rcv.URL, "filter": map[string]any{"reward_types": []string{"coupon", "coupon"}}},
		"a description too long": map[string]any{"url": rcv.URL, "description": strings.Repeat("x", 1001)},
	} {
		t.Run(name, func(t *testing.T) { env.expect(t, 400, "POST", "/v1/webhooks", adm, body) })
	}

	page := env.expect(t, 200, "GET", "/v1/webhooks?limit=1", adm, nil)
	if len(page["webhooks"].([]any)) != 1 || page["next_cursor"] == "" {
		t.Fatalf("page = %v", page)
	}
	env.expect(t, 200, "GET", "/v1/webhooks?cursor="+page["next_cursor"].(string), adm, nil)
	env.expect(t, 400, "GET", "/v1/webhooks?limit=0", adm, nil)
	one := env.expect(t, 200, "GET", "/v1/webhooks/"+id, adm, nil)
	if _, leaked := one["secret"]; leaked {
		t.Fatalf("get shows the secret: %v", one)
	}
	env.expect(t, 404, "GET", "/v1/webhooks/wh_nope", adm, nil)
	env.expect(t, 412, "PATCH", "/v1/webhooks/"+id, adm, map[string]any{"description": "x"}, "If-Match", `"7"`)
	patched := env.expect(t, 200, "PATCH", "/v1/webhooks/"+id, adm, map[string]any{"description": "e-mails"}, "If-Match", `"1"`)
	if patched["version"] != float64(2) {
		t.Fatalf("patched = %v", patched)
	}
	env.expect(t, 400, "PATCH", "/v1/webhooks/"+id, adm, map[string]any{"url": "ftp://x"})
	env.expect(t, 404, "PATCH", "/v1/webhooks/wh_nope", adm, map[string]any{"enabled": true})

	rotated := env.expect(t, 200, "POST", "/v1/webhooks/"+id+"/rotate-secret?overlap=1h", adm, nil)
	if rotated["secret"] == created["secret"] || rotated["previous_secret_until"] == nil {
		t.Fatalf("rotated = %v", rotated)
	}
	env.expect(t, 400, "POST", "/v1/webhooks/"+id+"/rotate-secret?overlap=30d", adm, nil)
	env.expect(t, 404, "POST", "/v1/webhooks/wh_nope/rotate-secret", adm, nil)

	ping := env.expect(t, 200, "POST", "/v1/webhooks/"+id+"/test", adm, nil)
	if ping["status"] != "succeeded" || ping["type"] != "webhook.test" || ping["last_status"] != float64(200) {
		t.Fatalf("ping = %v", ping)
	}
	mu.Lock()
	if len(got) != 1 || !strings.HasPrefix(got[0], ping["id"].(string)+" ") || !strings.Contains(got[0], `"type":"webhook.test"`) {
		t.Errorf("the receiver got %q", got)
	}
	mu.Unlock()
	env.expect(t, 404, "POST", "/v1/webhooks/wh_nope/test", adm, nil)

	// A failed delivery of a notice in REWARDS, as an engine records it.
	notice := bus.RewardNotice("summer", "alice", "rw_1", "", []byte(`{"id":"rw_1","type":"coupon"}`))
	ack, err := wb.js.PublishMsg(t.Context(), notice.Msg())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	if err := env.store.RecordDeliveries(t.Context(), []persistence.Delivery{{WebhookID: id, ID: "rw_1", Type: "reward.granted",
		Subject: "rewards.summer.alice", Stream: bus.RewardsStream, StreamSeq: ack.Sequence, Status: persistence.DeliveryFailed,
		Attempts: 8, LastStatus: 503, LastError: "HTTP 503: busy", LastLatency: 3 * time.Millisecond, LastAttemptAt: &at}}); err != nil {
		t.Fatal(err)
	}
	list := env.expect(t, 200, "GET", "/v1/webhooks/"+id+"/deliveries?status=failed", adm, nil)
	if ds := list["deliveries"].([]any); len(ds) != 1 || ds[0].(map[string]any)["id"] != "rw_1" {
		t.Fatalf("failed deliveries = %v", list)
	}
	env.expect(t, 200, "GET", "/v1/webhooks/"+id+"/deliveries?limit=1", adm, nil)
	env.expect(t, 400, "GET", "/v1/webhooks/"+id+"/deliveries?status=lost", adm, nil)
	env.expect(t, 404, "GET", "/v1/webhooks/wh_nope/deliveries", adm, nil)
	env.expect(t, 200, "GET", "/v1/webhooks/"+id+"/deliveries/rw_1", adm, nil)
	env.expect(t, 404, "GET", "/v1/webhooks/"+id+"/deliveries/rw_2", adm, nil)
	env.expect(t, 409, "POST", "/v1/webhooks/"+id+"/deliveries/"+ping["id"].(string)+"/retry", adm, nil)
	queued := env.expect(t, 202, "POST", "/v1/webhooks/"+id+"/deliveries/rw_1/retry", adm, nil)
	if queued["status"] != "pending" {
		t.Fatalf("queued = %v", queued)
	}
	env.expect(t, 409, "POST", "/v1/webhooks/"+id+"/deliveries/rw_1/retry", adm, nil)
	env.expect(t, 404, "POST", "/v1/webhooks/"+id+"/deliveries/rw_2/retry", adm, nil)
	retries, err := wb.js.Stream(t.Context(), bus.WebhooksStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := retries.Info(t.Context()); err != nil || info.State.Msgs != 1 {
		t.Fatalf("WEBHOOKS holds %v (%v), want the one retry", info, err)
	}

	env.expect(t, 200, "DELETE", "/v1/webhooks/"+id, adm, nil)
	env.expect(t, 404, "DELETE", "/v1/webhooks/"+id, adm, nil)
	if _, err := wb.bus.Bucket().Get(t.Context(), id); err == nil {
		t.Error("the deleted endpoint is still in the bucket")
	}
}

// TestWebhookURLsOnPrivateAddressesAreRefused checks the refusal names the field url and
// says how to allow them.
func TestWebhookURLsOnPrivateAddressesAreRefused(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, withWebhooks(t, true, nil))
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://192.168.1.10/hook", "http://localhost/hook", "http://169.254.169.254/"} {
		out := env.expect(t, 400, "POST", "/v1/webhooks", env.tokens["admin"], map[string]any{"url": u})
		if out["field"] != "url" || !strings.Contains(out["detail"].(string), "CAMPAIGN_WEBHOOK_ALLOW_PRIVATE") {
			t.Errorf("%s: problem = %v", u, out)
		}
	}
}
