package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Config configures the engine.
type Config struct {
	// Partitions is the partition count of EVENTS (as returned by bus.EnsureStreams).
	Partitions int
	// Consumers is how many durable consumers the partitions are spread over (see
	// bus.LaneRanges); 0 means 4. Each persists its state about ten times a second under
	// load (a file replaced each time: ~1 ms of CPU on ext4 here), so fewer consumers
	// cost less; each has its own MaxAckPending.
	Consumers int
	// Consumer configures each durable consumer.
	Consumer bus.ConsumerConfig
	// MaxBatch is the most decisions in one Postgres transaction.
	MaxBatch int
	// Writers is the most batches committing to Postgres at once (see writer.run).
	Writers int
	// InboxSize is the initial inbox of a user actor (hollywood's default costs ~28 KB).
	InboxSize int
	// IdleTimeout is how long a user actor with nothing to do runs; then it is stopped and
	// the user's committed state stays in memory in compact form (a few hundred bytes
	// instead of some kilobytes). Negative keeps actors until memory pressure
	// (MaxResident) or shutdown.
	IdleTimeout time.Duration
	// MaxResident caps the users in memory (actors and compact states); past it the least
	// recently used idle ones are let go (reloaded from Postgres when they come back).
	// 0 means no cap.
	MaxResident int
	// ExpirySweep is how often users with points due to expire are looked for; negative
	// turns the sweep off.
	ExpirySweep time.Duration
	// CampaignsTimeout bounds the wait for the campaigns bucket's initial values.
	CampaignsTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	if c.Consumers <= 0 {
		c.Consumers = 4
	}
	c.Consumers = min(c.Consumers, c.Partitions)
	if c.Consumer.MaxAckPending == 0 {
		c.Consumer.MaxAckPending = 2048
	}
	if c.Consumer.MaxDeliver == 0 {
		c.Consumer.MaxDeliver = 10
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
	if c.Writers == 0 {
		c.Writers = 4
	}
	if c.InboxSize == 0 {
		c.InboxSize = 4
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Minute
	}
	if c.ExpirySweep == 0 {
		c.ExpirySweep = time.Minute
	}
	if c.CampaignsTimeout == 0 {
		c.CampaignsTimeout = 30 * time.Second
	}
}

// Deps are the engine's collaborators; all required but Logger and Registerer.
type Deps struct {
	JS    jetstream.JetStream
	Store *persistence.Store
	// Campaigns is the campaigns bucket (campaign JSON by id).
	Campaigns *bus.Bucket
	// Settings is the settings bucket (key "tiers": the tier configuration); nil means no
	// tiers.
	Settings   *bus.Bucket
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Engine consumes every partition of EVENTS and applies events through per-user actors.
type Engine struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics

	rules  atomic.Pointer[cel.RuleSet]
	tiers  atomic.Pointer[loyalty.TierConfig]
	loaded chan struct{}

	budgets *budgets
	hw      *actor.Engine
	loader  *loader
	writer  *writer
	lanes   []*lane

	// evaluate replaces rule evaluation in tests that inject faults.
	evaluate func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error)

	watchCancel context.CancelFunc
	workCancel  context.CancelFunc
	background  sync.WaitGroup
	writerDone  chan struct{}
	pubDone     chan struct{}
}

// New builds an engine. It does nothing until Start.
func New(deps Deps, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if deps.JS == nil || deps.Store == nil || deps.Campaigns == nil {
		return nil, errors.New("actors: JS, Store and Campaigns are required")
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
	e := &Engine{cfg: cfg, deps: deps, log: deps.Logger.With("component", "engine"), metrics: m, loaded: make(chan struct{})}
	empty, _ := cel.NewRuleSet(nil)
	e.rules.Store(empty)
	return e, nil
}

// Rules returns the rule set in force. Safe for concurrent use.
func (e *Engine) Rules() *cel.RuleSet { return e.rules.Load() }

// Ready reports nil once the campaigns are loaded and the partitions consumed.
func (e *Engine) Ready() error {
	select {
	case <-e.loaded:
	default:
		return errors.New("campaigns not loaded yet")
	}
	if len(e.lanes) == 0 {
		return errors.New("partitions not consumed yet")
	}
	return nil
}

// Start loads the campaigns (waiting for the KV watcher's initial values, so no event is
// evaluated against a partial rule set), then starts the writer, the loader and one
// consumer per partition. It returns once consumption has started.
func (e *Engine) Start(ctx context.Context) error {
	hw, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return fmt.Errorf("start actor engine: %w", err)
	}
	e.hw = hw

	watchCtx, watchCancel := context.WithCancel(context.Background())
	e.watchCancel = watchCancel
	rw := &ruleWatcher{bucket: e.deps.Campaigns, log: e.log, metrics: e.metrics, rules: &e.rules, loaded: e.loaded}
	e.background.Add(1)
	go func() { defer e.background.Done(); e.keepWatching(watchCtx, "campaign", rw.Run) }()
	tiersLoaded := make(chan struct{})
	if e.deps.Settings != nil {
		tw := &tierWatcher{bucket: e.deps.Settings, log: e.log, tiers: &e.tiers, loaded: tiersLoaded}
		e.background.Add(1)
		go func() { defer e.background.Done(); e.keepWatching(watchCtx, "tier", tw.Run) }()
	} else {
		close(tiersLoaded)
	}
	wait, cancel := context.WithTimeout(ctx, e.cfg.CampaignsTimeout)
	defer cancel()
	for _, ch := range []chan struct{}{e.loaded, tiersLoaded} {
		select {
		case <-ch:
		case <-wait.Done():
			return fmt.Errorf("load campaigns and tiers from KV: %w", wait.Err())
		}
	}

	e.budgets = newBudgets()
	if err := e.budgets.load(ctx, e.deps.Store); err != nil {
		return err
	}
	workCtx, workCancel := context.WithCancel(context.Background())
	e.workCancel = workCancel
	queue := e.cfg.Consumers*e.cfg.Consumer.MaxAckPending + 1024
	e.loader = newLoader(e.deps.Store, hw, e.cfg.MaxBatch, queue)
	e.writer = newWriter(e.deps.Store, e.deps.JS, hw, e.log, e.metrics, e.budgets, e.cfg.MaxBatch, queue)
	e.writerDone, e.pubDone = make(chan struct{}), make(chan struct{})
	go func() { defer close(e.writerDone); e.writer.run(workCtx, e.cfg.Writers) }()
	go func() {
		defer close(e.pubDone)
		var wg sync.WaitGroup
		for range e.cfg.Writers {
			wg.Add(1)
			go func() { defer wg.Done(); e.writer.publish() }()
		}
		wg.Wait()
	}()
	e.background.Add(1)
	go func() { defer e.background.Done(); e.loader.run(workCtx) }()

	evaluate := e.evaluate
	if evaluate == nil {
		evaluate = func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error) { return e.Rules().Evaluate(in) }
	}
	deps := userDeps{evaluate: evaluate, budgets: e.budgets, tiers: e.tiers.Load, loader: e.loader, writer: e.writer, metrics: e.metrics}
	ranges, err := bus.EnsureConsumers(ctx, e.deps.JS, e.cfg.Partitions, e.cfg.Consumers, e.cfg.Consumer)
	if err != nil {
		return err
	}
	parts := make([]*lane, 0, len(ranges))
	for _, r := range ranges {
		iter, err := r.Consumer.Messages(jetstream.PullMaxMessages(e.cfg.Consumer.MaxAckPending))
		if err != nil {
			e.stopLanes(parts)
			return fmt.Errorf("consume %s: %w", r.Name(), err)
		}
		p := &lane{
			name: r.Name(), iter: iter, engine: hw, deps: deps, writer: e.writer, log: e.log, metrics: e.metrics,
			maxDeliver: uint64(e.cfg.Consumer.MaxDeliver), inboxSize: e.cfg.InboxSize,
			actors: map[string]*resident{}, stopped: make(chan struct{}),
		}
		go p.run()
		parts = append(parts, p)
	}
	e.lanes = parts
	e.background.Add(1)
	go func() { defer e.background.Done(); e.watchLag(watchCtx) }()
	e.background.Add(1)
	go func() { defer e.background.Done(); e.sweepExpiry(watchCtx) }()
	e.background.Add(1)
	go func() { defer e.background.Done(); e.passivateLoop(watchCtx) }()
	e.log.Info("engine started", "partitions", e.cfg.Partitions, "consumers", len(parts), "max_ack_pending", e.cfg.Consumer.MaxAckPending)
	return nil
}

// keepWatching runs watch until ctx ends, restarting it a second after each failure.
func (e *Engine) keepWatching(ctx context.Context, what string, watch func(context.Context) error) {
	for ctx.Err() == nil {
		if err := watch(ctx); err != nil && ctx.Err() == nil {
			e.log.Error(what+" watch ended; restarting", "err", err)
			sleepCtx(ctx, time.Second)
		}
	}
}

func (e *Engine) stopLanes(parts []*lane) {
	for _, p := range parts {
		p.iter.Stop()
	}
	for _, p := range parts {
		<-p.stopped
	}
}

// watchLag samples each consumer's lag for the metrics.
func (e *Engine) watchLag(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range e.lanes {
			c, err := e.deps.JS.Consumer(ctx, bus.EventsStream, p.name)
			if err != nil {
				continue
			}
			info := c.CachedInfo()
			e.metrics.pending.WithLabelValues(p.name).Set(float64(info.NumPending))
		}
	}
}

// Close stops fetching, lets in-flight events finish (commit, publish, ack) until ctx
// ends, then stops the writer, the loader, the actors and the campaign watcher. Events not
// finished by then stay unacked and are delivered again on the next start.
func (e *Engine) Close(ctx context.Context) error {
	if e.hw == nil {
		return nil
	}
	e.stopLanes(e.lanes)
	drained := make(chan struct{})
	go func() {
		for _, p := range e.lanes {
			p.inflight.Wait()
		}
		close(drained)
	}()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("engine: in-flight events left for redelivery: %w", ctx.Err())
	}
	if e.workCancel != nil {
		e.workCancel()
		<-e.writerDone
		<-e.pubDone
	}
	for _, p := range e.lanes {
		p.mu.Lock()
		for _, r := range p.actors {
			if r.pid != nil {
				e.hw.Poison(r.pid)
			}
		}
		p.mu.Unlock()
	}
	e.watchCancel()
	e.background.Wait()
	return err
}

// passivateLoop stops idle user actors (see lane.passivate) once a second, or at a
// tenth of the idle timeout when that is shorter.
func (e *Engine) passivateLoop(ctx context.Context) {
	every := time.Second
	if e.cfg.IdleTimeout > 0 && e.cfg.IdleTimeout/10 < every {
		every = max(e.cfg.IdleTimeout/10, 10*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	perLane := 0
	if e.cfg.MaxResident > 0 {
		perLane = max(1, e.cfg.MaxResident/len(e.lanes))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range e.lanes {
			if n := p.passivate(e.cfg.IdleTimeout, perLane); n > 0 {
				e.metrics.passivations.Add(float64(n))
				e.metrics.actors.Sub(float64(n))
			}
		}
	}
}

// Resident is the number of users held in memory (by an actor or as compact state).
func (e *Engine) Resident() int {
	n := 0
	for _, p := range e.lanes {
		p.mu.Lock()
		n += len(p.actors)
		p.mu.Unlock()
	}
	return n
}

// Actors is the number of running user actors.
func (e *Engine) Actors() int {
	n := 0
	for _, p := range e.lanes {
		p.mu.Lock()
		for _, r := range p.actors {
			if r.pid != nil {
				n++
			}
		}
		p.mu.Unlock()
	}
	return n
}

// Tiers returns the tier configuration in force (nil: none). Safe for concurrent use.
func (e *Engine) Tiers() *loyalty.TierConfig { return e.tiers.Load() }
