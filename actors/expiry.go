package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// sweepExpiry finds users whose points are due to expire and sends each a points.expire
// event, so expiry happens even for users who send nothing more: the user's actor
// applies it in order with the user's other events, exactly once. Event ids are derived
// from the user and the expiry time, so several engines sweeping at once, or a sweep
// repeated before the event is applied, add nothing.
func (e *Engine) sweepExpiry(ctx context.Context) error {
	if e.cfg.ExpirySweep < 0 {
		return nil
	}
	pub := bus.NewPublisher(e.deps.JS)
	t := time.NewTicker(e.cfg.ExpirySweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now().UTC()
		due, err := e.deps.Store.DueExpiries(ctx, now, 1000)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("expiry sweep", "err", err)
			}
			continue
		}
		if len(due) == 0 {
			continue
		}
		evs := make([]*event.Event, len(due))
		for i, d := range due {
			h := sha256.Sum256([]byte(d.UserID))
			evs[i] = &event.Event{
				ID:     "exp_" + hex.EncodeToString(h[:12]) + "_" + strconv.FormatInt(d.NextExpiry.UnixNano(), 36),
				UserID: d.UserID, Type: event.TypeExpire, OccurredAt: now,
			}
		}
		for i, r := range pub.PublishEvents(ctx, evs, "") {
			if r.Err != nil {
				e.log.Warn("expiry sweep: publish", "user_id", evs[i].UserID, "err", r.Err)
			}
		}
	}
}
