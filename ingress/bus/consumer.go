package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/persistence"
)

// ConsumerConfig configures the durable consumer of each partition.
type ConsumerConfig struct {
	// MaxAckPending bounds the messages of one partition in flight: the back-pressure
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
		c.MaxAckPending = 128
	}
	if len(c.BackOff) == 0 {
		c.BackOff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
}

// ConsumerName is the durable name of partition p's consumer.
func ConsumerName(p int) string { return "engine-p" + strconv.Itoa(p) }

// EnsurePartitionConsumer returns the durable pull consumer of partition p, creating it
// when missing. A consumer left with unacknowledged messages (its owner died) is
// recreated to start right after its ack floor, so the new owner receives every
// outstanding message again in stream order before anything newer: a user's events are
// applied in order even across a crash. Messages past the floor that were already
// committed are recognised by the engine and only acked.
func EnsurePartitionConsumer(ctx context.Context, js jetstream.JetStream, p int, cfg ConsumerConfig) (jetstream.Consumer, error) {
	cfg.setDefaults()
	cc := jetstream.ConsumerConfig{
		Durable:       ConsumerName(p),
		Description:   "campaign engine, partition " + strconv.Itoa(p),
		FilterSubject: PartitionFilter(p),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: cfg.MaxAckPending,
		MaxDeliver:    cfg.MaxDeliver,
		BackOff:       cfg.BackOff,
	}
	c, err := js.Consumer(ctx, EventsStream, cc.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = js.CreateConsumer(ctx, EventsStream, cc)
		if err != nil {
			return nil, fmt.Errorf("create consumer %s: %w", cc.Durable, err)
		}
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("look up consumer %s: %w", cc.Durable, err)
	}
	info := c.CachedInfo()
	if info.NumAckPending == 0 && info.Config.MaxAckPending == cc.MaxAckPending {
		return c, nil
	}
	if err := js.DeleteConsumer(ctx, EventsStream, cc.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s: %w", cc.Durable, err)
	}
	cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
	cc.OptStartSeq = info.AckFloor.Stream + 1
	c, err = js.CreateConsumer(ctx, EventsStream, cc)
	if err != nil {
		return nil, fmt.Errorf("recreate consumer %s: %w", cc.Durable, err)
	}
	return c, nil
}

// DLQEntry describes an event parked in the DLQ stream.
type DLQEntry struct {
	Partition  int
	StreamSeq  uint64
	Subject    string
	Deliveries uint64
	Reason     string
	Data       []byte
	Header     nats.Header
}

// PublishDLQ parks an event in the DLQ stream and waits for the acknowledgement. Parking the
// same stream message twice is deduplicated.
func PublishDLQ(ctx context.Context, js jetstream.JetStream, e DLQEntry) error {
	msg := &nats.Msg{
		Subject: "dlq." + strconv.Itoa(e.Partition),
		Data:    e.Data,
		Header:  nats.Header{},
	}
	if cid := e.Header.Get(HeaderCorrelationID); cid != "" {
		msg.Header.Set(HeaderCorrelationID, cid)
	}
	if id := e.Header.Get(jetstream.MsgIDHeader); id != "" {
		msg.Header.Set("Campaign-Event-Id", id)
	}
	msg.Header.Set(HeaderDLQReason, e.Reason)
	msg.Header.Set(HeaderDLQPartition, strconv.Itoa(e.Partition))
	msg.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(e.Deliveries, 10))
	msg.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(e.StreamSeq, 10))
	msg.Header.Set(HeaderDLQSubject, e.Subject)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("dlq-"+strconv.FormatUint(e.StreamSeq, 10))); err != nil {
		return fmt.Errorf("publish to DLQ: %w", err)
	}
	return nil
}

// RewardSubject is the REWARDS subject of a reward.
func RewardSubject(campaignID, userToken string) string {
	return "rewards." + campaignID + "." + userToken
}

// RewardMsg builds the REWARDS message of r; its Nats-Msg-Id is the reward id.
func RewardMsg(r *persistence.Reward, userToken, correlationID string, data []byte) *nats.Msg {
	msg := &nats.Msg{Subject: RewardSubject(r.CampaignID, userToken), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, r.ID)
	if correlationID != "" {
		msg.Header.Set(HeaderCorrelationID, correlationID)
	}
	return msg
}
