package actors

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// BenchmarkResidentUserMemory reports the live heap each user held in memory adds, after
// each of b.N users (past a thousand that warm the pools) sent a purchase that one
// campaign rewarded:
//
//   - actor: every user has a running actor (idle actors kept);
//   - compact: the idle actors were stopped and the users' committed state is held in
//     compact form (the steady state of a large, mostly idle user base).
//
// The in-process NATS server's own per-message and per-subject state (stream index,
// dedup ids: ~1.4 KiB per user with one event) is not the engine's: the EVENTS and
// REWARDS streams are deleted before measuring. Run:
//
//	go test ./actors -run '^$' -bench ResidentUserMemory -benchtime 100000x
//
// RESIDENT_HEAP_PROFILE=<file> writes the live heap at the measurement point, every
// allocation of the measured users sampled (slower: 20000x is enough), for
// go tool pprof -sample_index=inuse_space -top <file>.
func BenchmarkResidentUserMemory(b *testing.B) {
	for _, tc := range []struct {
		name string
		idle time.Duration
	}{{"actor", -1}, {"compact", 200 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) { residentMemory(b, tc.idle) })
	}
}

func residentMemory(b *testing.B, idle time.Duration) {
	h := newHarnessConfig(b, nil, Config{IdleTimeout: idle})
	deadline := time.Now().Add(5 * time.Minute)
	// users sends one purchase for each of the users from..to-1 and waits until all are
	// applied and, with an idle timeout, their actors stopped.
	users := func(from, to int) {
		const chunk = 1000
		for i := from; i < to; i += chunk {
			var evs []*event.Event
			for u := i; u < min(i+chunk, to); u++ {
				evs = append(evs, &event.Event{ID: fmt.Sprintf("m-%d", u), UserID: fmt.Sprintf("user-%d", u), Type: "purchase", Amount: 42, OccurredAt: time.Now().UTC()})
			}
			h.publish(evs...)
		}
		for testutil.ToFloat64(h.engine.metrics.processed.WithLabelValues("applied")) < float64(to) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d events applied within 5 minutes", int(testutil.ToFloat64(h.engine.metrics.processed.WithLabelValues("applied"))), to)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if idle > 0 {
			for h.engine.Actors() > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		time.Sleep(200 * time.Millisecond) // let acks and replies drain
	}
	// A first thousand users warm the pools and buffers that do not grow with users
	// (NATS's block buffers, pgx's statement cache, JSON encoders): the figure is the
	// growth per user past them.
	const warm = 1000
	users(0, warm)
	if os.Getenv("RESIDENT_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	runtime.GC()
	runtime.GC() // twice: sync.Pool keeps a victim generation
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	users(warm, warm+b.N)
	b.StopTimer()
	for _, s := range []string{bus.EventsStream, bus.RewardsStream} {
		if err := h.js.DeleteStream(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if path := os.Getenv("RESIDENT_HEAP_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/user")
	b.ReportMetric(float64(h.engine.Resident()), "resident")
	b.ReportMetric(float64(h.engine.Actors()), "actors")
}
