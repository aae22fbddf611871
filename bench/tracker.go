package bench

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const (
	chunkBits = 16
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 12 // 268M events per phase
)

// histMax is the largest latency a histogram tracks: 5 minutes, in microseconds.
const histMax = int64(5 * time.Minute / time.Microsecond)

// newHist returns a latency histogram in microseconds, 3 significant digits.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

// Tracker matches rewards to sent events and records end-to-end latency. Event ids are
// Prefix followed by a sequence number; the scheduled send time of each sequence number is
// kept in lock-free chunks, so Scheduled and Rewarded are safe for concurrent use and
// cheap. Latency runs from the scheduled send time (open loop: a late send counts against
// the system, not hidden) to the moment the first reward of the event arrives.
type Tracker struct {
	Prefix string
	start  time.Time
	chunks [maxChunks]atomic.Pointer[[chunkSize]atomic.Int64]
	grow   sync.Mutex

	sent      atomic.Int64
	completed atomic.Int64
	failed    atomic.Int64
	rewards   atomic.Int64
	extra     atomic.Int64 // rewards after the first of an event
	unknown   atomic.Int64 // rewards of ids this tracker never sent
	onDone    func(n int64)

	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	requests *hdrhistogram.Histogram // time to the answer of each HTTP request
	second   *hdrhistogram.Histogram // latencies completed in the current second
	errs     map[string]int64
	timeline []Second
	lastDone time.Time
}

// Second is one second of a phase: events sent and completed, and latency percentiles of
// the events completed in that second (milliseconds).
type Second struct {
	T         int     `json:"t"`
	Sent      int64   `json:"sent"`
	Completed int64   `json:"completed"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
	// RSSMB is campaignd's resident memory at the end of the second, when known.
	RSSMB float64 `json:"rss_mb,omitempty"`
}

// NewTracker returns a tracker for ids prefix<seq>, measuring from start. onDone, when
// not nil, is called with the number of events that completed or failed (to release
// in-flight credit).
func NewTracker(prefix string, start time.Time, onDone func(n int64)) *Tracker {
	return &Tracker{Prefix: prefix, start: start, hist: newHist(), second: newHist(), requests: newHist(), errs: map[string]int64{}, onDone: onDone}
}

func (t *Tracker) slot(seq uint64, create bool) *atomic.Int64 {
	ci := seq >> chunkBits
	if ci >= maxChunks {
		return nil
	}
	c := t.chunks[ci].Load()
	if c == nil {
		if !create {
			return nil
		}
		t.grow.Lock()
		if c = t.chunks[ci].Load(); c == nil {
			c = new([chunkSize]atomic.Int64)
			t.chunks[ci].Store(c)
		}
		t.grow.Unlock()
	}
	return &c[seq&(chunkSize-1)]
}

// Scheduled records that event seq was scheduled to be sent at 'at'. Call it before the
// event can be rewarded.
func (t *Tracker) Scheduled(seq uint64, at time.Time) {
	if s := t.slot(seq, true); s != nil {
		s.Store(at.UnixNano())
		t.sent.Add(1)
	}
}

// Failed records that event seq was not accepted, with an error kind.
func (t *Tracker) Failed(seq uint64, kind string) {
	if s := t.slot(seq, false); s != nil && s.Swap(0) != 0 {
		t.failed.Add(1)
		if t.onDone != nil {
			t.onDone(1)
		}
	}
	t.Error(kind, 1)
}

// Error counts n errors of a kind that are not tied to one event.
func (t *Tracker) Error(kind string, n int64) {
	t.mu.Lock()
	t.errs[kind] += n
	t.mu.Unlock()
}

// Rewarded records a reward for event id seen at now. It reports whether the id is one
// of this tracker's.
func (t *Tracker) Rewarded(id string, now time.Time) bool {
	rest, ok := strings.CutPrefix(id, t.Prefix)
	if !ok {
		return false
	}
	t.rewards.Add(1)
	seq, err := strconv.ParseUint(rest, 10, 64)
	s := (*atomic.Int64)(nil)
	if err == nil {
		s = t.slot(seq, false)
	}
	if s == nil {
		t.unknown.Add(1)
		return true
	}
	at := s.Swap(0)
	if at == 0 {
		t.extra.Add(1)
		return true
	}
	lat := now.UnixNano() - at
	us := max(lat/1000, 1)
	t.completed.Add(1)
	if t.onDone != nil {
		t.onDone(1)
	}
	t.mu.Lock()
	_ = t.hist.RecordValue(min(us, histMax))
	_ = t.second.RecordValue(min(us, histMax))
	t.lastDone = now
	t.mu.Unlock()
	return true
}

// Answered records the answer to a request sent at sent (HTTP: the time to a 2xx is the
// time to JetStream's acknowledgement plus HTTP).
func (t *Tracker) Answered(sent time.Time) {
	us := max(time.Since(sent).Microseconds(), 1)
	t.mu.Lock()
	_ = t.requests.RecordValue(min(us, histMax))
	t.mu.Unlock()
}

// Requests returns the latency summary of the answered requests (zero when none).
func (t *Tracker) Requests() Latency {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Summarize(t.requests)
}

// Tick closes the current second of the timeline; call it once a second.
func (t *Tracker) Tick(sentInSecond, completedInSecond int64, rssMB float64) Second {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Second{
		T: len(t.timeline) + 1, Sent: sentInSecond, Completed: completedInSecond,
		P50: ms(t.second.ValueAtQuantile(50)), P90: ms(t.second.ValueAtQuantile(90)),
		P99: ms(t.second.ValueAtQuantile(99)), Max: ms(t.second.Max()), RSSMB: rssMB,
	}
	t.second.Reset()
	t.timeline = append(t.timeline, s)
	return s
}

// Counts returns events scheduled, completed (rewarded) and failed so far.
func (t *Tracker) Counts() (sent, completed, failed int64) {
	return t.sent.Load(), t.completed.Load(), t.failed.Load()
}

// Outstanding is the number of events scheduled and neither rewarded nor failed.
func (t *Tracker) Outstanding() int64 {
	return t.sent.Load() - t.completed.Load() - t.failed.Load()
}

func ms(us int64) float64 { return float64(us) / 1000 }

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns the percentiles of h (microseconds) in milliseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	return Latency{
		Count: h.TotalCount(), Mean: h.Mean() / 1000,
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// snapshot returns the latency summary, errors, timeline and the time of the last
// completion.
func (t *Tracker) snapshot() (Latency, map[string]int64, []Second, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	errs := make(map[string]int64, len(t.errs))
	for k, v := range t.errs {
		errs[k] = v
	}
	return Summarize(t.hist), errs, append([]Second(nil), t.timeline...), t.lastDone
}
