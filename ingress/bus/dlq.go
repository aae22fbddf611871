package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderDLQEventID carries the parked event's id (its original Nats-Msg-Id).
const HeaderDLQEventID = "Campaign-Event-Id"

// Errors of DLQ operations.
var (
	// ErrDLQNotFound: no DLQ entry has this id (never parked, or deleted).
	ErrDLQNotFound = errors.New("dlq: entry not found")
	// ErrDLQNotReplayable: the entry does not name the subject it came from.
	ErrDLQNotReplayable = errors.New("dlq: entry has no original events subject")
	// ErrReplayDuplicate: JetStream still remembers the event id (its duplicate window
	// has not passed since the event was first stored), so the replay was dropped. The
	// entry is kept; replay it after the window.
	ErrReplayDuplicate = errors.New("dlq: the event id is still inside the EVENTS duplicate window")
)

// DLQMessage is one entry of the DLQ stream.
type DLQMessage struct {
	// ID is the DLQ stream sequence of the entry.
	ID         uint64
	Reason     string
	Partition  int
	Deliveries uint64
	// StreamSeq is the sequence of the original message in EVENTS.
	StreamSeq uint64
	// Subject is the original stored subject, "<partition>.<kind>.<token>".
	Subject string
	// EventID is the event's id when known (header or payload), else empty.
	EventID       string
	CorrelationID string
	Data          []byte
	ParkedAt      time.Time
}

// DLQ lists, replays and deletes entries of the DLQ stream. It is safe for concurrent use.
type DLQ struct {
	js jetstream.JetStream
}

// NewDLQ returns a DLQ over js.
func NewDLQ(js jetstream.JetStream) *DLQ { return &DLQ{js: js} }

// List returns up to limit entries whose id is greater than after, oldest first. It
// blocks on one JetStream request per entry.
func (d *DLQ) List(ctx context.Context, after uint64, limit int) ([]DLQMessage, error) {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", DLQStream, err)
	}
	var out []DLQMessage
	seq := after + 1
	for len(out) < limit {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("dlq.>"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read DLQ entry after %d: %w", seq-1, err)
		}
		out = append(out, dlqMessage(m))
		seq = m.Sequence + 1
	}
	return out, nil
}

// Get returns the entry id; ErrDLQNotFound when there is none.
func (d *DLQ) Get(ctx context.Context, id uint64) (DLQMessage, error) {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return DLQMessage{}, fmt.Errorf("look up stream %s: %w", DLQStream, err)
	}
	m, err := s.GetMsg(ctx, id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DLQMessage{}, ErrDLQNotFound
	}
	if err != nil {
		return DLQMessage{}, fmt.Errorf("read DLQ entry %d: %w", id, err)
	}
	return dlqMessage(m), nil
}

// Replay publishes the parked event again to the subject it was first published to
// (events.<token> or ops.<token>), with Nats-Msg-Id = its event id, waits for JetStream's ack, then deletes
// the entry. An event that was applied already changes nothing (the engine's processed
// record drops it). It returns ErrDLQNotFound, ErrDLQNotReplayable, or
// ErrReplayDuplicate when JetStream dropped the publish as a duplicate (the entry is
// then kept).
func (d *DLQ) Replay(ctx context.Context, id uint64) (DLQMessage, error) {
	m, err := d.Get(ctx, id)
	if err != nil {
		return m, err
	}
	stored, ok := ParseStoredSubject(m.Subject)
	if !ok {
		return m, ErrDLQNotReplayable
	}
	msg := &nats.Msg{Subject: stored.Published(), Data: m.Data, Header: nats.Header{}}
	if m.CorrelationID != "" {
		msg.Header.Set(HeaderCorrelationID, m.CorrelationID)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(EventsStream)}
	if m.EventID != "" {
		opts = append(opts, jetstream.WithMsgID(m.EventID))
	}
	ack, err := d.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return m, fmt.Errorf("replay DLQ entry %d: %w", id, err)
	}
	if ack.Duplicate {
		return m, ErrReplayDuplicate
	}
	if err := d.Delete(ctx, id); err != nil && !errors.Is(err, ErrDLQNotFound) {
		return m, fmt.Errorf("replayed DLQ entry %d as EVENTS %d but could not delete it: %w", id, ack.Sequence, err)
	}
	return m, nil
}

// Delete removes the entry id; ErrDLQNotFound when there is none.
func (d *DLQ) Delete(ctx context.Context, id uint64) error {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return fmt.Errorf("look up stream %s: %w", DLQStream, err)
	}
	if err := s.DeleteMsg(ctx, id); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return ErrDLQNotFound
		}
		return fmt.Errorf("delete DLQ entry %d: %w", id, err)
	}
	return nil
}

// Size is the number of entries in the DLQ stream.
func (d *DLQ) Size(ctx context.Context) (uint64, error) {
	s, err := d.js.Stream(ctx, DLQStream)
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", DLQStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", DLQStream, err)
	}
	return info.State.Msgs, nil
}

func dlqMessage(m *jetstream.RawStreamMsg) DLQMessage {
	h := m.Header
	out := DLQMessage{
		ID:            m.Sequence,
		Reason:        h.Get(HeaderDLQReason),
		Subject:       h.Get(HeaderDLQSubject),
		EventID:       h.Get(HeaderDLQEventID),
		CorrelationID: h.Get(HeaderCorrelationID),
		Data:          m.Data,
		ParkedAt:      m.Time,
	}
	out.Partition, _ = strconv.Atoi(h.Get(HeaderDLQPartition))
	out.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDLQDeliveries), 10, 64)
	out.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderDLQStreamSeq), 10, 64)
	if out.EventID == "" {
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m.Data, &ev) == nil {
			out.EventID = ev.ID
		}
	}
	return out
}
