package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence"
)

// Endpoints tells the engines of endpoint changes the admin API saved in Postgres: the
// endpoint's consumers follow its filter, and the webhooks bucket (which every
// Dispatcher watches) holds its JSON without secrets. It also queues manual retries. It
// implements admin.WebhookSink; its methods block on JetStream and are safe for
// concurrent use.
type Endpoints struct {
	Bus *bus.Webhooks
}

// StreamEnds returns the last sequence of each stream the endpoints' consumers live on;
// read before an endpoint change is saved (as its StartSeqs), it is where the consumers
// the change adds start.
func (e Endpoints) StreamEnds(ctx context.Context) (map[string]uint64, error) {
	return e.Bus.Ends(ctx)
}

// PutWebhook makes w's consumers follow its filter (creating those it needs: right after
// w.StartSeqs, else at w.UpdatedAt) and puts w in the bucket.
func (e Endpoints) PutWebhook(ctx context.Context, w *persistence.Webhook) error {
	value, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode webhook %s: %w", w.ID, err)
	}
	return e.Bus.Put(ctx, specOf(w), value)
}

// DeleteWebhook removes endpoint id from the bucket and deletes its consumers.
func (e Endpoints) DeleteWebhook(ctx context.Context, id string) error {
	return e.Bus.Delete(ctx, id)
}

// Redeliver queues the notice at seq of stream for endpoint id again, after attempts
// earlier attempts; it returns bus.ErrNoticeGone when the stream no longer holds it.
func (e Endpoints) Redeliver(ctx context.Context, id, stream string, seq uint64, attempts int) error {
	return e.Bus.Redeliver(ctx, id, stream, seq, attempts)
}
