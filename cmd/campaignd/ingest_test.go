package main

// The ingest paths: how events reach campaignd (DESIGN §4). The guarantee suite runs
// over all of them; the crash and outage tests send their load through one.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// ingestFeatures are where the ingest paths legitimately differ.
type ingestFeatures struct {
	// refusesSynchronously: an invalid or reserved event is answered at once with a 400
	// problem naming the field and is never stored (HTTP). Without it the event is
	// stored and the engine parks it in the DLQ with the reason (NATS).
	refusesSynchronously bool
}

// ingester is one way events reach campaignd.
type ingester struct {
	name     string
	features ingestFeatures
	// try makes one attempt to store ev in the campaignd behind c. A refusal is in the
	// receipt; an error means the event may not be stored and is worth retrying with the
	// same id, unless it wraps errUnexpected. try does not touch the test (the load's
	// goroutines call it) and counts what it saw in st.
	try func(ctx context.Context, c *client, ev map[string]any, st *ingestStats) (receipt, error)
}

// receipt is what an ingester got back for an event.
type receipt struct {
	duplicate bool     // the id was stored before (HTTP 200 "duplicate":true; NATS PubAck.Duplicate)
	refused   *problem // the synchronous refusal; nil when the event was stored
}

// errUnexpected marks an answer that no retry will change.
var errUnexpected = errors.New("unexpected answer")

var (
	// httpIngest is a storefront: POST /v1/events with its API key.
	httpIngest = ingester{name: "http", features: ingestFeatures{refusesSynchronously: true}, try: tryHTTP}
	// natsIngest is a backend service: a JetStream publish to events.<token> with
	// Nats-Msg-Id = event id (publishEvent).
	natsIngest = ingester{name: "nats", try: tryNATS}

	ingesters = []ingester{httpIngest, natsIngest}
)

func tryHTTP(ctx context.Context, c *client, ev map[string]any, st *ingestStats) (receipt, error) {
	res, err := c.try(ctx, "POST", "/v1/events", "key:"+c.apiKey, ev)
	if err != nil {
		st.transportErrors.Add(1)
		return receipt{}, err
	}
	switch {
	case res.status == http.StatusAccepted || res.status == http.StatusOK:
		var out struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(res.body, &out); err != nil || out.ID != ev["id"] || out.Duplicate != (res.status == http.StatusOK) {
			return receipt{}, fmt.Errorf("%w: event %v: %d %s", errUnexpected, ev["id"], res.status, res.body)
		}
		return receipt{duplicate: out.Duplicate}, nil
	case res.status == http.StatusUnauthorized: // the key may not have reached ingress yet
		st.unauthorized.Add(1)
		return receipt{}, fmt.Errorf("event %v: 401 %s", ev["id"], res.body)
	case res.status == http.StatusTooManyRequests || res.status >= 500:
		return receipt{}, fmt.Errorf("event %v: %d %s", ev["id"], res.status, res.body)
	case res.status >= 400 && res.status < 500:
		var p problem
		if ct := res.header.Get("Content-Type"); ct != "application/problem+json" {
			return receipt{}, fmt.Errorf("%w: event %v: %d with Content-Type %q", errUnexpected, ev["id"], res.status, ct)
		}
		if err := json.Unmarshal(res.body, &p); err != nil || p.Status != res.status {
			return receipt{}, fmt.Errorf("%w: event %v: %d problem %s", errUnexpected, ev["id"], res.status, res.body)
		}
		return receipt{refused: &p}, nil
	default:
		return receipt{}, fmt.Errorf("%w: event %v: %d %s", errUnexpected, ev["id"], res.status, res.body)
	}
}

func tryNATS(ctx context.Context, c *client, ev map[string]any, st *ingestStats) (receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ack, err := publishEvent(ctx, c.jetStream(), ev)
	if errors.Is(err, errUnexpected) {
		return receipt{}, err
	}
	if err != nil {
		st.transportErrors.Add(1)
		return receipt{}, fmt.Errorf("event %v: publish: %w", ev["id"], err)
	}
	if ack.Stream != bus.EventsStream {
		return receipt{}, fmt.Errorf("%w: event %v stored in stream %q", errUnexpected, ev["id"], ack.Stream)
	}
	return receipt{duplicate: ack.Duplicate}, nil
}

// send makes one attempt to store ev through the ingester and fails the test unless
// campaignd answered (stored, duplicate or refused).
func (in ingester) send(t *testing.T, c *client, ev map[string]any) receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := in.try(ctx, c, ev, new(ingestStats))
	require.NoError(t, err, "%s: send event %v", in.name, ev["id"])
	return r
}

// store sends ev until it is stored (a first time or as a duplicate of an earlier
// attempt whose answer was lost), backing off between attempts; a refusal or an
// unexpected answer is an error. st, unless nil, counts what it saw. Any goroutine may
// call it.
func (in ingester) store(ctx context.Context, c *client, ev map[string]any, st *ingestStats) error {
	if st == nil {
		st = new(ingestStats)
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			st.retries.Add(1)
			// Paces the retries while campaignd is down; not waiting for a condition.
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: event %v not stored: %w", in.name, ev["id"], ctx.Err())
			case <-time.After(time.Duration(min(attempt, 10)) * 20 * time.Millisecond):
			}
		}
		r, err := in.try(ctx, c, ev, st)
		switch {
		case err == nil && r.refused != nil:
			return fmt.Errorf("%s: event %v refused: %d %s (field %q)", in.name, ev["id"], r.refused.Status, r.refused.Detail, r.refused.Field)
		case err == nil && r.duplicate:
			st.duplicate.Add(1)
			return nil
		case err == nil:
			st.accepted.Add(1)
			return nil
		case errors.Is(err, errUnexpected):
			return err
		}
	}
}

// ingestStats counts what an ingester saw.
type ingestStats struct {
	accepted, duplicate, retries, transportErrors, unauthorized atomic.Int64
}

func (s *ingestStats) String() string {
	return fmt.Sprintf("stored=%d, duplicate=%d, retries=%d (transport errors=%d, 401 while keys load=%d)",
		s.accepted.Load(), s.duplicate.Load(), s.retries.Load(), s.transportErrors.Load(), s.unauthorized.Load())
}
