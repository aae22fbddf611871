package bench

import (
	"context"
	"time"
)

// Schedule is an open-loop send schedule: send i (0-based) is due at Start + i/Rate
// seconds, whatever happened to earlier sends. Rate is in sends per second.
type Schedule struct {
	Start time.Time
	Rate  float64
}

// At returns the due time of send i.
func (s Schedule) At(i uint64) time.Time {
	return s.Start.Add(time.Duration(float64(i) / s.Rate * float64(time.Second)))
}

// Due returns how many sends are due at now (sends 0..n-1), capped at limit.
func (s Schedule) Due(now time.Time, limit uint64) uint64 {
	el := now.Sub(s.Start)
	if el < 0 {
		return 0
	}
	n := uint64(el.Seconds()*s.Rate) + 1
	return min(n, limit)
}

// Tick is one scheduled send: its index and due time.
type Tick struct {
	I  uint64
	At time.Time
}

// Run emits every send due before end on out, in order, sleeping between sends, and
// closes out when done or when ctx ends. When the receivers fall behind, ticks queue in
// out's buffer and then block Run; the due time of each tick is still its scheduled time,
// so the delay counts in the measured latency (no coordinated omission). It returns the
// largest lag between a tick's due time and its hand-over.
func (s Schedule) Run(ctx context.Context, end time.Time, out chan<- Tick) time.Duration {
	defer close(out)
	limit := uint64(end.Sub(s.Start).Seconds() * s.Rate)
	var next uint64
	var worst time.Duration
	for next < limit {
		now := time.Now()
		due := s.Due(now, limit)
		for ; next < due; next++ {
			at := s.At(next)
			select {
			case out <- Tick{I: next, At: at}:
			case <-ctx.Done():
				return worst
			}
			if lag := time.Since(at); lag > worst {
				worst = lag
			}
		}
		if next >= limit {
			break
		}
		wait := time.Until(s.At(next))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return worst
			}
		}
	}
	return worst
}
