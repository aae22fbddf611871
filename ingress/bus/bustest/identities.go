package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// Identities are the connection options of each identity of a secured server.
type Identities struct {
	// Campaignd are the options campaignd connects with: its credentials and
	// nats.CustomInboxPrefix(bus.AppInboxPrefix).
	Campaignd []nats.Option
	// Ingest and Downstream are the credentials of those identities.
	Ingest, Downstream []nats.Option
}

// UserPassword is the connection option of a user with a password.
func UserPassword(user, password string) []nats.Option {
	return []nats.Option{nats.UserInfo(user, password)}
}

// patience is how long CheckIdentities waits for the server's answer or refusal (a refusal
// comes at once; the wait is long because the suites run under -race on a loaded machine).
const patience = 30 * time.Second

// CheckIdentities requires of the server (or cluster) at url what DESIGN §11 promises:
// anonymous and unknown clients are refused; ingest publishes to events.<token> and gets
// JetStream's ack, and can do nothing else (not publish to ops.>, put to or read a KV
// bucket, read EVENTS, land its acks on another subject, delete a consumer, purge or
// delete a stream); downstream consumes REWARDS and LOYALTY with a durable pull consumer
// and can do nothing else (not read EVENTS, KV or DLQ, see campaignd's replies, publish
// events, delete or purge). Each refusal is the server's permissions violation naming
// the subject, and what was attempted is checked not to have happened.
//
// The streams and buckets must exist (bus.EnsureStreams). It adds a little to them:
// messages and keys named identity-check-<n>, and a consumer identity-check-<n> on
// EVENTS, REWARDS and LOYALTY.
func CheckIdentities(t *testing.T, url string, ids Identities) {
	t.Helper()
	run := "identity-check-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	app := connect(t, url, "campaignd", ids.Campaignd)
	ingest := connect(t, url, "ingest", ids.Ingest)
	downstream := connect(t, url, "downstream", ids.Downstream)
	fx := newFixture(t, app, run)

	checkStrangers(t, url, app)
	checkIngest(t, app, ingest, fx, run)
	checkDownstreamJob(t, downstream, fx, run)
	checkDownstreamLimits(t, app, downstream, fx, run)
}

// checkStrangers: no anonymous, unknown or system client gets in.
func checkStrangers(t *testing.T, url string, app *identity) {
	t.Run("anonymous and unknown clients are refused", func(t *testing.T) {
		for name, opts := range map[string][]nats.Option{
			"anonymous":      nil,
			"wrong password": {nats.UserInfo(bus.CampaigndUser, "not-the-password")},
			"unknown user":   {nats.UserInfo("admin", "admin")},
			"system user":    {nats.UserInfo("sys", "sys")},
		} {
			nc, err := nats.Connect(url, append(opts, nats.NoReconnect())...)
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", name)
				continue
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("%s: %v, want an authorization violation", name, err)
			}
		}
	})

	t.Run("the system account is not reachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := app.nc.RequestWithContext(ctx, "$SYS.REQ.SERVER.PING.VARZ", nil); !errors.Is(err, nats.ErrNoResponders) {
			t.Errorf("campaignd asked the system account for the servers' state: %v, want no responders", err)
		}
	})

}

// checkIngest: ingest publishes events and gets their acks, and nothing else.
func checkIngest(t *testing.T, app, ingest *identity, fx *fixture, run string) {
	t.Run("ingest publishes to events.<token> and gets its ack", func(t *testing.T) {
		for _, dup := range []bool{false, true} {
			ack := mustPublish(t, ingest, bus.EventSubject(run), run+"-event", `{"id":"`+run+`-event"}`)
			if ack.Stream != bus.EventsStream || ack.Duplicate != dup {
				t.Fatalf("ack %+v, want stream %s, duplicate %v", ack, bus.EventsStream, dup)
			}
		}
		if _, err := fx.last(bus.EventsStream, "*."+bus.EventSubject(run)); err != nil {
			t.Fatalf("the event is not in %s: %v", bus.EventsStream, err)
		}
	})

	t.Run("ingest cannot publish to ops.<token>", func(t *testing.T) {
		ingest.refused(t, bus.OpsSubject(run), func(ctx context.Context) error {
			_, err := ingest.js.PublishMsg(ctx, eventMsg(bus.OpsSubject(run), run+"-op", `{"type":"points.adjust"}`))
			return err
		})
		fx.absent(t, bus.EventsStream, "*."+bus.OpsSubject(run))
	})

	t.Run("ingest cannot put to or read a KV bucket", func(t *testing.T) {
		for _, bucket := range []string{bus.CampaignsKV, bus.APIKeysKV, bus.SettingsKV} {
			ingest.refused(t, "$JS.API.STREAM.INFO.KV_"+bucket, func(ctx context.Context) error {
				_, err := ingest.js.KeyValue(ctx, bucket)
				return err
			})
		}
		for _, bucket := range []string{bus.CampaignsKV, bus.APIKeysKV} {
			subject := "$KV." + bucket + "." + run
			ingest.refused(t, subject, func(context.Context) error {
				return ingest.nc.Publish(subject, []byte(`{"forged":true}`))
			})
		}
		ingest.refused(t, "$KV."+bus.APIKeysKV+".>", func(context.Context) error {
			_, err := ingest.nc.SubscribeSync("$KV." + bus.APIKeysKV + ".>")
			return err
		})
		direct := "$JS.API.DIRECT.GET.KV_" + bus.APIKeysKV + ".$KV." + bus.APIKeysKV + "." + run
		ingest.refused(t, direct, func(ctx context.Context) error {
			_, err := ingest.nc.RequestWithContext(ctx, direct, nil)
			return err
		})
		fx.unchanged(t)
	})

	t.Run("ingest cannot read EVENTS", func(t *testing.T) {
		ingest.refused(t, "$JS.API.STREAM.INFO."+bus.EventsStream, func(ctx context.Context) error {
			_, err := ingest.js.Stream(ctx, bus.EventsStream)
			return err
		})
		ingest.refused(t, "$JS.API.CONSUMER.CREATE."+bus.EventsStream+"."+run+"-ingest", func(ctx context.Context) error {
			_, err := ingest.js.CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{Durable: run + "-ingest"})
			return err
		})
		ingest.refused(t, bus.KindEvents+".>", func(context.Context) error {
			_, err := ingest.nc.SubscribeSync(bus.KindEvents + ".>")
			return err
		})
	})

	t.Run("ingest's acks cannot be sent to another subject", func(t *testing.T) {
		// NATS does not check reply subjects against permissions, and JetStream acks to
		// the reply subject: in the app's account this would put the ack over a campaign
		// and store it as an engine-only event.
		opsSubject := bus.OpsSubject(run + "-reply")
		for subject, reply := range map[string]string{
			bus.EventSubject(run + "-kv"):  "$KV." + bus.CampaignsKV + "." + run,
			bus.EventSubject(run + "-ops"): opsSubject,
		} {
			if err := ingest.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: reply, Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		// Acks are sent in the order the stream stores: once this one is back, so are those.
		mustPublish(t, ingest, bus.EventSubject(run+"-ops"), run+"-after", `{}`)
		fx.unchanged(t)
		fx.absent(t, bus.EventsStream, "*."+opsSubject)
	})

	t.Run("ingest cannot delete a consumer or purge or delete a stream", func(t *testing.T) {
		ingest.refused(t, "$JS.API.CONSUMER.DELETE."+bus.EventsStream+"."+run, func(ctx context.Context) error {
			return ingest.js.DeleteConsumer(ctx, bus.EventsStream, run)
		})
		for _, stream := range []string{bus.EventsStream, bus.RewardsStream} {
			subject := "$JS.API.STREAM.PURGE." + stream
			ingest.refused(t, subject, func(ctx context.Context) error {
				_, err := ingest.nc.RequestWithContext(ctx, subject, []byte(`{}`))
				return err
			})
		}
		ingest.refused(t, "$JS.API.STREAM.DELETE."+bus.LoyaltyStream, func(ctx context.Context) error {
			return ingest.js.DeleteStream(ctx, bus.LoyaltyStream)
		})
		fx.unchanged(t)
	})

}

// checkDownstreamJob: downstream consumes REWARDS and LOYALTY and cannot read the rest.
func checkDownstreamJob(t *testing.T, downstream *identity, fx *fixture, run string) {
	t.Run("downstream consumes REWARDS and LOYALTY with a durable pull consumer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := downstream.js.AccountInfo(ctx); err != nil {
			t.Fatalf("account info: %v", err)
		}
		for stream, subject := range fx.notices {
			s, err := downstream.js.Stream(ctx, stream)
			if err != nil {
				t.Fatalf("%s: %v", stream, err)
			}
			cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: run, FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatalf("%s: create a durable consumer: %v", stream, err)
			}
			got := make(chan error, 1)
			cc, err := cons.Consume(func(m jetstream.Msg) {
				if m.Subject() != subject {
					got <- fmt.Errorf("%s: message on %s, want %s", stream, m.Subject(), subject)
					return
				}
				got <- m.DoubleAck(ctx)
			})
			if err != nil {
				t.Fatalf("%s: consume: %v", stream, err)
			}
			select {
			case err := <-got:
				if err != nil {
					t.Fatalf("%s: %v", stream, err)
				}
			case <-ctx.Done():
				t.Fatalf("%s: no message", stream)
			}
			cc.Stop()
			// A restarted service binds to its consumer by name.
			cons, err = downstream.js.Consumer(ctx, stream, run)
			if err != nil {
				t.Fatalf("%s: look up the consumer: %v", stream, err)
			}
			info, err := cons.Info(ctx)
			if err != nil {
				t.Fatalf("%s: consumer info: %v", stream, err)
			}
			if info.AckFloor.Consumer != 1 || info.NumAckPending != 0 || info.NumPending != 0 {
				t.Fatalf("%s: consumer state %+v, want the one message acked", stream, info)
			}
		}
	})

	t.Run("downstream cannot read EVENTS, KV or DLQ", func(t *testing.T) {
		for _, stream := range []string{bus.EventsStream, bus.DLQStream, "KV_" + bus.APIKeysKV, "KV_" + bus.CampaignsKV} {
			downstream.refused(t, "$JS.API.STREAM.INFO."+stream, func(ctx context.Context) error {
				_, err := downstream.js.Stream(ctx, stream)
				return err
			})
			downstream.refused(t, "$JS.API.CONSUMER.CREATE."+stream+"."+run, func(ctx context.Context) error {
				_, err := downstream.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: run})
				return err
			})
			direct := "$JS.API.DIRECT.GET." + stream
			downstream.refused(t, direct, func(ctx context.Context) error {
				_, err := downstream.nc.RequestWithContext(ctx, direct, []byte(`{"seq":1}`))
				return err
			})
		}
		downstream.refused(t, "$JS.API.STREAM.INFO.KV_"+bus.APIKeysKV, func(ctx context.Context) error {
			_, err := downstream.js.KeyValue(ctx, bus.APIKeysKV)
			return err
		})
		for _, subject := range []string{bus.KindEvents + ".>", bus.KindOps + ".>", "$KV.>", "dlq.>", "rewards.>", ">", bus.AppInboxPrefix + ".>"} {
			downstream.refused(t, subject, func(context.Context) error {
				_, err := downstream.nc.SubscribeSync(subject)
				return err
			})
		}
	})

}

// checkDownstreamLimits: downstream sees no replies of campaignd's and changes nothing.
func checkDownstreamLimits(t *testing.T, app, downstream *identity, fx *fixture, run string) {
	t.Run("downstream does not see campaignd's replies", func(t *testing.T) {
		inbox, err := downstream.nc.SubscribeSync("_INBOX.>")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = inbox.Unsubscribe() }()
		if err := downstream.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		fx.readSecrets(t)
		// downstream's own answer comes after anything sent to it before.
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if _, err := downstream.js.AccountInfo(ctx); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := inbox.NextMsgWithContext(ctx)
			if err != nil {
				t.Fatalf("downstream's own answer never came: %v", err)
			}
			if bytes.Contains(m.Data, []byte(fx.secret)) {
				t.Fatalf("downstream received campaignd's reply on %s: %s", m.Subject, m.Data)
			}
			if bytes.Contains(m.Data, []byte(`"type":"io.nats.jetstream.api.v1.account_info_response"`)) {
				return
			}
		}
	})

	t.Run("downstream cannot publish events", func(t *testing.T) {
		for _, subject := range []string{bus.EventSubject(run + "-down"), bus.OpsSubject(run + "-down")} {
			downstream.refused(t, subject, func(ctx context.Context) error {
				_, err := downstream.js.PublishMsg(ctx, eventMsg(subject, run+"-down", `{}`))
				return err
			})
			fx.absent(t, bus.EventsStream, "*."+subject)
		}
	})

	t.Run("downstream cannot delete or purge", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		rewards, err := downstream.js.Stream(ctx, bus.RewardsStream)
		if err != nil {
			t.Fatal(err)
		}
		downstream.refused(t, "$JS.API.STREAM.PURGE."+bus.RewardsStream, func(ctx context.Context) error {
			return rewards.Purge(ctx)
		})
		downstream.refused(t, "$JS.API.STREAM.MSG.DELETE."+bus.RewardsStream, func(ctx context.Context) error {
			return rewards.DeleteMsg(ctx, 1)
		})
		downstream.refused(t, "$JS.API.CONSUMER.DELETE."+bus.RewardsStream+"."+run, func(ctx context.Context) error {
			return rewards.DeleteConsumer(ctx, run)
		})
		downstream.refused(t, "$JS.API.CONSUMER.DELETE."+bus.EventsStream+"."+run, func(ctx context.Context) error {
			return downstream.js.DeleteConsumer(ctx, bus.EventsStream, run)
		})
		downstream.refused(t, "$JS.API.STREAM.DELETE."+bus.LoyaltyStream, func(ctx context.Context) error {
			return downstream.js.DeleteStream(ctx, bus.LoyaltyStream)
		})
		downstream.refused(t, "$JS.API.STREAM.UPDATE."+bus.RewardsStream, func(ctx context.Context) error {
			cfg := rewards.CachedInfo().Config
			cfg.MaxAge = time.Second
			_, err := downstream.js.UpdateStream(ctx, cfg)
			return err
		})
		fx.unchanged(t)
		if _, err := app.js.Consumer(ctx, bus.RewardsStream, run); err != nil {
			t.Fatalf("downstream's consumer is gone: %v", err)
		}
	})
}

// fixture is what CheckIdentities put in place as campaignd, to check nothing changed it.
type fixture struct {
	t   *testing.T
	app *identity
	// secret is a value only campaignd may read: in api_keys and in an EVENTS message.
	secret string
	run    string
	// kv is the revision of each key written, by bucket.
	kv map[string]uint64
	// msgs is the message count of each stream once the fixture was in place.
	msgs map[string]uint64
	// notices are the subject of the message published to REWARDS and LOYALTY.
	notices map[string]string
}

func newFixture(t *testing.T, app *identity, run string) *fixture {
	t.Helper()
	fx := &fixture{t: t, app: app, run: run, secret: run + "-secret", kv: map[string]uint64{}, msgs: map[string]uint64{},
		notices: map[string]string{
			bus.RewardsStream: bus.RewardSubject(run, run),
			bus.LoyaltyStream: bus.TierChangedSubject(run),
		}}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for _, bucket := range []string{bus.CampaignsKV, bus.APIKeysKV} {
		kv, err := app.js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatalf("bucket %s (run bus.EnsureStreams first): %v", bucket, err)
		}
		rev, err := kv.Put(ctx, run, []byte(`{"value":"`+fx.secret+`"}`))
		if err != nil {
			t.Fatalf("put %s/%s: %v", bucket, run, err)
		}
		fx.kv[bucket] = rev
	}
	mustPublish(t, app, bus.EventSubject(run+"-secret"), run+"-secret", `{"id":"`+fx.secret+`"}`)
	for _, subject := range fx.notices {
		mustPublish(t, app, subject, run+"-notice", `{"notice":true}`)
	}
	mustPublish(t, app, bus.DLQSubject(0), run+"-dlq", `{"parked":true}`)
	if _, err := app.js.CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{Durable: run, AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: "*." + bus.EventSubject(run)}); err != nil {
		t.Fatalf("create consumer %s on %s: %v", run, bus.EventsStream, err)
	}
	for _, stream := range []string{bus.EventsStream, bus.RewardsStream, bus.LoyaltyStream, bus.DLQStream} {
		fx.msgs[stream] = fx.count(stream)
	}
	return fx
}

func (fx *fixture) count(stream string) uint64 {
	fx.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	s, err := fx.app.js.Stream(ctx, stream)
	if err != nil {
		fx.t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		fx.t.Fatalf("stream %s: %v", stream, err)
	}
	return info.State.Msgs
}

// unchanged requires every key campaignd wrote as it left it, no stream to have lost a
// message (a running campaignd adds to them), and its consumer of EVENTS in place.
func (fx *fixture) unchanged(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for bucket, rev := range fx.kv {
		kv, err := fx.app.js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", bucket, err)
		}
		e, err := kv.Get(ctx, fx.run)
		if err != nil {
			t.Fatalf("%s/%s: %v", bucket, fx.run, err)
		}
		if e.Revision() != rev {
			t.Fatalf("%s/%s was changed: revision %d, value %s", bucket, fx.run, e.Revision(), e.Value())
		}
		if status, err := kv.Status(ctx); err != nil || status.Values() == 0 {
			t.Fatalf("bucket %s emptied: %v", bucket, err)
		}
	}
	for stream, n := range fx.msgs {
		if got := fx.count(stream); got < n {
			t.Fatalf("stream %s holds %d messages, had %d", stream, got, n)
		}
	}
	if _, err := fx.app.js.Consumer(ctx, bus.EventsStream, fx.run); err != nil {
		t.Fatalf("consumer %s of %s: %v", fx.run, bus.EventsStream, err)
	}
}

// last is the last message of stream on subject.
func (fx *fixture) last(stream, subject string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	s, err := fx.app.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctx, subject)
}

// absent requires stream to hold nothing on subject.
func (fx *fixture) absent(t *testing.T, stream, subject string) {
	t.Helper()
	if m, err := fx.last(stream, subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("%s holds a message on %s (%v): %+v", stream, subject, err, m)
	}
}

// readSecrets reads, as campaignd, what only campaignd may: the api_keys entry and the
// secret event (through a consumer, as the engine does).
func (fx *fixture) readSecrets(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	kv, err := fx.app.js.KeyValue(ctx, bus.APIKeysKV)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, fx.run); err != nil || !bytes.Contains(e.Value(), []byte(fx.secret)) {
		t.Fatalf("campaignd reads api_keys: %v", err)
	}
	cons, err := fx.app.js.OrderedConsumer(ctx, bus.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"*." + bus.EventSubject(fx.run+"-secret")}})
	if err != nil {
		t.Fatal(err)
	}
	// On a cluster, a pull right after the consumer's creation may find no server
	// answering for it yet (no responders): pull again.
	var m jetstream.Msg
	for {
		m, err = cons.Next(jetstream.FetchMaxWait(patience))
		if !errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !bytes.Contains(m.Data(), []byte(fx.secret)) {
		t.Fatalf("campaignd reads EVENTS: %v", err)
	}
}

// identity is one identity's connection, recording the permission violations the server
// reports to it.
type identity struct {
	name string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
	// changed is closed (and replaced) when a violation is recorded.
	changed chan struct{}
}

func connect(t *testing.T, url, name string, opts []nats.Option) *identity {
	t.Helper()
	id := &identity{name: name, changed: make(chan struct{})}
	opts = append(slices.Clone(opts), nats.Name("identity-check "+name), nats.ErrorHandler(id.record))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream as %s: %v", name, err)
	}
	id.nc, id.js = nc, js
	return id
}

func (id *identity) record(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	id.mu.Lock()
	id.violations = append(id.violations, err.Error())
	close(id.changed)
	id.changed = make(chan struct{})
	id.mu.Unlock()
}

// refused runs op as id and requires the server to refuse subject: a permissions
// violation naming it (for a publish or a subscription). A refused request waits for an
// answer that never comes, so op's context ends once the violation is in; a violation
// may also trail op's own return a little.
func (id *identity) refused(t *testing.T, subject string, op func(ctx context.Context) error) {
	t.Helper()
	id.mu.Lock()
	from := len(id.violations)
	id.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var opErr error
	done := make(chan struct{}) // closed once op returned, with its error in opErr
	go func() {
		defer close(done)
		opErr = op(ctx)
	}()
	want := `to "` + subject + `"`
	returned := done           // nil once op returned
	var grace <-chan time.Time // running once op returned
	for {
		id.mu.Lock()
		seen := slices.ContainsFunc(id.violations[from:], func(v string) bool { return strings.Contains(v, want) })
		changed := id.changed
		id.mu.Unlock()
		if seen {
			cancel()
			<-done
			return
		}
		select {
		case <-changed:
		case <-returned:
			grace, returned = time.After(2*time.Second), nil
		case <-grace:
			t.Fatalf("%s: the server did not refuse %s (the operation returned %v)", id.name, subject, opErr)
		case <-ctx.Done():
			t.Fatalf("%s: the server did not refuse %s within %s", id.name, subject, patience)
		}
	}
}

// eventMsg is a message on subject with Nats-Msg-Id msgID.
func eventMsg(subject, msgID, data string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Data = []byte(data)
	return m
}

// mustPublish publishes as id and returns JetStream's ack.
func mustPublish(t *testing.T, id *identity, subject, msgID, data string) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	ack, err := id.js.PublishMsg(ctx, eventMsg(subject, msgID, data))
	if err != nil {
		t.Fatalf("%s: publish to %s: %v", id.name, subject, err)
	}
	return ack
}
