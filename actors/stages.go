package actors

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The stages of an event's way through the engine, as campaign_event_stage_seconds
// labels. Together they split the time from the event's storage in EVENTS to its notices'
// publication (total), so a latency tail can be traced to where it is spent.
const (
	stageStream  = "stream"  // stored in EVENTS → received by the engine's lane (consumer delivery)
	stageActor   = "actor"   // received → decision submitted (actor inbox, state load, rules)
	stageBatch   = "batch"   // submitted → its Postgres batch began (group commit wait)
	stageCommit  = "commit"  // batch began → committed (the transaction, retries included)
	stagePublish = "publish" // committed → notices acknowledged by JetStream (publisher queue and publish)
	stageTotal   = "total"   // stored in EVENTS → notices acknowledged
)

// stageNames lists the stages in the event's order.
var stageNames = [...]string{stageStream, stageActor, stageBatch, stageCommit, stagePublish, stageTotal}

// stageBuckets resolve tens of microseconds to seconds.
var stageBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// stageTimes are the moments an event reached each stage; a zero one was not reached on
// this delivery (a redelivered event is republished without a new decision).
type stageTimes struct {
	stored, received, decided, batched, committed time.Time
}

// stageMetrics observes the stages of each published event.
type stageMetrics struct {
	vec *prometheus.HistogramVec
	obs [len(stageNames)]prometheus.Observer // by stageNames' order: no label lookup per event
}

func newStageMetrics() *stageMetrics {
	s := &stageMetrics{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "campaign_event_stage_seconds",
		Help:    "Time an event spent in each stage from its storage in EVENTS to its notices' publication (stream, actor, batch, commit, publish; total is the whole way).",
		Buckets: stageBuckets,
	}, []string{"stage"})}
	for i, n := range stageNames {
		s.obs[i] = s.vec.WithLabelValues(n)
	}
	return s
}

// observe records the stages of an event whose notices were published at done.
func (s *stageMetrics) observe(t *stageTimes, done time.Time) {
	marks := [...]time.Time{t.stored, t.received, t.decided, t.batched, t.committed, done}
	last := len(marks) - 1 // the total's index in obs, after one per pair of marks
	for i := range last {
		if !marks[i].IsZero() && !marks[i+1].IsZero() {
			s.obs[i].Observe(marks[i+1].Sub(marks[i]).Seconds())
		}
	}
	if !t.stored.IsZero() && !t.decided.IsZero() {
		s.obs[last].Observe(done.Sub(t.stored).Seconds())
	}
}
