package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/event"
)

// Phase is one measured run of a scenario against the server.
type Phase struct {
	Name string `json:"name"`
	// Transport is "http" (POST /v1/events or /v1/events/batch) or "nats" (JetStream
	// publish to events.<token>).
	Transport string `json:"transport"`
	// Rate is the target in events per second (open loop); 0 sends as fast as the
	// in-flight limit allows.
	Rate float64 `json:"rate"`
	// RateOf names an earlier phase; when set, Rate is RateFraction of that phase's
	// end-to-end throughput.
	RateOf       string  `json:"rate_of,omitempty"`
	RateFraction float64 `json:"rate_fraction,omitempty"`
	Duration     Dur     `json:"duration"`
	// Batch is events per HTTP request (1 uses POST /v1/events).
	Batch int `json:"batch"`
	// Conns is the number of HTTP connections or NATS connections, one sender each.
	Conns int `json:"conns"`
	// Campaigns is how many bench campaigns are active.
	Campaigns int `json:"campaigns"`
	// Users, Skew ("uniform" or "zipf") and Theta describe who sends.
	Users uint64  `json:"users"`
	Skew  string  `json:"skew"`
	Theta float64 `json:"theta,omitempty"`
	// Mix is the event mix, e.g. "purchase:90,view:10".
	Mix string `json:"mix"`
	// PayloadSize is the approximate size of one event's JSON in bytes.
	PayloadSize int `json:"payload_size"`
	// MaxInflight bounds events sent and not yet rewarded in max mode (0: 20000).
	MaxInflight int `json:"max_inflight,omitempty"`
	// Webhook is the bench endpoint's part: WebhookOff, WebhookOn or WebhookBacklog.
	Webhook string `json:"webhook,omitempty"`
}

// Dur is a time.Duration that marshals as a string such as "20s".
type Dur time.Duration

// MarshalJSON writes the duration as a string.
func (d Dur) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Dur) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Dur(v)
	return err
}

// PhaseResult is what one phase measured.
type PhaseResult struct {
	Phase
	Started time.Time `json:"started"`
	// Sent counts events scheduled; Accepted those the server acknowledged; Completed
	// those whose reward was seen; Failed those refused or lost in transport; Missing those
	// accepted whose reward did not arrive before the drain deadline.
	Sent      int64 `json:"sent"`
	Completed int64 `json:"completed"`
	Failed    int64 `json:"failed"`
	Missing   int64 `json:"missing"`
	Rewards   int64 `json:"rewards_seen"`
	// SendRate is events sent per second of send time; Throughput is events rewarded per
	// second from the phase start to the last reward (the end-to-end rate).
	SendRate   float64 `json:"send_rate"`
	Throughput float64 `json:"throughput"`
	Latency    Latency `json:"latency"`
	// AcceptRate is events acknowledged (sent and not failed) per second of send time;
	// Requests is the time to the 2xx of each HTTP request (HTTP only).
	AcceptRate float64          `json:"accept_rate"`
	Requests   *Latency         `json:"request_latency,omitempty"`
	Errors     map[string]int64 `json:"errors"`
	// SchedulerLag is the worst delay of the open-loop scheduler handing out a send.
	SchedulerLag Dur      `json:"scheduler_lag,omitempty"`
	Timeline     []Second `json:"timeline"`
	Server       Server   `json:"server"`
	// Profiles are the server's CPU and allocation profiles of the phase (a campaignd
	// child only).
	Profiles []Profile `json:"profiles,omitempty"`
	// Webhook is what the bench's webhook receiver got (phases with an endpoint).
	Webhook *WebhookStats `json:"webhook,omitempty"`
}

// Server is what the server's /metrics and /proc said about a phase.
type Server struct {
	CommitMeanMS    float64 `json:"commit_mean_ms"`
	CommitBatchMean float64 `json:"commit_batch_mean"`
	Commits         float64 `json:"commits"`
	Processed       float64 `json:"events_processed"`
	RSSPeakMB       float64 `json:"campaignd_rss_peak_mb"`
	PostgresRSSMB   float64 `json:"postgres_rss_mb,omitempty"`
	// CPU is cores used on average during the phase, by process group (campaignd,
	// postgres, driver), from /proc when the server is a child.
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
	// Stages is the engine's time per stage (stream, actor, batch, commit, publish,
	// total) for the events it published during the phase.
	Stages map[string]StageLatency `json:"stages,omitempty"`
}

// sender is one connection's worth of sending.
type sender interface {
	// send sends evs (JSON bodies) and reports failures to tr.
	send(ctx context.Context, tr *Tracker, evs []Event)
}

// httpSender posts to campaignd's ingest API.
type httpSender struct {
	client *http.Client
	url    string
	key    string
	batch  bool
	buf    bytes.Buffer
}

// batchResponse is the answer to POST /v1/events/batch.
type batchResponse struct {
	Results []struct {
		Status int `json:"status"`
	} `json:"results"`
}

func (s *httpSender) send(ctx context.Context, tr *Tracker, evs []Event) {
	s.buf.Reset()
	url := s.url + "/v1/events"
	if s.batch {
		url += "/batch"
		s.buf.WriteString(`{"events":[`)
		for i, ev := range evs {
			if i > 0 {
				s.buf.WriteByte(',')
			}
			s.buf.Write(ev.JSON)
		}
		s.buf.WriteString(`]}`)
	} else {
		s.buf.Write(evs[0].JSON)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(s.buf.Bytes()))
	if err != nil {
		failAll(tr, evs, "request")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if s.key != "" {
		req.Header.Set("Authorization", "ApiKey "+s.key)
	}
	sent := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		failAll(tr, evs, "transport")
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		failAll(tr, evs, "transport")
		return
	}
	if resp.StatusCode < 300 {
		tr.Answered(sent)
	}
	if resp.StatusCode >= 300 {
		failAll(tr, evs, "http_"+strconv.Itoa(resp.StatusCode))
		return
	}
	if !s.batch {
		if resp.StatusCode == http.StatusOK {
			tr.Failed(evs[0].Seq, "duplicate")
		}
		return
	}
	var br batchResponse
	if err := json.Unmarshal(body, &br); err != nil || len(br.Results) != len(evs) {
		failAll(tr, evs, "bad_batch_response")
		return
	}
	for i, r := range br.Results {
		switch r.Status {
		case http.StatusAccepted:
		case http.StatusOK:
			tr.Failed(evs[i].Seq, "duplicate")
		default:
			tr.Failed(evs[i].Seq, "item_"+strconv.Itoa(r.Status))
		}
	}
}

func failAll(tr *Tracker, evs []Event, kind string) {
	for _, ev := range evs {
		tr.Failed(ev.Seq, kind)
	}
}

// natsSender publishes asynchronously to JetStream on subject Subject(token); failures
// arrive in the connection's async error handler.
type natsSender struct {
	js      jetstream.JetStream
	subject func(token string) string
}

func (s *natsSender) send(ctx context.Context, tr *Tracker, evs []Event) {
	for _, ev := range evs {
		msg := &nats.Msg{Subject: s.subject(event.Token(ev.UserID)), Data: ev.JSON, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, tr.Prefix+strconv.FormatUint(ev.Seq, 10))
		if _, err := s.js.PublishMsgAsync(msg); err != nil {
			tr.Failed(ev.Seq, "nats_publish")
		}
	}
}

// newJetStream returns a JetStream context whose async publish errors are reported to
// the tracker held in cur.
func newJetStream(nc *nats.Conn, cur *atomic.Pointer[Tracker]) (jetstream.JetStream, error) {
	return jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(30*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			tr := cur.Load()
			if tr == nil {
				return
			}
			id := m.Header.Get(jetstream.MsgIDHeader)
			rest, ok := cutPrefix(id, tr.Prefix)
			seq, perr := strconv.ParseUint(rest, 10, 64)
			if !ok || perr != nil {
				tr.Error("nats_ack", 1)
				return
			}
			tr.Failed(seq, "nats_ack")
		}))
}

// natsPublishers opens n connections to url (with opts), each with a JetStream context
// from newJetStream, and returns both; the caller closes the connections once every
// publish is over. On an error it closes those it opened.
func natsPublishers(url string, n int, cur *atomic.Pointer[Tracker], opts ...nats.Option) ([]*nats.Conn, []jetstream.JetStream, error) {
	var ncs []*nats.Conn
	var jss []jetstream.JetStream
	for range n {
		nc, err := nats.Connect(url, opts...)
		if err != nil {
			closeConns(ncs)
			return nil, nil, err
		}
		ncs = append(ncs, nc)
		js, err := newJetStream(nc, cur)
		if err != nil {
			closeConns(ncs)
			return nil, nil, err
		}
		jss = append(jss, js)
	}
	return ncs, jss, nil
}

// natsSenders makes a sender per JetStream context, publishing to subject(token).
func natsSenders(jss []jetstream.JetStream, subject func(token string) string) []sender {
	senders := make([]sender, 0, len(jss))
	for _, js := range jss {
		senders = append(senders, &natsSender{js: js, subject: subject})
	}
	return senders
}

func closeConns(ncs []*nats.Conn) {
	for _, nc := range ncs {
		nc.Close()
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// drive runs the senders of one phase until end: open loop at rate (events/s) when rate
// is positive, else as fast as the in-flight bound allows. It returns the scheduler lag.
func drive(ctx context.Context, ph Phase, gen *Generator, tr *Tracker, senders []sender, start, end time.Time) time.Duration {
	batch := max(ph.Batch, 1)
	var wg sync.WaitGroup
	var lag time.Duration
	if ph.Rate > 0 {
		ticks := make(chan Tick, 65536)
		sched := Schedule{Start: start, Rate: ph.Rate / float64(batch)}
		wg.Add(1)
		go func() { defer wg.Done(); lag = sched.Run(ctx, end, ticks) }()
		for w, s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
				var buf []byte
				evs := make([]Event, batch)
				for t := range ticks {
					buf = buf[:0]
					for j := range batch {
						seq := t.I*uint64(batch) + uint64(j)
						buf, evs[j] = gen.Append(buf, r, tr.Prefix, seq, t.At)
						tr.Scheduled(seq, t.At)
					}
					s.send(ctx, tr, evs)
				}
			}()
		}
		wg.Wait()
		return lag
	}
	limit := int64(ph.MaxInflight)
	if limit <= 0 {
		limit = 20000
	}
	var next atomic.Uint64
	for w, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w)+1, uint64(start.UnixNano())))
			var buf []byte
			evs := make([]Event, batch)
			for ctx.Err() == nil {
				for tr.Outstanding()+int64(batch) > limit && time.Now().Before(end) && ctx.Err() == nil {
					time.Sleep(200 * time.Microsecond)
				}
				now := time.Now()
				if !now.Before(end) {
					return
				}
				first := next.Add(uint64(batch)) - uint64(batch)
				buf = buf[:0]
				for j := range batch {
					seq := first + uint64(j)
					buf, evs[j] = gen.Append(buf, r, tr.Prefix, seq, now)
					tr.Scheduled(seq, now)
				}
				s.send(ctx, tr, evs)
			}
		}()
	}
	wg.Wait()
	return 0
}

// httpClient returns a client keeping up to conns connections to one host.
func httpClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 2
	t.MaxIdleConnsPerHost = conns * 2
	t.MaxConnsPerHost = conns
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// phaseName returns a short label for progress lines.
func (ph Phase) label() string {
	mode := "max"
	if ph.Rate > 0 {
		mode = fmt.Sprintf("%.0f/s", ph.Rate)
	}
	return fmt.Sprintf("%s %s %s batch=%d conns=%d campaigns=%d users=%d %s", ph.Name, ph.Transport, mode, ph.Batch, ph.Conns, ph.Campaigns, ph.Users, ph.Skew)
}
