package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/actors/loyalty"
	"github.com/campaignmanager/campaignmanager/cel"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Baseline is one reference measurement of the same run: how fast a part of the path
// goes alone on the same machine.
type Baseline struct {
	Name string `json:"name"`
	// Rate is events (or evaluations) per second.
	Rate float64 `json:"rate"`
	// Parallel is evaluations per second on every core (CEL only).
	Parallel float64 `json:"parallel_rate,omitempty"`
	// NsPerOp is the time of one evaluation on one core (CEL only).
	NsPerOp float64 `json:"ns_per_op,omitempty"`
	// Latency is per request (HTTP) when measured.
	Latency *Latency `json:"request_latency,omitempty"`
	Count   int64    `json:"count"`
	Errors  int64    `json:"errors,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// BaselineStream is the stream the raw JetStream baseline publishes to; it is deleted
// afterwards.
const BaselineStream = "BENCH_BASELINE"

// CELBaseline evaluates the rule set of the first campaigns bench campaigns against
// generated events for d, on one goroutine and then on GOMAXPROCS goroutines.
func CELBaseline(gen *Generator, campaigns int, d time.Duration) (Baseline, error) {
	rs, errs := cel.NewRuleSet(Campaigns(campaigns))
	if len(errs) > 0 {
		return Baseline{}, fmt.Errorf("bench rule set: %v", errors.Join(errs...))
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	inputs := make([]cel.Input, 1024)
	matched := 0
	for i := range inputs {
		_, ev := gen.Append(nil, r, "cel-", uint64(i), now)
		e, err := event.Decode(ev.JSON, now)
		if err != nil {
			return Baseline{}, fmt.Errorf("decode generated event: %w", err)
		}
		inputs[i] = cel.Input{Event: &e, User: &loyalty.User{Tier: "silver", PurchaseCount: int64(i % 7), FirstSeen: now.Add(-time.Hour)}}
		m, _, err := rs.Evaluate(&inputs[i])
		if err != nil {
			return Baseline{}, err
		}
		if len(m) > 0 {
			matched++
		}
	}
	if matched != len(inputs) {
		return Baseline{}, fmt.Errorf("only %d of %d generated events match a bench campaign", matched, len(inputs))
	}
	loop := func(stop *atomic.Bool, off int) int64 {
		var n int64
		for !stop.Load() {
			for i := range 64 {
				_, _, _ = rs.Evaluate(&inputs[(off+int(n)+i)%len(inputs)])
			}
			n += 64
		}
		return n
	}
	var stop atomic.Bool
	t := time.AfterFunc(d/2, func() { stop.Store(true) })
	start := time.Now()
	n1 := loop(&stop, 0)
	single := float64(n1) / time.Since(start).Seconds()
	t.Stop()

	stop.Store(false)
	procs := runtime.GOMAXPROCS(0)
	var total atomic.Int64
	var wg sync.WaitGroup
	start = time.Now()
	time.AfterFunc(d/2, func() { stop.Store(true) })
	for w := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); total.Add(loop(&stop, w*97)) }()
	}
	wg.Wait()
	par := float64(total.Load()) / time.Since(start).Seconds()
	return Baseline{
		Name: "cel", Rate: single, Parallel: par, NsPerOp: 1e9 / single, Count: n1 + total.Load(),
		Note: fmt.Sprintf("cel.RuleSet.Evaluate, %d campaigns, 1 goroutine / %d goroutines", campaigns, procs),
	}, nil
}

// FiberBaseline starts a bare Fiber app in this process that decodes {"events":[…]} and
// answers one 202 result per event, and hits it with the same HTTP sender code as the
// real ingest, closed loop, for d.
func FiberBaseline(ctx context.Context, gen *Generator, batch, conns int, d time.Duration) (Baseline, error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 16 << 20})
	type item struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
	}
	app.Post("/v1/events/batch", func(c *fiber.Ctx) error {
		var req struct {
			Events []struct {
				ID         string         `json:"id"`
				UserID     string         `json:"user_id"`
				Type       string         `json:"type"`
				Amount     float64        `json:"amount"`
				Currency   string         `json:"currency"`
				OccurredAt time.Time      `json:"occurred_at"`
				Attributes map[string]any `json:"attributes"`
			} `json:"events"`
		}
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return c.Status(400).SendString(err.Error())
		}
		out := make([]item, len(req.Events))
		for i, e := range req.Events {
			out[i] = item{ID: e.ID, Status: 202}
		}
		return c.JSON(fiber.Map{"results": out})
	})
	app.Post("/v1/events", func(c *fiber.Ctx) error {
		var e map[string]any
		if err := json.Unmarshal(c.Body(), &e); err != nil {
			return c.Status(400).SendString(err.Error())
		}
		return c.Status(202).JSON(fiber.Map{"id": e["id"], "duplicate": false})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Baseline{}, err
	}
	go func() { _ = app.Listener(ln) }()
	// The server only serves this measurement: a failed shutdown changes no result.
	defer func() { _ = app.Shutdown() }()
	b, err := closedLoop(ctx, "fiber", gen, conns, batch, d, func() sender {
		return &httpSender{client: httpClient(conns), url: "http://" + ln.Addr().String(), batch: batch > 1}
	})
	b.Note = fmt.Sprintf("bare Fiber JSON handler in the driver process, batch %d, %d connections", batch, conns)
	return b, err
}

// closedLoop runs conns senders as fast as they go for d and measures events acknowledged
// per second and request latency.
func closedLoop(ctx context.Context, name string, gen *Generator, conns, batch int, d time.Duration, mk func() sender) (Baseline, error) {
	tr := NewTracker(name+"-", time.Now(), nil)
	hist := newHist()
	var mu sync.Mutex
	var next atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	client := mk()
	for w := range conns {
		s := client
		if w > 0 {
			s = mk()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w)+7, 9))
			var buf []byte
			evs := make([]Event, batch)
			for time.Now().Before(end) && ctx.Err() == nil {
				first := next.Add(uint64(batch)) - uint64(batch)
				now := time.Now()
				buf = buf[:0]
				for j := range batch {
					buf, evs[j] = gen.Append(buf, r, tr.Prefix, first+uint64(j), now)
					tr.Scheduled(first+uint64(j), now)
				}
				s.send(ctx, tr, evs)
				us := max(time.Since(now).Microseconds(), 1)
				mu.Lock()
				_ = hist.RecordValue(min(us, histMax))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	sent, _, failed := tr.Counts()
	lat := Summarize(hist)
	return Baseline{Name: name, Rate: float64(sent-failed) / el, Count: sent - failed, Errors: failed, Latency: &lat}, ctx.Err()
}

// JetStreamBaseline creates BENCH_BASELINE with the configuration of EVENTS on subjects
// benchbase.* (same partition transform), publishes generated events asynchronously with
// Nats-Msg-Id for d from conns connections, waits for every ack, and deletes the stream.
func JetStreamBaseline(ctx context.Context, natsURL string, gen *Generator, conns int, d time.Duration) (Baseline, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return Baseline{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Baseline{}, err
	}
	cfg, drop, err := createBaselineStream(ctx, js)
	if err != nil {
		return Baseline{}, err
	}
	defer drop()
	var cur atomic.Pointer[Tracker]
	tr := NewTracker("base-", time.Now(), nil)
	cur.Store(tr)
	ncs, jss, err := natsPublishers(natsURL, conns, &cur)
	if err != nil {
		return Baseline{}, err
	}
	// Every connection stays open until the measurement returns.
	defer closeConns(ncs)
	senders := natsSenders(jss, func(tok string) string { return "benchbase." + tok })
	start := time.Now()
	drive(ctx, Phase{Batch: 100, MaxInflight: 1 << 40}, gen, tr, senders, start, start.Add(d))
	waitAcks(jss, tr)
	el := time.Since(start).Seconds()
	s, err := js.Stream(ctx, BaselineStream)
	if err != nil {
		return Baseline{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Baseline{}, err
	}
	_, _, failed := tr.Counts()
	return Baseline{
		Name: "jetstream", Rate: float64(info.State.Msgs) / el, Count: int64(info.State.Msgs), Errors: failed,
		Note: fmt.Sprintf("async publish with Nats-Msg-Id into %s (EVENTS config, %s), %d connections, until every ack", BaselineStream, transformNote(cfg), conns),
	}, nil
}

// createBaselineStream creates BaselineStream (see baselineStreamConfig), replacing a
// leftover one, and returns its configuration and a func that deletes it.
func createBaselineStream(ctx context.Context, js jetstream.JetStream) (jetstream.StreamConfig, func(), error) {
	cfg, err := baselineStreamConfig(ctx, js)
	if err != nil {
		return cfg, nil, err
	}
	_ = js.DeleteStream(ctx, BaselineStream)
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return cfg, nil, fmt.Errorf("create %s: %w", BaselineStream, err)
	}
	return cfg, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, BaselineStream)
	}, nil
}

// JetStreamAckedBaseline is the bound of one event per request without HTTP: conns
// goroutines share one connection (as ingress does), each publishing one generated event
// into BENCH_BASELINE and waiting for its ack before the next, for d.
func JetStreamAckedBaseline(ctx context.Context, natsURL string, gen *Generator, conns int, d time.Duration) (Baseline, error) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return Baseline{}, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return Baseline{}, err
	}
	cfg, drop, err := createBaselineStream(ctx, js)
	if err != nil {
		return Baseline{}, err
	}
	defer drop()
	b, err := closedLoop(ctx, "jetstream-acked", gen, conns, 1, d, func() sender { return &ackedSender{js: js} })
	b.Note = fmt.Sprintf("one event per publish, each waiting for its ack, %d goroutines on one connection, into %s (%s)", conns, BaselineStream, transformNote(cfg))
	return b, err
}

// ackedSender publishes each event and waits for its ack (jetstream.PublishMsg).
type ackedSender struct{ js jetstream.JetStream }

func (s *ackedSender) send(ctx context.Context, tr *Tracker, evs []Event) {
	for _, ev := range evs {
		msg := &nats.Msg{Subject: "benchbase." + event.Token(ev.UserID), Data: ev.JSON, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, tr.Prefix+strconv.FormatUint(ev.Seq, 10))
		if _, err := s.js.PublishMsg(ctx, msg); err != nil {
			tr.Failed(ev.Seq, "nats_publish")
		}
	}
}

// baselineStreamConfig is the configuration of EVENTS renamed to BaselineStream, on
// benchbase.* and with the same partition transform over that subject's one token.
func baselineStreamConfig(ctx context.Context, js jetstream.JetStream) (jetstream.StreamConfig, error) {
	ev, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return jetstream.StreamConfig{}, fmt.Errorf("look up EVENTS: %w", err)
	}
	cfg := ev.CachedInfo().Config
	cfg.Name = BaselineStream
	cfg.Description = "campaignbench baseline; deleted after the run"
	cfg.Subjects = []string{"benchbase.*"}
	if cfg.SubjectTransform != nil {
		var p int
		if _, err := fmt.Sscanf(cfg.SubjectTransform.Destination, "{{partition(%d,", &p); err != nil {
			return jetstream.StreamConfig{}, fmt.Errorf("EVENTS transform %q: %w", cfg.SubjectTransform.Destination, err)
		}
		cfg.SubjectTransform = &jetstream.SubjectTransformConfig{
			Source:      "benchbase.*",
			Destination: fmt.Sprintf("{{partition(%d,1)}}.benchbase.{{wildcard(1)}}", p),
		}
	}
	return cfg, nil
}

// waitAcks waits up to 30 s per JetStream context for its outstanding publish acks,
// counting an ack_timeout error on tr for each that does not finish.
func waitAcks(jss []jetstream.JetStream, tr *Tracker) {
	for _, j := range jss {
		select {
		case <-j.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			tr.Error("ack_timeout", 1)
		}
	}
}

func transformNote(cfg jetstream.StreamConfig) string {
	if cfg.SubjectTransform == nil {
		return "no transform"
	}
	return cfg.SubjectTransform.Destination + ", dup window " + cfg.Duplicates.String() + ", " + strconv.Itoa(cfg.Replicas) + " replica"
}
