package actors

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// The ownership protocol. Every engine holds a member lease (key member.<id>) and the
// lane leases (key lane.<name>) of the lanes it consumes, in the replicated leases
// bucket, renewing each every RenewEvery; a lease not renewed for the bucket's TTL
// expires, so a dead or frozen engine's lanes become free within the TTL. Each tick an
// engine counts the live members N and aims at ceil(lanes/N) lanes: it gives back what
// is over (drain the lane, then delete its lease) and takes free lanes up to its share,
// preferring the lanes that rank highest for it (rendezvous hashing, so a change of N
// moves few lanes). Taking a lane is a compare-and-set create of its lease (one winner),
// then a claim of its partitions in Postgres (each partition's epoch goes up by one:
// the fencing token every later commit carries and Postgres checks), then the lane's
// consumer is recreated from its ack floor (TakeLane) and consumed. An engine whose
// lease renewal fails, or whose commit is refused for a stale epoch, stops the lane at
// once. The layout (how many lanes) is the oldest live member's, so a change of
// CAMPAIGN_CONSUMERS rolls out without two layouts consuming at once.

const (
	memberPrefix = "member."
	lanePrefix   = "lane."
)

// memberInfo is the value of a member lease.
type memberInfo struct {
	ID        string    `json:"id"`
	Consumers int       `json:"consumers"`
	StartedAt time.Time `json:"started_at"`
	Lanes     []string  `json:"lanes,omitempty"`
}

// laneLease is the value of a lane lease.
type laneLease struct {
	Owner    string    `json:"owner"`
	Acquired time.Time `json:"acquired"`
}

// heldLane is a lane this engine owns.
type heldLane struct {
	lane   bus.Lane
	rev    uint64
	epochs persistence.Epochs
}

// ownership keeps this engine's share of the lanes; it is a supervisor stage.
type ownership struct {
	e       *Engine
	leases  *bus.Leases
	me      memberInfo
	every   time.Duration
	handoff time.Duration

	memberRev uint64
	mu        sync.Mutex
	held      map[string]*heldLane
	covered   bool // every lane had an owner at the last tick
	fenced    chan int
}

// Run keeps the share until ctx ends, then hands every lane over: drain it, release its
// lease (another engine takes it at once), and leave the membership.
func (o *ownership) Run(ctx context.Context) error {
	t := time.NewTicker(o.every)
	defer t.Stop()
	for {
		o.tick(ctx)
		select {
		case <-ctx.Done():
			o.handOver(supervisor.Draining(ctx))
			return nil
		case p := <-o.fenced:
			o.dropFenced(ctx, p)
		case <-t.C:
		}
	}
}

// tick renews this engine's leases, then moves towards its share.
func (o *ownership) tick(ctx context.Context) {
	o.renewMember(ctx)
	o.renewLanes(ctx)
	held, err := o.leases.Held(ctx)
	if err != nil {
		o.e.log.Warn("read leases", "err", err)
		return
	}
	members, layout := o.view(held)
	if layout != o.me.Consumers {
		o.adoptLayout(ctx, layout)
	}
	lanes := bus.LaneRanges(o.e.cfg.Partitions, layout)
	target := (len(lanes) + members - 1) / members
	o.giveBack(ctx, target)
	o.take(ctx, lanes, held, target)
	o.setCovered(lanes, held)
}

// view counts the live members (this one included) and picks the layout: the consumer
// count of the oldest member.
func (o *ownership) view(held map[string][]byte) (members, layout int) {
	oldest := o.me
	for k, v := range held {
		if !strings.HasPrefix(k, memberPrefix) {
			continue
		}
		var m memberInfo
		if json.Unmarshal(v, &m) != nil || m.ID == o.me.ID {
			continue
		}
		members++
		if m.Consumers > 0 && (m.StartedAt.Before(oldest.StartedAt) || (m.StartedAt.Equal(oldest.StartedAt) && m.ID < oldest.ID)) {
			oldest = m
		}
	}
	return members + 1, oldest.Consumers
}

// adoptLayout switches this engine to the oldest member's lane layout: every lane it
// holds is handed back first.
func (o *ownership) adoptLayout(ctx context.Context, consumers int) {
	o.e.log.Warn("adopting the engines' lane layout (CAMPAIGN_CONSUMERS differs from the oldest engine's)",
		"consumers", consumers, "configured", o.e.cfg.Consumers)
	for name := range o.heldNames() {
		o.release(ctx, name, "layout change")
	}
	o.me.Consumers = consumers
}

func (o *ownership) heldNames() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]bool, len(o.held))
	for n := range o.held {
		out[n] = true
	}
	return out
}

// renewMember keeps the member lease (taking it again when it was lost).
func (o *ownership) renewMember(ctx context.Context) {
	o.me.Lanes = slices.Sorted(maps.Keys(o.heldNames()))
	value, _ := json.Marshal(o.me)
	key := memberPrefix + o.me.ID
	if o.memberRev != 0 {
		rev, err := o.leases.Renew(ctx, key, value, o.memberRev)
		if err == nil {
			o.memberRev = rev
			return
		}
		o.e.log.Warn("member lease lost; joining again", "err", err)
	}
	rev, err := o.leases.Acquire(ctx, key, value)
	if err != nil {
		o.e.log.Warn("join the engines", "err", err)
		o.memberRev = 0
		return
	}
	o.memberRev = rev
}

// renewLanes renews every lane lease; a lane whose lease is lost stops at once.
func (o *ownership) renewLanes(ctx context.Context) {
	o.mu.Lock()
	lanes := make([]*heldLane, 0, len(o.held))
	for _, h := range o.held {
		lanes = append(lanes, h)
	}
	o.mu.Unlock()
	for _, h := range lanes {
		rev, err := o.leases.Renew(ctx, lanePrefix+h.lane.Name(), o.leaseValue(), h.rev)
		switch {
		case errors.Is(err, bus.ErrLeaseLost):
			o.lose(ctx, h.lane.Name(), "lease lost")
		case err != nil:
			o.e.log.Warn("renew lane lease", "lane", h.lane.Name(), "err", err)
		default:
			h.rev = rev
		}
	}
}

func (o *ownership) leaseValue() []byte {
	v, _ := json.Marshal(laneLease{Owner: o.me.ID, Acquired: time.Now().UTC()})
	return v
}

// giveBack hands over the lanes beyond target, those ranking lowest for this engine.
func (o *ownership) giveBack(ctx context.Context, target int) {
	names := slices.Collect(maps.Keys(o.heldNames()))
	if len(names) <= target {
		return
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(o.rank(a), o.rank(b)) })
	for _, name := range names[:len(names)-target] {
		o.release(ctx, name, "rebalance")
	}
}

// take acquires free lanes, those ranking highest for this engine, up to target.
func (o *ownership) take(ctx context.Context, lanes []bus.Lane, held map[string][]byte, target int) {
	have := len(o.heldNames())
	if have >= target {
		return
	}
	var free []bus.Lane
	for _, l := range lanes {
		if _, taken := held[lanePrefix+l.Name()]; !taken {
			free = append(free, l)
		}
	}
	slices.SortFunc(free, func(a, b bus.Lane) int { return cmp.Compare(o.rank(b.Name()), o.rank(a.Name())) })
	for _, l := range free {
		if have >= target || ctx.Err() != nil {
			return
		}
		if o.acquire(ctx, l) {
			have++
		}
	}
}

// acquire takes lane l: its lease, its partitions' epochs in Postgres, its consumer
// recreated from the ack floor; then the lane runs. On any failure the lease is given
// back and the lane stays free for the next tick.
func (o *ownership) acquire(ctx context.Context, l bus.Lane) bool {
	key := lanePrefix + l.Name()
	rev, err := o.leases.Acquire(ctx, key, o.leaseValue())
	if errors.Is(err, bus.ErrLeaseHeld) {
		return false
	}
	if err != nil {
		o.e.log.Warn("acquire lane lease", "lane", l.Name(), "err", err)
		return false
	}
	start := time.Now()
	undo := func(what string, err error) bool {
		o.e.log.Warn("take lane: "+what, "lane", l.Name(), "err", err)
		_ = o.leases.Release(context.WithoutCancel(ctx), key, rev)
		return false
	}
	parts := make([]int, 0, l.Last-l.First+1)
	for p := l.First; p <= l.Last; p++ {
		parts = append(parts, p)
	}
	epochs, err := o.e.deps.Store.ClaimPartitions(ctx, parts, o.me.ID)
	if err != nil {
		return undo("claim partitions", err)
	}
	if l.Consumer, err = bus.TakeLane(ctx, o.e.deps.JS, l, o.e.cfg.Consumer); err != nil {
		return undo("consumer", err)
	}
	if err := o.e.startLane(l, epochs); err != nil {
		return undo("start", err)
	}
	o.mu.Lock()
	o.held[l.Name()] = &heldLane{lane: l, rev: rev, epochs: epochs}
	o.mu.Unlock()
	o.e.metrics.ownership.WithLabelValues("acquired").Inc()
	o.e.metrics.owned.Add(float64(len(parts)))
	o.e.log.Info("lane taken", "lane", l.Name(), "first_partition", l.First, "last_partition", l.Last, "epoch", epochs[l.First],
		"member", o.me.ID, "took_ms", time.Since(start).Milliseconds())
	return true
}

// release hands lane name over: it drains (in-flight events commit and ack), then its
// lease is deleted so another engine takes it at once.
func (o *ownership) release(ctx context.Context, name, why string) {
	h := o.forget(name)
	if h == nil {
		return
	}
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.handoff)
	defer cancel()
	if err := o.e.stopLane(drain, name); err != nil {
		o.e.log.Warn("lane handed over before it drained", "lane", name, "err", err)
	}
	if err := o.leases.Release(drain, lanePrefix+name, h.rev); err != nil && !errors.Is(err, bus.ErrLeaseLost) {
		o.e.log.Warn("release lane lease", "lane", name, "err", err)
	}
	o.e.metrics.ownership.WithLabelValues("released").Inc()
	o.e.log.Info("lane handed over", "lane", name, "reason", why, "member", o.me.ID)
}

// lose stops lane name at once: another engine owns it (or will) and this one's commits
// are fenced. Its in-flight events are left for the new owner.
func (o *ownership) lose(ctx context.Context, name, why string) {
	if o.forget(name) == nil {
		return
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.handoff)
	defer cancel()
	if err := o.e.stopLane(stop, name); err != nil {
		o.e.log.Warn("stop a lost lane", "lane", name, "err", err)
	}
	o.e.metrics.ownership.WithLabelValues("lost").Inc()
	o.e.log.Warn("lane lost", "lane", name, "reason", why, "member", o.me.ID)
}

// holds reports whether this engine holds the lease of lane name.
func (o *ownership) holds(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held[name] != nil
}

// forget removes name from the held lanes and returns what was held.
func (o *ownership) forget(name string) *heldLane {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.held[name]
	if h != nil {
		delete(o.held, name)
		o.e.metrics.owned.Sub(float64(h.lane.Last - h.lane.First + 1))
	}
	return h
}

// dropFenced stops the lane of partition p, whose epoch a commit found stale.
func (o *ownership) dropFenced(ctx context.Context, p int) {
	o.mu.Lock()
	var name string
	for n, h := range o.held {
		if p >= h.lane.First && p <= h.lane.Last {
			name = n
		}
	}
	o.mu.Unlock()
	if name != "" {
		o.lose(ctx, name, "a commit was fenced: another engine claimed the partition")
	}
}

// handOver releases every lane and the member lease, each lane drained by ctx.
func (o *ownership) handOver(ctx context.Context) {
	var wg sync.WaitGroup
	for name := range o.heldNames() {
		wg.Go(func() { o.release(ctx, name, "shutdown") })
	}
	wg.Wait()
	if o.memberRev != 0 {
		_ = o.leases.Release(ctx, memberPrefix+o.me.ID, o.memberRev)
	}
}

// setCovered records whether every lane has an owner.
func (o *ownership) setCovered(lanes []bus.Lane, held map[string][]byte) {
	covered := true
	for _, l := range lanes {
		if _, ok := held[lanePrefix+l.Name()]; !ok && !o.heldNames()[l.Name()] {
			covered = false
		}
	}
	o.mu.Lock()
	o.covered = covered
	o.mu.Unlock()
}

// owned returns the partitions this engine owns, ascending, and whether every lane had
// an owner at the last tick.
func (o *ownership) owned() ([]int, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []int
	for _, h := range o.held {
		for p := h.lane.First; p <= h.lane.Last; p++ {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, o.covered
}

// rank orders lanes for this engine (rendezvous hashing): each engine prefers the lanes
// whose hash with its id is highest, so engines agree on a spread without talking.
func (o *ownership) rank(lane string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(lane + "/" + o.me.ID))
	return h.Sum64()
}
