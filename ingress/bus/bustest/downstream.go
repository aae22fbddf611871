package bustest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// CheckDownstreamLimitedTo requires of the server (or cluster) at url, whose downstream
// identity is limited to the consumer named allowed (bus.DownstreamPermissions(allowed)):
// downstream creates that durable consumer on REWARDS and LOYALTY, reads a notice from it
// and acks it; it cannot create a consumer of another name, nor look up, pull from or ack
// a webhook consumer (webhook-<id>, which this check creates as campaignd), whose notice
// stays pending. The streams must exist (bus.EnsureStreams).
func CheckDownstreamLimitedTo(t *testing.T, url string, ids Identities, allowed string) {
	t.Helper()
	run := "limit-check-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := connect(t, url, "campaignd", ids.Campaignd)
	downstream := connect(t, url, "downstream", ids.Downstream)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	notices := map[string]string{bus.RewardsStream: bus.RewardSubject(run, run), bus.LoyaltyStream: bus.TierChangedSubject(run)}
	hook := bus.WebhookConsumerName(run)
	for stream, subject := range notices {
		if _, err := app.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: hook, FilterSubject: subject,
			AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatalf("create %s on %s as campaignd: %v", hook, stream, err)
		}
		mustPublish(t, app, subject, run+"-notice", `{"notice":true}`)
	}

	t.Run("downstream uses its named consumer", func(t *testing.T) {
		for stream, subject := range notices {
			cons, err := downstream.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: allowed, FilterSubject: subject,
				AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatalf("%s: create %s: %v", stream, allowed, err)
			}
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(patience))
			if err != nil {
				t.Fatalf("%s: fetch from %s: %v", stream, allowed, err)
			}
			n := 0
			for m := range batch.Messages() {
				n++
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatalf("%s: ack on %s: %v", stream, allowed, err)
				}
			}
			if n != 1 {
				t.Fatalf("%s: %d notices from %s, want 1 (%v)", stream, n, allowed, batch.Error())
			}
			if _, err := downstream.js.Consumer(ctx, stream, allowed); err != nil {
				t.Fatalf("%s: look up %s: %v", stream, allowed, err)
			}
		}
	})

	t.Run("downstream cannot use another consumer or a webhook consumer", func(t *testing.T) {
		for stream, subject := range notices {
			other := run + "-other"
			downstream.refused(t, "$JS.API.CONSUMER.CREATE."+stream+"."+other+"."+subject, func(ctx context.Context) error {
				_, err := downstream.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: other, FilterSubject: subject})
				return err
			})
			downstream.refused(t, "$JS.API.CONSUMER.INFO."+stream+"."+hook, func(ctx context.Context) error {
				_, err := downstream.js.Consumer(ctx, stream, hook)
				return err
			})
			next := "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + hook
			downstream.refused(t, next, func(ctx context.Context) error {
				_, err := downstream.nc.RequestWithContext(ctx, next, []byte(`{"batch":1}`))
				return err
			})
			cons, err := app.js.Consumer(ctx, stream, hook)
			if err != nil {
				t.Fatalf("%s: look up %s as campaignd: %v", stream, hook, err)
			}
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatalf("%s: info of %s: %v", stream, hook, err)
			}
			if info.NumPending != 1 || info.NumAckPending != 0 || info.AckFloor.Stream != 0 {
				t.Fatalf("%s: %s's state %+v: its notice must be untouched", stream, hook, info)
			}
		}
	})
}
