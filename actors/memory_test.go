package actors

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// BenchmarkResidentUserMemory reports the live heap per resident user actor (actor,
// state, routing entry) after each of b.N users sent a purchase that one campaign
// rewarded. Run: go test ./actors -run '^$' -bench ResidentUserMemory -benchtime 20000x
func BenchmarkResidentUserMemory(b *testing.B) {
	h := newHarnessConfig(b, nil, Config{IdleTimeout: -1})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	const chunk = 1000
	for i := 0; i < b.N; i += chunk {
		var evs []*event.Event
		for u := i; u < min(i+chunk, b.N); u++ {
			evs = append(evs, &event.Event{ID: fmt.Sprintf("m-%d", u), UserID: fmt.Sprintf("user-%d", u), Type: "purchase", Amount: 42, OccurredAt: time.Now().UTC()})
		}
		h.publish(evs...)
	}
	h.waitEvents(fmt.Sprintf("user-%d", b.N-1), 1)
	deadline := time.Now().Add(5 * time.Minute)
	for testutil.ToFloat64(h.engine.metrics.processed.WithLabelValues("applied")) < float64(b.N) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond) // let acks and replies drain
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(h.engine.Resident()), "B/user")
	b.ReportMetric(float64(h.engine.Resident()), "resident")
}
