package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Config configures the Dispatcher.
type Config struct {
	// MaxAttempts is how many attempts a notice gets before its delivery is recorded
	// failed; 0 means 8.
	MaxAttempts int
	// RetryBase is the wait after a first failed attempt; each later wait is 4 times the
	// one before, at most 1440 times RetryBase, each spread by ±20 %. 0 means 30 s: 30 s,
	// 2 m, 8 m, 32 m, 2 h 8 m, 8 h 32 m, 12 h, so the 8th attempt comes about 23 h 22 m
	// after the first.
	RetryBase time.Duration
	// Concurrency is the most attempts in flight per endpoint, stream and replica; 0
	// means 32.
	Concurrency int
	// RecordBatch and RecordEvery bound a batch of delivery records: written when it
	// holds RecordBatch records or RecordEvery after its first; 0 means 500 and 100 ms.
	RecordBatch int
	RecordEvery time.Duration
	// Retention is how long records of successful deliveries are kept; 0 means 7 days.
	Retention time.Duration
	// SampleEvery is how often each endpoint's backlog is sampled; 0 means 2 s.
	SampleEvery time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.RecordBatch <= 0 {
		c.RecordBatch = 500
	}
	if c.RecordEvery <= 0 {
		c.RecordEvery = 100 * time.Millisecond
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 2 * time.Second
	}
}

// Schedule is the retry policy of deliveries with retry base base (see
// Config.RetryBase): Delay(n) is the wait after the n-th failed attempt.
func Schedule(base time.Duration) supervisor.Policy {
	return supervisor.Policy{Initial: base, Multiplier: 4, Max: 1440 * base, Jitter: 0.2}
}

// Deps are the Dispatcher's collaborators, all required but Logger and Registerer.
type Deps struct {
	Bus        *bus.Webhooks
	Store      *persistence.Store
	Sender     *Sender
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Dispatcher delivers every enabled endpoint's notices from this replica: a stage per
// endpoint, started, restarted and stopped as the webhooks bucket changes.
type Dispatcher struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	metrics  *metrics
	schedule supervisor.Policy
	retry    supervisor.Policy
	rec      *recorder

	sup     *supervisor.Supervisor
	mu      sync.Mutex
	running map[string]*runningEndpoint
	// halting counts, by endpoint, the stages being stopped.
	halting  map[string]int
	stopping sync.WaitGroup
	loaded   chan struct{}
}

type runningEndpoint struct {
	version int64
	stage   *endpointStage
	handle  *supervisor.Handle
}

// New builds a Dispatcher; it does nothing until Start.
func New(deps Deps, cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if deps.Bus == nil || deps.Store == nil || deps.Sender == nil {
		return nil, errors.New("webhook: Bus, Store and Sender are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	log := deps.Logger.With("component", "webhooks")
	return &Dispatcher{cfg: cfg, deps: deps, log: log, metrics: m, schedule: Schedule(cfg.RetryBase),
		retry: supervisor.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second},
		rec:   newRecorder(deps.Store, log, m, cfg.RecordBatch, cfg.RecordEvery), running: map[string]*runningEndpoint{},
		halting: map[string]int{}, loaded: make(chan struct{})}, nil
}

// Start starts the recorder, the pruner, the backlog sampler and the bucket watcher,
// which starts a stage for each enabled endpoint. It does not wait for the bucket.
func (d *Dispatcher) Start(context.Context) error {
	d.sup = supervisor.New(d.log, d.retry)
	for _, st := range []supervisor.Stage{
		{Name: "webhook recorder", Run: d.rec.Run},
		{Name: "webhook pruner", Run: func(ctx context.Context) error { return prune(ctx, d.deps.Store, d.log, d.cfg.Retention) }, Restart: true},
		{Name: "webhook backlog", Run: d.sample, Restart: true},
		{Name: "webhook watcher", Run: d.watch, Restart: true},
	} {
		if _, err := d.sup.Start(st); err != nil {
			return err
		}
	}
	return nil
}

// Loaded is closed once the bucket's endpoints at start have their stages.
func (d *Dispatcher) Loaded() <-chan struct{} { return d.loaded }

// Close stops every endpoint stage (in-flight attempts finish or are handed back by
// ctx's end), then the watcher, the sampler, and the recorder, which writes what it
// holds.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d.sup == nil {
		return nil
	}
	err := d.sup.Stop(ctx)
	done := make(chan struct{})
	go func() { d.stopping.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}

// watch follows the webhooks bucket until ctx ends.
func (d *Dispatcher) watch(ctx context.Context) error {
	var once sync.Once
	return d.deps.Bus.Bucket().Watch(ctx, func(key string, value []byte) {
		d.apply(key, value)
	}, func() { once.Do(func() { close(d.loaded) }) })
}

// apply brings the endpoint id's stage in line with its bucket entry (nil: deleted).
func (d *Dispatcher) apply(id string, value []byte) {
	var view struct {
		Enabled bool  `json:"enabled"`
		Version int64 `json:"version"`
	}
	if value != nil {
		if err := json.Unmarshal(value, &view); err != nil {
			d.log.Error("webhook in KV does not decode; ignored", "webhook", id, "err", err)
			return
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.running[id]
	if cur != nil && value != nil && view.Enabled && cur.version >= view.Version {
		return
	}
	if cur != nil {
		delete(d.running, id)
		d.stopLocked(cur)
	}
	if value == nil || !view.Enabled {
		d.metrics.forget(id)
		return
	}
	st := &endpointStage{d: d, id: id, log: d.log.With("webhook", id), floors: map[string]uint64{}}
	if cur != nil {
		st.floors = cur.stage.floorsCopy()
	}
	h, err := d.sup.Start(supervisor.Stage{Name: "webhook " + id, Run: st.Run, Restart: true})
	if err != nil {
		return // stopping
	}
	d.running[id] = &runningEndpoint{version: view.Version, stage: st, handle: h}
}

// stopLocked stops r in the background: its in-flight attempts finish (or are handed
// back) within an attempt's timeout and a margin; a new stage may already run.
func (d *Dispatcher) stopLocked(r *runningEndpoint) {
	id := r.stage.id
	d.halting[id]++
	d.stopping.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), d.deps.Sender.Timeout()+5*time.Second)
		defer cancel()
		if err := r.handle.Stop(ctx); err != nil {
			d.log.Warn("webhook stage did not stop in time", "webhook", id, "err", err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.halting[id]--; d.halting[id] <= 0 {
			delete(d.halting, id)
		}
	})
}

// Running are the ids of the endpoints this replica delivers to now, sorted: those with
// a stage running or still stopping. An endpoint not listed gets nothing from here.
func (d *Dispatcher) Running() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := slices.Collect(maps.Keys(d.running))
	for id := range d.halting {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// sample sets every running endpoint's backlog gauge and remembers its consumers' ack
// floors, every SampleEvery until ctx ends.
func (d *Dispatcher) sample(ctx context.Context) error {
	t := time.NewTicker(d.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		d.mu.Lock()
		stages := make([]*endpointStage, 0, len(d.running))
		for _, r := range d.running {
			stages = append(stages, r.stage)
		}
		d.mu.Unlock()
		for _, st := range stages {
			if n, ok := st.sample(ctx); ok {
				d.metrics.backlog.WithLabelValues(st.id).Set(float64(n))
			}
		}
	}
}

// delay is the wait after the n-th failed attempt: the schedule's, or the endpoint's
// Retry-After when that is longer (at most the schedule's longest wait).
func (d *Dispatcher) delay(n int, retryAfter time.Duration) time.Duration {
	return max(d.schedule.Delay(n), min(retryAfter, d.schedule.Max))
}

// disable turns the endpoint off after a 410 Gone, in Postgres and then the bucket (so
// every replica stops its stage).
func (d *Dispatcher) disable(ctx context.Context, id, reason string) {
	policy := d.retry
	policy.MaxAttempts = 10
	err := policy.Do(ctx, func(ctx context.Context) error {
		w, err := d.deps.Store.DisableWebhook(ctx, id, reason, "system")
		if errors.Is(err, persistence.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return Endpoints{Bus: d.deps.Bus}.PutWebhook(ctx, &w)
	})
	if err != nil {
		d.log.Error("disable webhook after 410 Gone", "webhook", id, "err", err)
		return
	}
	d.log.Warn("webhook disabled: the endpoint answered 410 Gone", "webhook", id)
}

// specOf is what endpoint w's consumers follow.
func specOf(w *persistence.Webhook) bus.WebhookSpec {
	return bus.WebhookSpec{ID: w.ID, Kinds: w.Filter.Kinds(), Campaigns: w.Filter.Campaigns, Since: w.UpdatedAt, After: w.StartSeqs}
}
