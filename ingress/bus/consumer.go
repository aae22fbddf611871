package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// EnsureConsumers returns the durable consumers spreading the partitions of EVENTS over
// consumers lanes (see LaneRanges), creating, recreating and deleting engine consumers as
// needed so that no message that was not acked is lost:
//
//   - a lane whose consumer exists with the same configuration and nothing unacked is used
//     as it is;
//   - otherwise (a new layout, or an engine that died with messages in flight) the lane's
//     consumer is created to start right after the lowest ack floor of the existing engine
//     consumers covering any of its partitions, so the new owner receives every
//     outstanding message again in stream order before anything newer (a user's events are
//     applied in order even across a crash; messages past a floor that were already
//     committed are recognised by the engine and only acked); with no such consumer, it
//     starts at the beginning of the stream;
//   - engine consumers of another layout are deleted once every lane exists.
func EnsureConsumers(ctx context.Context, js jetstream.JetStream, partitions, consumers int, cfg ConsumerConfig) ([]Lane, error) {
	cfg.setDefaults()
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", EventsStream, err)
	}
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
	lanes := LaneRanges(partitions, consumers)
	want := map[string]bool{}
	for i := range lanes {
		l := &lanes[i]
		name := l.Name()
		want[name] = true
		cc := laneConfig(*l, cfg)
		if info, ok := existing[name]; ok && info.NumAckPending == 0 && sameLane(info.Config, cc) {
			if l.Consumer, err = stream.Consumer(ctx, name); err != nil {
				return nil, fmt.Errorf("look up consumer %s: %w", name, err)
			}
			continue
		}
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
		if _, ok := existing[name]; ok {
			if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("reset consumer %s: %w", name, err)
			}
		}
		if start > 0 {
			cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cc.OptStartSeq = start
		}
		if l.Consumer, err = stream.CreateConsumer(ctx, cc); err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", name, err)
		}
	}
	for name := range existing {
		if want[name] {
			continue
		}
		if err := stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s of an earlier layout: %w", name, err)
		}
	}
	return lanes, nil
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

// sameLane reports whether a stored consumer configuration is the one wanted (the fields
// EnsureConsumers sets, apart from where it started).
func sameLane(got, want jetstream.ConsumerConfig) bool {
	return got.FilterSubject == want.FilterSubject && slices.Equal(got.FilterSubjects, want.FilterSubjects) &&
		got.MaxAckPending == want.MaxAckPending && got.MaxDeliver == want.MaxDeliver &&
		slices.Equal(got.BackOff, want.BackOff) && got.AckPolicy == want.AckPolicy
}
