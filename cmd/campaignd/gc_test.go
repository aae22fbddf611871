package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGCRespectsGOGCAndGOMEMLIMIT(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

	if p, l := tuneGC(env(map[string]string{"GOGC": "50"})); p != -2 || l != -1 {
		t.Fatalf("GOGC set: tuneGC changed the collector (%d, %d)", p, l)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set: GC percent is %d, want it left at 100", got)
	}

	p, l := tuneGC(env(map[string]string{"GOMEMLIMIT": "1GiB"}))
	if p != gcPercent || l != -1 {
		t.Fatalf("GOMEMLIMIT set: got (%d, %d), want (%d, -1)", p, l, gcPercent)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GC percent is %d, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("GOMEMLIMIT set: memory limit changed to %d", got)
	}

	p, l = tuneGC(env(nil))
	if p != gcPercent {
		t.Fatalf("nothing set: GC percent %d, want %d", p, gcPercent)
	}
	avail := availableMemory()
	if avail <= 0 {
		t.Fatalf("availableMemory found no memory size on this machine")
	}
	if l != avail/2 || debug.SetMemoryLimit(-1) != avail/2 {
		t.Fatalf("nothing set: memory limit %d, want half of %d", l, avail)
	}
}
