package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerConfig configures each durable engine consumer of EVENTS.
type ConsumerConfig struct {
	// MaxAckPending bounds the messages of one consumer in flight: the back-pressure
	// that keeps actor inboxes bounded.
	MaxAckPending int
	// BackOff is the redelivery schedule of a message that is not acked (a process that
	// died or stalled). Its first step is the ack wait.
	BackOff []time.Duration
	// MaxDeliver is the most deliveries of one message; the engine parks a message in the
	// DLQ on its last delivery.
	MaxDeliver int
}

func (c *ConsumerConfig) setDefaults() {
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 2048
	}
	if len(c.BackOff) == 0 {
		c.BackOff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
}

// Lane is one durable pull consumer of EVENTS and the contiguous range of partitions
// First..Last it filters on. A user's events all go through one partition, hence one lane,
// in stream order.
type Lane struct {
	First, Last int
	Consumer    jetstream.Consumer
}

// Name is the lane's durable consumer name.
func (l Lane) Name() string { return LaneName(l.First, l.Last) }

// lanePrefix starts the name of every engine consumer of EVENTS.
const lanePrefix = "engine-p"

// LaneName is the durable name of the consumer of partitions first..last: engine-p<first>
// for one partition, engine-p<first>-<last> for several.
func LaneName(first, last int) string {
	if first == last {
		return lanePrefix + strconv.Itoa(first)
	}
	return lanePrefix + strconv.Itoa(first) + "-" + strconv.Itoa(last)
}

// LaneRanges spreads partitions over consumers contiguous lanes of near-equal size
// (consumers outside 1..partitions means one lane per partition). Only First and Last are
// set.
func LaneRanges(partitions, consumers int) []Lane {
	if consumers <= 0 || consumers > partitions {
		consumers = partitions
	}
	lanes := make([]Lane, consumers)
	for i := range lanes {
		lanes[i] = Lane{First: i * partitions / consumers, Last: (i+1)*partitions/consumers - 1}
	}
	return lanes
}

// laneOf parses an engine consumer name back into its partition range.
func laneOf(name string) (first, last int, ok bool) {
	rest, found := strings.CutPrefix(name, lanePrefix)
	if !found {
		return 0, 0, false
	}
	a, b, two := strings.Cut(rest, "-")
	first, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	last = first
	if two {
		if last, err = strconv.Atoi(b); err != nil || last < first {
			return 0, 0, false
		}
	}
	return first, last, true
}

// EnsureConsumers takes every lane of the layout spreading the partitions of EVENTS over
// consumers lanes (see LaneRanges and TakeLane), then drops the engine consumers of
// other layouts (DropStaleLanes). It is what one engine that owns every partition does.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, partitions, consumers int, cfg ConsumerConfig) ([]Lane, error) {
	lanes := LaneRanges(partitions, consumers)
	for i := range lanes {
		c, err := TakeLane(ctx, js, lanes[i], cfg)
		if err != nil {
			return nil, err
		}
		lanes[i].Consumer = c
	}
	if err := DropStaleLanes(ctx, js, lanes); err != nil {
		return nil, err
	}
	return lanes, nil
}

// engineConsumers lists the engine consumers of EVENTS (any layout) by name.
func engineConsumers(ctx context.Context, stream jetstream.Stream) (map[string]*jetstream.ConsumerInfo, error) {
	existing := map[string]*jetstream.ConsumerInfo{}
	list := stream.ListConsumers(ctx)
	for info := range list.Info() {
		if _, _, ok := laneOf(info.Name); ok {
			existing[info.Name] = info
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list consumers of %s: %w", EventsStream, err)
	}
	return existing, nil
}

// TakeLane gives a lane's new owner its durable consumer, so that no message that was
// not acked is lost and nothing acked comes again beyond the ack floor: the lane's
// consumer is (re)created to start right after the lowest ack floor of the existing
// engine consumers covering any of its partitions — its own earlier consumer, or those
// of another layout — so the new owner receives every outstanding message again in
// stream order before anything newer (a user's events are applied in order even across
// a crash or a handover; messages past a floor that were already committed are
// recognised by the engine and only acked); with no such consumer, it starts at the
// beginning of the stream. Recreating it also ends the pulls of an earlier owner that may
// still be waiting on it (a frozen process), so every message goes to the new owner.
func TakeLane(ctx context.Context, js jetstream.JetStream, l Lane, cfg ConsumerConfig) (jetstream.Consumer, error) {
	return takeLane(ctx, js, l, cfg, 0)
}

// RestoreLane creates the consumer of l again after it disappeared under its owner
// (deleted by hand, or with its stream): like TakeLane, but when no other engine consumer
// covers its partitions it starts right after floor, the last ack floor the owner saw
// (0: the beginning of the stream), instead of at the beginning. What was applied past
// floor comes again and is recognised by the engine.
func RestoreLane(ctx context.Context, js jetstream.JetStream, l Lane, cfg ConsumerConfig, floor uint64) (jetstream.Consumer, error) {
	return takeLane(ctx, js, l, cfg, floor)
}

func takeLane(ctx context.Context, js jetstream.JetStream, l Lane, cfg ConsumerConfig, floor uint64) (jetstream.Consumer, error) {
	cfg.setDefaults()
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", EventsStream, err)
	}
	existing, err := engineConsumers(ctx, stream)
	if err != nil {
		return nil, err
	}
	name := l.Name()
	var start uint64
	for other, info := range existing {
		first, last, _ := laneOf(other)
		if first > l.Last || last < l.First {
			continue
		}
		if s := info.AckFloor.Stream + 1; start == 0 || s < start {
			start = s
		}
	}
	if start == 0 && floor > 0 {
		start = floor + 1
	}
	if _, ok := existing[name]; ok {
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("reset consumer %s: %w", name, err)
		}
	}
	cc := laneConfig(l, cfg)
	if start > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = start
	}
	c, err := stream.CreateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return c, nil
}

// DropStaleLanes deletes the engine consumers of other layouts than layout once every
// lane of layout that covers one of their partitions has its consumer (each started
// after their ack floors, see TakeLane), so nothing of theirs is needed any more.
func DropStaleLanes(ctx context.Context, js jetstream.JetStream, layout []Lane) error {
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", EventsStream, err)
	}
	existing, err := engineConsumers(ctx, stream)
	if err != nil {
		return err
	}
	current := map[string]bool{}
	for _, l := range layout {
		current[l.Name()] = true
	}
	for name := range existing {
		if current[name] {
			continue
		}
		first, last, _ := laneOf(name)
		covered := true
		for _, l := range layout {
			if l.First <= last && l.Last >= first && existing[l.Name()] == nil {
				covered = false
			}
		}
		if !covered {
			continue
		}
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("delete consumer %s of an earlier layout: %w", name, err)
		}
	}
	return nil
}

func laneConfig(l Lane, cfg ConsumerConfig) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       l.Name(),
		Description:   fmt.Sprintf("campaign engine, partitions %d to %d", l.First, l.Last),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: cfg.MaxAckPending,
		MaxDeliver:    cfg.MaxDeliver,
		BackOff:       cfg.BackOff,
	}
	if l.First == l.Last {
		cc.FilterSubject = PartitionFilter(l.First)
	} else {
		for p := l.First; p <= l.Last; p++ {
			cc.FilterSubjects = append(cc.FilterSubjects, PartitionFilter(p))
		}
	}
	return cc
}
