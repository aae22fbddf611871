package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/cel/campaign"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
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
	// Writers is the most batches committing to Postgres at once (see committer.Run), and
	// the number of publisher goroutines.
	Writers int
	// InboxSize is the initial inbox of a user actor (hollywood's default costs ~28 KB).
	InboxSize int
	// IdleTimeout is how long a user actor with nothing to do runs; then it is stopped and
	// the user's committed state stays in memory in compact form (about two hundred
	// bytes instead of about 1.2 KB). Negative keeps actors until memory pressure
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
	// ReplicaID names this engine among the replicas sharing the partitions (in leases,
	// logs and Postgres' partition owners); empty means the host name and a random suffix.
	ReplicaID string
	// LeaseRenew is how often the engine renews its leases and rebalances; 0 means a
	// second. It must be well under the leases bucket's TTL.
	LeaseRenew time.Duration
	// HandoverTimeout bounds the drain of a lane this engine hands over while it keeps
	// running (a rebalance); 0 means 10 s. At shutdown the drain has Close's deadline.
	HandoverTimeout time.Duration
	// MaxSkew is how far after the time JetStream stored it an event may be dated; a
	// later one is parked (0: event.DefaultMaxSkew).
	MaxSkew time.Duration
	// PoolRefresh is how often the coupon pools' counts are reloaded from Postgres (codes
	// imported meanwhile, the pool gauges); 0 means 5 s.
	PoolRefresh time.Duration
	// Retention is how long processed_events (the dedup horizon) and event_effects (the
	// refund horizon) keep their rows; zero horizons mean 8 days (longer than EVENTS'
	// 7-day history) and 90 days.
	Retention persistence.Retention
	// PartitionEvery is how often the partitions of those tables are maintained (created
	// ahead, dropped past their horizon; see keepPartitions); 0 means 10 minutes, negative
	// turns the maintenance off (another replica or an operator does it).
	PartitionEvery time.Duration
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
	if c.MaxSkew == 0 {
		c.MaxSkew = event.DefaultMaxSkew
	}
	if c.CampaignsTimeout == 0 {
		c.CampaignsTimeout = 30 * time.Second
	}
	if c.ReplicaID == "" {
		host, _ := os.Hostname()
		c.ReplicaID = host + "-" + strconv.FormatUint(rand.Uint64()>>40, 36)
	}
	if c.LeaseRenew == 0 {
		c.LeaseRenew = time.Second
	}
	if c.HandoverTimeout == 0 {
		c.HandoverTimeout = 10 * time.Second
	}
	if c.PoolRefresh == 0 {
		c.PoolRefresh = 5 * time.Second
	}
	if c.Retention.Dedup == 0 {
		c.Retention.Dedup = DefaultDedupHorizon
	}
	if c.Retention.Refund == 0 {
		c.Retention.Refund = max(DefaultRefundHorizon, c.Retention.Dedup)
	}
	if c.PartitionEvery == 0 {
		c.PartitionEvery = 10 * time.Minute
	}
}

// The default horizons of Config.Retention.
const (
	DefaultDedupHorizon  = 8 * 24 * time.Hour
	DefaultRefundHorizon = 90 * 24 * time.Hour
)

// Deps are the engine's collaborators; all required but Logger and Registerer.
type Deps struct {
	JS    jetstream.JetStream
	Store *persistence.Store
	// Campaigns is the campaigns bucket (campaign JSON by id).
	Campaigns *bus.Bucket
	// Settings is the settings bucket (key "tiers": the tier configuration); nil means no
	// tiers.
	Settings *bus.Bucket
	// Leases is the leases bucket through which engine replicas share the partitions.
	Leases     *bus.Leases
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Engine consumes the partitions of EVENTS and applies events through per-user actors.
// Its stages run under one supervisor (see Start for the order); Close stops them in
// reverse.
type Engine struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *metrics
	// partitionMetrics are the partition maintenance's (see keepPartitions).
	partitionMetrics *partitionMetrics
	retry            supervisor.Policy

	rules  atomic.Pointer[cel.RuleSet]
	tiers  atomic.Pointer[loyalty.TierConfig]
	loaded chan struct{}

	sup       *supervisor.Supervisor
	owner     *ownership
	hw        *actor.Engine
	budgets   *budgets
	pools     *pools
	loader    *loader
	committer *committer
	publisher *publisher
	userDeps  *userDeps
	// spawned numbers the user actors spawned, for their ids (see lane.spawn).
	spawned atomic.Uint64

	mu    sync.Mutex
	lanes map[string]*runningLane

	// evaluate replaces rule evaluation in tests that inject faults.
	evaluate func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error)
}

// runningLane is a lane and its supervisor stage.
type runningLane struct {
	lane  *lane
	stage *supervisor.Handle
}

// New builds an engine. It does nothing until Start.
func New(deps Deps, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if deps.JS == nil || deps.Store == nil || deps.Campaigns == nil || deps.Leases == nil {
		return nil, errors.New("actors: JS, Store, Campaigns and Leases are required")
	}
	if cfg.LeaseRenew*2 >= deps.Leases.TTL() {
		return nil, fmt.Errorf("actors: LeaseRenew %s must be under half the leases' TTL %s", cfg.LeaseRenew, deps.Leases.TTL())
	}
	if err := cfg.Retention.Validate(); err != nil {
		return nil, fmt.Errorf("actors: retention: %w", err)
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
	pm, err := newPartitionMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, deps: deps, log: deps.Logger.With("component", "engine"), metrics: m, partitionMetrics: pm,
		loaded: make(chan struct{}), lanes: map[string]*runningLane{}}
	empty, _ := cel.NewRuleSet(nil)
	e.rules.Store(empty)
	return e, nil
}

// Rules returns the rule set in force. Safe for concurrent use.
func (e *Engine) Rules() *cel.RuleSet { return e.rules.Load() }

// Ready reports nil once the campaigns are loaded and the partitions consumed: this
// engine owns some, or every one has an owner, and no running lane's consumer is missing
// (the lane keeper creates such a consumer again within two of its looks).
func (e *Engine) Ready(ctx context.Context) error {
	select {
	case <-e.loaded:
	default:
		return errors.New("campaigns not loaded yet")
	}
	if e.owner == nil {
		return errors.New("not started")
	}
	owned, covered := e.owner.owned()
	if len(owned) == 0 && !covered {
		return errors.New("owns no partition while some have no owner")
	}
	missing, err := e.missingLanes(ctx)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("lane consumers missing, being created again: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Owned returns the partitions this engine owns now, ascending, and whether every lane
// had an owner (this engine or another) at the last look. Safe for concurrent use.
func (e *Engine) Owned() ([]int, bool) {
	if e.owner == nil {
		return nil, false
	}
	return e.owner.owned()
}

// Start brings the engine up, each long-running part a stage of one supervisor, in this
// order (Close stops them in reverse): the publisher (notices, DLQ, acks), the committer
// (Postgres), the loader, the campaign and tier watchers — Start waits for their initial
// values, so no event is evaluated against a partial rule set —, the ownership of
// partitions (which starts a lane for each range it takes, see ownership.go), then the
// lane keeper, the expiry sweep and the passivation sweep. Lanes are started last, so at
// Close they drain and stop first, then ownership hands their leases over.
func (e *Engine) Start(ctx context.Context) error {
	hw, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return fmt.Errorf("start actor engine: %w", err)
	}
	e.hw = hw
	e.sup = supervisor.New(e.log, e.retry)
	e.budgets = newBudgets()
	e.pools = newPools(e.metrics)
	queue := e.cfg.Consumers*e.cfg.Consumer.MaxAckPending + 1024
	e.publisher = &publisher{js: e.deps.JS, engine: hw, log: e.log, metrics: e.metrics, retry: e.retry, workers: e.cfg.Writers,
		pubs: make(chan []pubJob, 64), parks: make(chan parkJob, queue)}
	e.committer = &committer{store: e.deps.Store, engine: hw, log: e.log, metrics: e.metrics, budgets: e.budgets, pools: e.pools,
		publisher: e.publisher, retry: e.retry, maxBatch: e.cfg.MaxBatch, flights: e.cfg.Writers,
		in: make(chan commitJob, queue), again: make(chan redelivery, queue)}
	e.committer.onStale = func(p int) {
		if o := e.owner; o != nil {
			select {
			case o.fenced <- p:
			default: // the ownership stage is told already
			}
		}
	}
	e.loader = newLoader(e.deps.Store, hw, e.cfg.MaxBatch, queue)
	if err := e.startStages(
		supervisor.Stage{Name: "publisher", Run: e.publisher.Run},
		supervisor.Stage{Name: "committer", Run: e.committer.Run},
		supervisor.Stage{Name: "loader", Run: e.loader.Run},
	); err != nil {
		return err
	}
	if err := e.startWatchers(ctx); err != nil {
		return err
	}
	if err := e.retry.Do(ctx, func(ctx context.Context) error { return e.budgets.load(ctx, e.deps.Store) }); err != nil {
		return fmt.Errorf("load budgets: %w", err)
	}
	if err := e.retry.Do(ctx, func(ctx context.Context) error { return e.pools.load(ctx, e.deps.Store) }); err != nil {
		return fmt.Errorf("load coupon pools: %w", err)
	}
	evaluate := e.evaluate
	if evaluate == nil {
		evaluate = func(in *cel.Input) ([]campaign.Match, []cel.EvalError, error) { return e.Rules().Evaluate(in) }
	}
	e.userDeps = &userDeps{engine: hw, log: e.log, evaluate: evaluate, budgets: e.budgets, pools: e.pools, tiers: e.tiers.Load, loader: e.loader,
		committer: e.committer, publisher: e.publisher, metrics: e.metrics, retry: e.retry,
		ruleErrors: newRuleErrorLog(e.log, e.metrics, time.Minute)}
	e.owner = &ownership{e: e, leases: e.deps.Leases, every: e.cfg.LeaseRenew, handoff: e.cfg.HandoverTimeout,
		me:   memberInfo{ID: e.cfg.ReplicaID, Consumers: e.cfg.Consumers, StartedAt: time.Now().UTC()},
		held: map[string]*heldLane{}, fenced: make(chan int, 64)}
	if err := e.startStages(
		supervisor.Stage{Name: "ownership", Run: e.owner.Run, Restart: true},
		supervisor.Stage{Name: "lane keeper", Run: e.keepLanes},
		supervisor.Stage{Name: "expiry sweep", Run: e.sweepExpiry},
		supervisor.Stage{Name: "passivation", Run: e.passivateLoop},
		supervisor.Stage{Name: "partition maintenance", Run: e.keepPartitions},
		supervisor.Stage{Name: "pool levels", Run: e.pools.refresh(e.deps.Store, e.cfg.PoolRefresh, func(err error) {
			e.log.Warn("reload coupon pools", "err", err)
		})},
	); err != nil {
		return err
	}
	e.log.Info("engine started", "replica", e.cfg.ReplicaID, "partitions", e.cfg.Partitions, "consumers", e.cfg.Consumers,
		"max_ack_pending", e.cfg.Consumer.MaxAckPending, "lease_ttl", e.deps.Leases.TTL().String())
	return nil
}

func (e *Engine) startStages(stages ...supervisor.Stage) error {
	for _, st := range stages {
		if _, err := e.sup.Start(st); err != nil {
			return err
		}
	}
	return nil
}

// startWatchers starts the campaign and tier watchers (restarted when they fail) and
// waits for their initial values until CampaignsTimeout.
func (e *Engine) startWatchers(ctx context.Context) error {
	rw := &ruleWatcher{bucket: e.deps.Campaigns, log: e.log, metrics: e.metrics, rules: &e.rules, loaded: e.loaded}
	tiersLoaded := make(chan struct{})
	stages := []supervisor.Stage{{Name: "campaign watcher", Run: rw.Run, Restart: true}}
	if e.deps.Settings != nil {
		tw := &tierWatcher{bucket: e.deps.Settings, log: e.log, tiers: &e.tiers, loaded: tiersLoaded}
		stages = append(stages, supervisor.Stage{Name: "tier watcher", Run: tw.Run, Restart: true})
	} else {
		close(tiersLoaded)
	}
	if err := e.startStages(stages...); err != nil {
		return err
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
	return nil
}

// startLane starts consuming l's consumer as a stage of its own (restarted when the
// consumer cannot be read), its commits carrying epochs.
func (e *Engine) startLane(l bus.Lane, epochs persistence.Epochs) error {
	ln := &lane{
		name: l.Name(), span: l, consumer: l.Consumer, epochs: epochs, engine: e.hw, deps: e.userDeps, log: e.log, metrics: e.metrics,
		maxDeliver: uint64(e.cfg.Consumer.MaxDeliver), maxPending: e.cfg.Consumer.MaxAckPending, inboxSize: e.cfg.InboxSize,
		maxSkew: e.cfg.MaxSkew, actors: map[string]*resident{}, spawned: &e.spawned, recover: recoverMiddleware(e.log),
	}
	h, err := e.sup.Start(supervisor.Stage{Name: "lane " + ln.name, Run: ln.Run, Restart: true})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.lanes[ln.name] = &runningLane{lane: ln, stage: h}
	e.mu.Unlock()
	return nil
}

// stopLane stops the lane name: it stops fetching, lets its in-flight events commit and
// ack by ctx's end, and stops its users' actors. Events left then come again to the
// lane's next consumer.
func (e *Engine) stopLane(ctx context.Context, name string) error {
	e.mu.Lock()
	rl := e.lanes[name]
	delete(e.lanes, name)
	e.mu.Unlock()
	if rl == nil {
		return nil
	}
	return rl.stage.Stop(ctx)
}

// runningLanes returns the lanes now consuming.
func (e *Engine) runningLanes() []*lane {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*lane, 0, len(e.lanes))
	for _, rl := range e.lanes {
		out = append(out, rl.lane)
	}
	return out
}

// Close stops every stage in the reverse order of Start: the sweeps, then each lane
// (stop fetching, let in-flight events commit, publish and ack until ctx ends, stop its
// actors), then the watchers, the loader, the committer and the publisher. Events not
// finished by then stay unacked and are delivered again on the next start.
func (e *Engine) Close(ctx context.Context) error {
	if e.sup == nil {
		return nil
	}
	return e.sup.Stop(ctx)
}

// passivateLoop stops idle user actors (see lane.passivate) once a second, or at a
// tenth of the idle timeout when that is shorter, until ctx ends.
func (e *Engine) passivateLoop(ctx context.Context) error {
	every := time.Second
	if e.cfg.IdleTimeout > 0 && e.cfg.IdleTimeout/10 < every {
		every = max(e.cfg.IdleTimeout/10, 10*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lanes := e.runningLanes()
		perLane := 0
		if e.cfg.MaxResident > 0 && len(lanes) > 0 {
			perLane = max(1, e.cfg.MaxResident/len(lanes))
		}
		for _, p := range lanes {
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
	for _, p := range e.runningLanes() {
		p.mu.Lock()
		n += len(p.actors)
		p.mu.Unlock()
	}
	return n
}

// Actors is the number of running user actors.
func (e *Engine) Actors() int {
	n := 0
	for _, p := range e.runningLanes() {
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
