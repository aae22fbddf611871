package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Every message the engine sends downstream (REWARDS, LOYALTY, DLQ) is built here: its
// subject, Nats-Msg-Id (the deduplication key) and headers. Bodies are the caller's
// JSON.

// Notice is one outgoing message for downstream systems.
type Notice struct {
	// Subject is where it goes; use RewardSubject, PointsExpiredSubject,
	// TierChangedSubject or CouponRedeemedSubject.
	Subject string
	// ID is its Nats-Msg-Id, stable across redeliveries, so a republished notice is
	// dropped by the stream's duplicate window.
	ID            string
	CorrelationID string
	Body          []byte
}

// Msg is the NATS message of n.
func (n *Notice) Msg() *nats.Msg {
	msg := &nats.Msg{Subject: n.Subject, Data: n.Body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, n.ID)
	if n.CorrelationID != "" {
		msg.Header.Set(HeaderCorrelationID, n.CorrelationID)
	}
	return msg
}

// RewardNotice is the REWARDS message of one reward: Nats-Msg-Id = the reward id.
func RewardNotice(campaignID, userToken, rewardID, correlationID string, body []byte) Notice {
	return Notice{Subject: RewardSubject(campaignID, userToken), ID: rewardID, CorrelationID: correlationID, Body: body}
}

// PointsExpiredNotice is the LOYALTY message of the n-th expiry entry of an event.
func PointsExpiredNotice(userToken, eventID string, n int, body []byte) Notice {
	return Notice{Subject: PointsExpiredSubject(userToken), ID: "exp_" + eventID + "_" + strconv.Itoa(n), Body: body}
}

// TierChangedNotice is the LOYALTY message of the tier change an event caused.
func TierChangedNotice(userToken, eventID string, body []byte) Notice {
	return Notice{Subject: TierChangedSubject(userToken), ID: "tier_" + eventID, Body: body}
}

// CouponRedeemedNotice is the LOYALTY message of the redemption of a coupon code:
// Nats-Msg-Id coupon_redeemed_<code> (a code is redeemed once, so repeating the
// redemption's announcement is deduplicated).
func CouponRedeemedNotice(userToken, code, correlationID string, body []byte) Notice {
	return Notice{Subject: CouponRedeemedSubject(userToken), ID: "coupon_redeemed_" + code, CorrelationID: correlationID, Body: body}
}

// NoticePublisher publishes single notices and waits for JetStream's acknowledgement.
// It is safe for concurrent use.
type NoticePublisher struct{ js jetstream.JetStream }

// NewNoticePublisher returns a NoticePublisher over js.
func NewNoticePublisher(js jetstream.JetStream) *NoticePublisher { return &NoticePublisher{js: js} }

// PublishNotice publishes n and waits for the acknowledgement until ctx ends.
func (p *NoticePublisher) PublishNotice(ctx context.Context, n Notice) error {
	if _, err := p.js.PublishMsg(ctx, n.Msg()); err != nil {
		return fmt.Errorf("publish notice %s: %w", n.ID, err)
	}
	return nil
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

// Msg is the DLQ message of e: the stored body, with the headers of DESIGN §5.
func (e *DLQEntry) Msg() *nats.Msg {
	msg := &nats.Msg{Subject: DLQSubject(e.Partition), Data: e.Data, Header: nats.Header{}}
	if cid := e.Header.Get(HeaderCorrelationID); cid != "" {
		msg.Header.Set(HeaderCorrelationID, cid)
	}
	if id := e.Header.Get(jetstream.MsgIDHeader); id != "" {
		msg.Header.Set(HeaderDLQEventID, id)
	}
	msg.Header.Set(HeaderDLQReason, e.Reason)
	msg.Header.Set(HeaderDLQPartition, strconv.Itoa(e.Partition))
	msg.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(e.Deliveries, 10))
	msg.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(e.StreamSeq, 10))
	msg.Header.Set(HeaderDLQSubject, e.Subject)
	return msg
}

// PublishDLQ parks an event in the DLQ stream and waits for the acknowledgement. Parking
// the same stream message twice is deduplicated (Nats-Msg-Id dlq-<stream seq>).
func PublishDLQ(ctx context.Context, js jetstream.JetStream, e DLQEntry) error {
	if _, err := js.PublishMsg(ctx, e.Msg(), jetstream.WithMsgID("dlq-"+strconv.FormatUint(e.StreamSeq, 10))); err != nil {
		return fmt.Errorf("publish to DLQ: %w", err)
	}
	return nil
}
