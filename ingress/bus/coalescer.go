package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/supervisor"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// CoalescerConfig configures a Coalescer.
type CoalescerConfig struct {
	// Window is the most events published and not yet acknowledged (0: 4096). A caller
	// past it waits for room until its ctx ends. The JetStream context's own async
	// window (jetstream.WithPublishAsyncMaxPending) should be at least as large.
	Window int
	// Burst is the most events one pass of Run hands to the connection before it looks
	// at the queue again (0: 256).
	Burst int
}

func (c *CoalescerConfig) setDefaults() {
	if c.Window <= 0 {
		c.Window = 4096
	}
	if c.Burst <= 0 {
		c.Burst = 256
	}
}

// ErrCoalescerStopped is the error of an event handed to a Coalescer whose Run has
// returned.
var ErrCoalescerStopped = errors.New("bus: event publisher stopped")

// Coalescer stores events in EVENTS like Publisher (same subjects, Nats-Msg-Id = event
// id, same retries), but coalesces the publishes of concurrent callers: each caller
// queues its messages and Run, on one goroutine, writes every queued message to the
// connection in bursts, so that many single-event requests share a flush and a trip to
// the server instead of each taking its own turn on the connection. At most
// CoalescerConfig.Window events are in flight; each caller waits only for the
// acknowledgements of its own events, so a failure or a timeout answers only the
// callers whose events it concerns. PublishEvents is safe for concurrent use; it needs
// Run to be running.
type Coalescer struct {
	js     jetstream.JetStream
	cfg    CoalescerConfig
	window chan struct{}
	queue  chan *queued
	done   chan struct{}
	retry  supervisor.Policy
	// acquiring makes window acquisitions one at a time (see acquire).
	acquiring sync.Mutex
}

// queued is one publish attempt of one event waiting for Run.
type queued struct {
	msg *nats.Msg
	// sent receives what PublishMsgAsync returned (buffered: Run never blocks on it).
	sent chan sentMsg
}

type sentMsg struct {
	future jetstream.PubAckFuture
	err    error
}

// NewCoalescer returns a Coalescer over js. Start Run before calling PublishEvents.
func NewCoalescer(js jetstream.JetStream, cfg CoalescerConfig) *Coalescer {
	cfg.setDefaults()
	return &Coalescer{
		js: js, cfg: cfg,
		window: make(chan struct{}, cfg.Window),
		queue:  make(chan *queued), // unbuffered: a caller never waits on a Run that is gone
		done:   make(chan struct{}),
	}
}

// Run writes queued messages to the connection until ctx ends, then returns nil; from
// then on callers get ErrCoalescerStopped. It is the Coalescer's one goroutine (a
// supervisor stage); call it once.
func (c *Coalescer) Run(ctx context.Context) error {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-c.queue:
			c.send(q)
			for n := 1; n < c.cfg.Burst; n++ {
				select {
				case q := <-c.queue:
					c.send(q)
				default:
					n = c.cfg.Burst
				}
			}
		}
	}
}

// send hands q's message to the connection's buffer (the connection's flusher writes
// what a burst buffered in one go).
func (c *Coalescer) send(q *queued) {
	f, err := c.js.PublishMsgAsync(q.msg, jetstream.WithExpectStream(EventsStream))
	q.sent <- sentMsg{future: f, err: err}
}

// PublishEvents stores evs as Publisher.PublishEvents does: it waits for room in the
// window, queues every event for Run, and waits for each acknowledgement until ctx ends,
// publishing again (same Nats-Msg-Id) what gets no answer within attemptTimeout or
// fails. The result at index i belongs to evs[i]; Err is set for an event without an
// acknowledgement by then (it may or may not be stored: retrying with the same id is
// safe), wrapping ErrCoalescerStopped when Run has returned. An event stored on a second
// attempt is reported as not a duplicate. More events than the window go in turns.
func (c *Coalescer) PublishEvents(ctx context.Context, evs []*event.Event, correlationID string) []PublishResult {
	results := make([]PublishResult, len(evs))
	for start := 0; start < len(evs); start += c.cfg.Window {
		end := min(start+c.cfg.Window, len(evs))
		c.publish(ctx, evs[start:end], correlationID, results[start:end])
	}
	return results
}

// publish stores at most Window events, writing their outcomes to results.
func (c *Coalescer) publish(ctx context.Context, evs []*event.Event, correlationID string, results []PublishResult) {
	qs := make([]*queued, len(evs))
	n := 0
	for i, ev := range evs {
		msg, err := eventMsg(ev, correlationID)
		if err != nil {
			results[i].Err = err
			continue
		}
		qs[i] = &queued{msg: msg, sent: make(chan sentMsg, 1)}
		n++
	}
	if err := c.acquire(ctx, n); err != nil {
		for i := range qs {
			if qs[i] != nil {
				results[i].Err = err
			}
		}
		return
	}
	for i, q := range qs {
		if q == nil {
			continue
		}
		if err := c.enqueue(ctx, q); err != nil {
			results[i].Err, qs[i] = err, nil
			<-c.window
		}
	}
	for i, q := range qs {
		if q != nil {
			results[i] = c.await(ctx, q)
			<-c.window
		}
	}
}

// acquire takes room for n events in the window, all at once: a caller holding part of
// what it needs while others wait for the rest could deadlock them all.
func (c *Coalescer) acquire(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil { // a caller out of time publishes nothing
		return fmt.Errorf("publish event: %w", err)
	}
	c.acquiring.Lock()
	defer c.acquiring.Unlock()
	for got := 0; got < n; got++ {
		select {
		case c.window <- struct{}{}:
		case <-ctx.Done():
			for range got {
				<-c.window
			}
			return fmt.Errorf("publish event: waiting for room among %d events in flight: %w", c.cfg.Window, ctx.Err())
		}
	}
	return nil
}

// enqueue hands q to Run.
func (c *Coalescer) enqueue(ctx context.Context, q *queued) error {
	select {
	case c.queue <- q:
		return nil
	case <-c.done:
		return fmt.Errorf("publish event: %w", ErrCoalescerStopped)
	case <-ctx.Done():
		return fmt.Errorf("publish event: %w", ctx.Err())
	}
}

// await waits for q's acknowledgement, queueing it again after a failure or a silence,
// until ctx ends.
func (c *Coalescer) await(ctx context.Context, q *queued) PublishResult {
	last := errors.New("no acknowledgement")
	for attempt := 1; ; attempt++ {
		ack, err := c.attempt(ctx, q)
		if err == nil {
			return PublishResult{Seq: ack.Sequence, Duplicate: ack.Duplicate && attempt == 1}
		}
		if ctx.Err() != nil || errors.Is(err, ErrCoalescerStopped) {
			return PublishResult{Err: fmt.Errorf("publish event: %w (last: %v)", err, last)}
		}
		last = err
		if !supervisor.Sleep(ctx, c.retry.Delay(attempt)) {
			return PublishResult{Err: fmt.Errorf("publish event: %w (last: %v)", ctx.Err(), last)}
		}
		if err := c.enqueue(ctx, q); err != nil {
			return PublishResult{Err: fmt.Errorf("%w (last: %v)", err, last)}
		}
	}
}

// attempt waits for the outcome of q's latest trip through Run: the acknowledgement,
// the publish's error, attemptTimeout without an answer, or the end of ctx.
func (c *Coalescer) attempt(ctx context.Context, q *queued) (*jetstream.PubAck, error) {
	t := time.NewTimer(attemptTimeout)
	defer t.Stop()
	var f jetstream.PubAckFuture
	select {
	case s := <-q.sent:
		if s.err != nil {
			return nil, s.err
		}
		f = s.future
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-t.C:
		return nil, fmt.Errorf("no acknowledgement within %s", attemptTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
