package webhook_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/webhook"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// BenchmarkDelivery measures one dispatcher delivering reward notices that wait in
// REWARDS to one endpoint on 127.0.0.1 (signed, acked, recorded), without the reward
// loop: b.N notices are published first, then the endpoint is enabled and timed until
// its receiver has them all. It reports notices/s.
func BenchmarkDelivery(b *testing.B) {
	r := newRig(b)
	rcv := newReceiver(b, ok)
	w, err := r.store.CreateWebhook(b.Context(), persistence.Webhook{URL: rcv.URL, Enabled: false}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	r.put(w) // its consumers exist from now on, the endpoint disabled
	for i := range b.N {
		user := fmt.Sprintf("u%d", i%1000)
		body := fmt.Appendf(nil, `{"id":"rw_%d","user_id":%q,"campaign_id":"summer","type":"points","points":10}`, i, user)
		n := bus.RewardNotice("summer", user, fmt.Sprintf("rw_%d", i), "", body)
		if _, err := r.js.PublishMsgAsync(n.Msg()); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-r.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing did not complete")
	}
	r.dispatcher(webhook.Config{}, 10*time.Second)
	b.ResetTimer()
	start := time.Now()
	_, w, err = r.store.ModifyWebhook(b.Context(), w.ID, "bench", "webhook.update", func(w *persistence.Webhook) error {
		w.Enabled = true
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	r.put(w)
	deadline := time.Now().Add(5 * time.Minute)
	for rcv.total() < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d notices received in 5 minutes", rcv.total(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "notices/s")
}
