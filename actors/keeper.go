package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// keepEvery is how often the lane keeper looks at the lanes' consumers.
const keepEvery = time.Second

// keepLanes looks at the consumer of every running lane each keepEvery until ctx ends:
// it samples the lag and the ack floor, and creates again a consumer that disappeared
// under its owner (deleted by hand or with its stream), so the lane goes on from its last
// ack floor. A consumer is created again only once it was missing on two looks in a row:
// one missing for a moment is being handed over (TakeLane deletes and creates it).
func (e *Engine) keepLanes(ctx context.Context) error {
	t := time.NewTicker(keepEvery)
	defer t.Stop()
	gone := map[string]bool{} // missing at the last look
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		stream, err := e.deps.JS.Stream(ctx, bus.EventsStream)
		if err != nil {
			continue // missing (the app's keeper creates it first) or NATS away
		}
		created := stream.CachedInfo().Created
		now := map[string]bool{}
		for _, p := range e.runningLanes() {
			if !e.keepLane(ctx, stream, created, p, gone[p.name]) {
				now[p.name] = true
			}
		}
		gone = now
	}
}

// keepLane samples p's consumer and reports whether it exists; when it is missing and
// was at the last look too, and this engine still holds the lane, it creates it again.
func (e *Engine) keepLane(ctx context.Context, stream jetstream.Stream, created time.Time, p *lane, goneBefore bool) bool {
	c, err := stream.Consumer(ctx, p.name)
	switch {
	case err == nil:
		info := c.CachedInfo()
		p.sawFloor(created, info.AckFloor.Stream)
		e.metrics.pending.WithLabelValues(p.name).Set(float64(info.NumPending))
		return true
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return true // NATS is busy or away: look again next time
	case !goneBefore || !e.owner.holds(p.name):
		return false // just noticed, or handed over or lost: not ours to create
	}
	floor := p.floorIn(created)
	c, err = bus.RestoreLane(ctx, e.deps.JS, p.span, e.cfg.Consumer, floor)
	if err != nil {
		e.log.Warn("create missing lane consumer again", "lane", p.name, "err", err)
		return false
	}
	p.replace(c)
	e.metrics.recreated.Inc()
	e.log.Error("lane consumer was missing; created again after the last ack floor seen", "lane", p.name, "after_seq", floor)
	return true
}

// missingLanes names the running lanes whose consumer does not exist now.
func (e *Engine) missingLanes(ctx context.Context) ([]string, error) {
	stream, err := e.deps.JS.Stream(ctx, bus.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", bus.EventsStream, err)
	}
	var out []string
	for _, p := range e.runningLanes() {
		_, err := stream.Consumer(ctx, p.name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			out = append(out, p.name)
		case err != nil:
			return nil, fmt.Errorf("look up consumer %s: %w", p.name, err)
		}
	}
	slices.Sort(out)
	return out, nil
}
