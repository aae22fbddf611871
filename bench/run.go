package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Options configure Run.
type Options struct {
	Scenario Scenario
	// Server, NATS, Username and Password target an existing campaignd; when Server is
	// empty Run starts its own (built from the module, or Campaignd when set).
	Server, NATS       string
	Username, Password string
	Campaignd          string
	// ServerEnv is extra KEY=VALUE environment for the campaignd child (e.g.
	// CAMPAIGN_ACTOR_IDLE=10s, GOMEMLIMIT=1800MiB).
	ServerEnv []string
	// OutDir is where the result directory <scenario>-<timestamp> is made.
	OutDir string
	// NoBaselines skips the baselines (then no ratios).
	NoBaselines bool
	// Stderr receives progress lines.
	Stderr io.Writer
}

// Result is the machine-readable outcome of a run (result.json).
type Result struct {
	Scenario  string             `json:"scenario"`
	Started   time.Time          `json:"started"`
	Finished  time.Time          `json:"finished"`
	Machine   Machine            `json:"machine"`
	Target    string             `json:"target"`
	Baselines []Baseline         `json:"baselines"`
	Phases    []PhaseResult      `json:"phases"`
	Ratios    map[string]float64 `json:"ratios"`
	Targets   []Target           `json:"targets"`
	Dir       string             `json:"-"`
}

// runner holds what the phases of one run share.
type runner struct {
	opts    Options
	api     *API
	key     string
	nc      *nats.Conn
	natsURL string
	child   *Child
	prof    *profiler
	cur     atomic.Pointer[Tracker]
	runID   string
	active  int
	res     *Result
	// hook and hookID are the bench's webhook receiver and endpoint, once a phase needs
	// them.
	hook   *hookSink
	hookID string
}

// Run runs the scenario: starts or reaches the server, sets up an API key and the bench
// campaigns through the API, measures the baselines, runs every phase with per-second
// progress on opts.Stderr, and writes result.json, summary.md and chart.svg. It blocks
// until done and stops the child campaignd (SIGTERM, then wait) before returning.
func Run(ctx context.Context, opts Options) (*Result, error) {
	stderr := opts.Stderr
	if stderr == nil {
		stderr = io.Discard
		opts.Stderr = stderr
	}
	sc := opts.Scenario
	if len(sc.Phases) == 0 {
		return nil, errors.New("scenario has no phases")
	}
	r := &runner{opts: opts, runID: strconv.FormatInt(time.Now().UnixNano()%1e10, 36)}
	r.res = &Result{Scenario: sc.Name, Started: time.Now().UTC(), Machine: ReadMachine(), Ratios: map[string]float64{}}
	if opts.Server == "" {
		env := opts.ServerEnv
		if usesWebhooks(sc) { // the receiver is on 127.0.0.1
			env = append([]string{"CAMPAIGN_WEBHOOK_ALLOW_PRIVATE=true"}, env...)
		}
		c, err := StartChild(ctx, opts.Campaignd, env, stderr)
		if err != nil {
			return nil, err
		}
		defer func() {
			fmt.Fprintf(stderr, "bench: stopping campaignd (SIGTERM)\n")
			c.Stop(stderr)
		}()
		r.child = c
		r.prof = &profiler{url: c.PprofURL, client: &http.Client{Timeout: 5 * time.Minute}}
		opts.Server, opts.NATS, opts.Username, opts.Password = c.URL, c.NATSURL, c.Username, c.Password
		r.res.Target = "campaignd child (embedded NATS, private Postgres)"
	} else {
		r.res.Target = opts.Server
	}
	r.opts = opts
	r.natsURL = opts.NATS
	r.api = &API{URL: strings.TrimRight(opts.Server, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	defer r.nc.Close()
	defer r.closeWebhook(ctx)
	first := sc.Phases[0]
	if !opts.NoBaselines {
		if err := r.baselines(ctx, first); err != nil {
			return nil, err
		}
	}
	for _, ph := range sc.Phases {
		if ph.RateOf != "" {
			for _, p := range r.res.Phases {
				if p.Name == ph.RateOf {
					ph.Rate = ph.RateFraction * p.Throughput
				}
			}
			if ph.Rate <= 0 {
				return nil, fmt.Errorf("phase %s: rate_of %q has no throughput yet", ph.Name, ph.RateOf)
			}
		}
		pr, err := r.phase(ctx, ph)
		if err != nil {
			return nil, fmt.Errorf("phase %s: %w", ph.Name, err)
		}
		r.res.Phases = append(r.res.Phases, pr)
	}
	if r.child == nil {
		r.api.Pause(context.WithoutCancel(ctx), maxCampaigns(sc))
	}
	r.res.Finished = time.Now().UTC()
	r.res.computeRatios()
	if opts.OutDir != "" {
		dir, err := r.res.Write(opts.OutDir)
		if err != nil {
			return r.res, err
		}
		r.res.Dir = dir
		fmt.Fprintf(stderr, "bench: results in %s\n", dir)
	}
	return r.res, nil
}

func maxCampaigns(sc Scenario) int {
	n := 1
	for _, p := range sc.Phases {
		n = max(n, p.Campaigns)
	}
	return n
}

// setup logs in, creates an API key and the campaigns, subscribes to rewards and waits
// until the first phase's campaigns are in force.
func (r *runner) setup(ctx context.Context) error {
	if err := r.api.Login(ctx, r.opts.Username, r.opts.Password); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	key, err := r.api.CreateAPIKey(ctx, "campaignbench "+r.runID)
	if err != nil {
		return fmt.Errorf("create API key: %w", err)
	}
	r.key = key
	sc := r.opts.Scenario
	r.active = max(sc.Phases[0].Campaigns, 1)
	if err := r.api.SetCampaigns(ctx, r.active, maxCampaigns(sc)); err != nil {
		return fmt.Errorf("create campaigns: %w", err)
	}
	nc, err := nats.Connect(r.natsURL, nats.Name("campaignbench rewards"))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", r.natsURL, err)
	}
	r.nc = nc
	sub, err := nc.Subscribe("rewards.>", func(m *nats.Msg) {
		tr := r.cur.Load()
		if tr == nil {
			return
		}
		var rw struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(m.Data, &rw) != nil {
			tr.Error("bad_reward", 1)
			return
		}
		tr.Rewarded(rw.EventID, time.Now())
	})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(10_000_000, 1<<30)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if tr := r.cur.Load(); tr != nil {
			tr.Error("rewards_subscription: "+err.Error(), 1)
		}
	})
	return r.probe(ctx, r.active)
}

// probe sends purchases until one is rewarded by bench campaign n-1 (hence, as the KV
// watcher applies changes in order, the first n campaigns are in force).
func (r *runner) probe(ctx context.Context, n int) error {
	want := CampaignID(n - 1)
	got := make(chan string, 16)
	sub, err := r.nc.Subscribe("rewards."+want+".>", func(m *nats.Msg) {
		var rw struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(m.Data, &rw) == nil {
			select {
			case got <- rw.EventID:
			default:
			}
		}
	})
	if err != nil {
		return err
	}
	// Best effort: the connection outlives the probe, and a failed unsubscribe only
	// leaves a subscription whose channel sends are non-blocking.
	defer func() { _ = sub.Unsubscribe() }()
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := fmt.Sprintf("probe-%s-%d-%d", r.runID, n, i)
		body := fmt.Sprintf(`{"id":%q,"user_id":"bench-probe","type":"purchase","amount":100,"currency":"EUR","attributes":{"segment":%d}}`, id, n-1)
		req, _ := http.NewRequestWithContext(ctx, "POST", r.api.URL+"/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "ApiKey "+r.key)
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe event: %w", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("probe event: %d %s", resp.StatusCode, b)
		}
		wait := time.After(2 * time.Second)
		for waiting := true; waiting; {
			select {
			case ev := <-got:
				if ev == id {
					return nil
				}
			case <-wait:
				waiting = false
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return fmt.Errorf("no reward from campaign %s within 60s: campaigns not in force", want)
}

func generator(ph Phase) (*Generator, error) {
	users, err := NewUsers(ph.Users, ph.Skew, ph.Theta)
	if err != nil {
		return nil, err
	}
	mix, err := ParseMix(ph.Mix)
	if err != nil {
		return nil, err
	}
	return &Generator{Users: users, Mix: mix, PayloadSize: ph.PayloadSize}, nil
}

func (r *runner) baselines(ctx context.Context, ph Phase) error {
	gen, err := generator(ph)
	if err != nil {
		return err
	}
	d := r.opts.Scenario.Baseline
	fmt.Fprintf(r.opts.Stderr, "bench: baseline cel (%d campaigns, %s)\n", ph.Campaigns, d)
	b, err := CELBaseline(gen, ph.Campaigns, d)
	if err != nil {
		return fmt.Errorf("cel baseline: %w", err)
	}
	r.res.Baselines = append(r.res.Baselines, b)
	fmt.Fprintf(r.opts.Stderr, "bench: baseline fiber (batch %d, %d conns, %s)\n", ph.Batch, ph.Conns, d)
	if b, err = FiberBaseline(ctx, gen, ph.Batch, ph.Conns, d); err != nil {
		return fmt.Errorf("fiber baseline: %w", err)
	}
	r.res.Baselines = append(r.res.Baselines, b)
	fmt.Fprintf(r.opts.Stderr, "bench: baseline jetstream (%s)\n", d)
	if b, err = JetStreamBaseline(ctx, r.natsURL, gen, 2, d); err != nil {
		return fmt.Errorf("jetstream baseline: %w", err)
	}
	r.res.Baselines = append(r.res.Baselines, b)
	if r.opts.Scenario.has(PhaseHTTPSingle) {
		fmt.Fprintf(r.opts.Stderr, "bench: baseline jetstream-acked (1 event per publish, %d goroutines, %s)\n", singleConns, d)
		if b, err = JetStreamAckedBaseline(ctx, r.natsURL, gen, singleConns, d); err != nil {
			return fmt.Errorf("jetstream-acked baseline: %w", err)
		}
		r.res.Baselines = append(r.res.Baselines, b)
	}
	for _, b := range r.res.Baselines {
		fmt.Fprintf(r.opts.Stderr, "bench: baseline %-9s %10.0f/s  %s\n", b.Name, b.Rate, b.Note)
	}
	return nil
}

// serverSample is what is read from the server at a phase's start and end.
type serverSample struct {
	metrics map[string]float64
	tree    TreeUsage
	at      time.Time
}

func (r *runner) sample(ctx context.Context) serverSample {
	s := serverSample{at: time.Now()}
	s.metrics, _ = r.api.Metrics(ctx)
	pid, dir := 0, ""
	if r.child != nil {
		pid, dir = r.child.Pid(), r.child.dir
	}
	s.tree = ReadTree(pid, dir)
	return s
}

func (r *runner) rssMB(ctx context.Context) float64 {
	if r.child != nil {
		return float64(RSS(r.child.Pid())) / (1 << 20)
	}
	m, err := r.api.Metrics(ctx)
	if err != nil {
		return 0
	}
	return m["process_resident_memory_bytes"] / (1 << 20)
}

// phase runs one phase and waits for its rewards.
func (r *runner) phase(ctx context.Context, ph Phase) (PhaseResult, error) {
	stderr := r.opts.Stderr
	if err := r.api.Login(ctx, r.opts.Username, r.opts.Password); err != nil { // tokens are short-lived
		return PhaseResult{}, fmt.Errorf("log in: %w", err)
	}
	if err := r.activate(ctx, ph.Campaigns); err != nil {
		return PhaseResult{}, err
	}
	if err := r.prepareWebhook(ctx, ph); err != nil {
		return PhaseResult{}, err
	}
	gen, err := generator(ph)
	if err != nil {
		return PhaseResult{}, err
	}
	fmt.Fprintf(stderr, "bench: phase %s for %s\n", ph.label(), time.Duration(ph.Duration))
	senders, ncs, err := r.senders(ph)
	if err != nil {
		return PhaseResult{}, err
	}
	// NATS publishers stay connected until the phase returns.
	defer closeConns(ncs)
	before := r.sample(ctx)
	start := time.Now()
	end := start.Add(time.Duration(ph.Duration))
	tr := NewTracker(fmt.Sprintf("b%s-%s-", r.runID, ph.Name), start, nil)
	r.cur.Store(tr)
	if ph.Webhook == WebhookOn {
		r.hook.reset(start)
	}

	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	var rssPeak atomic.Int64
	go func() {
		defer close(progressDone)
		r.progress(ctx, ph.Name, tr, &rssPeak, stopProgress)
	}()
	cpu := r.startCPUProfile(ctx, ph)
	lag := drive(ctx, ph, gen, tr, senders, start, end)
	sendEnd := time.Now()
	r.drain(ctx, tr)
	close(stopProgress)
	<-progressDone
	after := r.sample(ctx)
	r.cur.Store(nil)
	profs := r.profiles(ctx, ph.Name, cpu)

	pr := trackerResult(ph, tr, start, sendEnd)
	pr.SchedulerLag, pr.Profiles = Dur(lag), profs
	pr.Server = serverDelta(before, after)
	pr.Server.RSSPeakMB = float64(rssPeak.Load())
	if pr.Webhook, err = r.finishWebhook(ctx, ph, tr); err != nil {
		return pr, err
	}
	fmt.Fprintf(stderr, "bench: %s: %d sent, %d rewarded, %.0f events/s end to end, p50 %.1fms p99 %.1fms p99.9 %.1fms max %.1fms, commit %.1fms x %.0f events\n",
		ph.Name, pr.Sent, pr.Completed, pr.Throughput, pr.Latency.P50, pr.Latency.P99, pr.Latency.P999, pr.Latency.Max, pr.Server.CommitMeanMS, pr.Server.CommitBatchMean)
	return pr, ctx.Err()
}

// closeWebhook deletes the bench endpoint from a server of the caller's (a child goes
// away whole) and stops the receiver.
func (r *runner) closeWebhook(ctx context.Context) {
	if r.hook == nil {
		return
	}
	if r.child == nil {
		if err := r.api.DeleteWebhook(context.WithoutCancel(ctx), r.hookID); err != nil {
			fmt.Fprintf(r.opts.Stderr, "bench: delete webhook %s: %v\n", r.hookID, err)
		}
	}
	r.hook.Close()
}

// activate activates the bench campaigns up to n and waits until they are in force.
// The number of campaigns never goes down.
func (r *runner) activate(ctx context.Context, n int) error {
	if n < r.active {
		return fmt.Errorf("phases must not lower the number of campaigns (%d after %d)", n, r.active)
	}
	if n == r.active {
		return nil
	}
	fmt.Fprintf(r.opts.Stderr, "bench: activating campaigns %d..%d\n", r.active, n-1)
	if err := r.api.Activate(ctx, r.active, n); err != nil {
		return err
	}
	r.active = n
	return r.probe(ctx, r.active)
}

// senders makes ph.Conns senders over ph's transport and returns them with the NATS
// connections they publish on, for the caller to close.
func (r *runner) senders(ph Phase) ([]sender, []*nats.Conn, error) {
	switch ph.Transport {
	case "http":
		var senders []sender
		client := httpClient(ph.Conns)
		for range ph.Conns {
			senders = append(senders, &httpSender{client: client, url: r.api.URL, key: r.key, batch: ph.Batch > 1})
		}
		return senders, nil, nil
	case "nats":
		ncs, jss, err := natsPublishers(r.natsURL, ph.Conns, &r.cur, nats.Name("campaignbench publisher"))
		if err != nil {
			return nil, nil, err
		}
		return natsSenders(jss, func(tok string) string { return "events." + tok }), ncs, nil
	default:
		return nil, nil, fmt.Errorf("unknown transport %q", ph.Transport)
	}
}

// progress prints a line on the phase every second until stop is closed, and keeps the
// highest campaignd RSS seen in rssPeak.
func (r *runner) progress(ctx context.Context, name string, tr *Tracker, rssPeak *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastDone int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		sent, done, failed := tr.Counts()
		rss := r.rssMB(ctx)
		if int64(rss) > rssPeak.Load() {
			rssPeak.Store(int64(rss))
		}
		s := tr.Tick(sent-lastSent, done-lastDone, rss)
		lastSent, lastDone = sent, done
		fmt.Fprintf(r.opts.Stderr, "bench: %-16s %3ds sent %7d/s rewarded %7d/s in flight %7d failed %d p50 %7.1fms p99 %7.1fms rss %4.0fMB\n",
			name, s.T, s.Sent, s.Completed, sent-done-failed, failed, s.P50, s.P99, rss)
	}
}

// drain waits up to the scenario's drain time for the rewards still outstanding.
func (r *runner) drain(ctx context.Context, tr *Tracker) {
	drainUntil := time.Now().Add(r.opts.Scenario.Drain)
	for tr.Outstanding() > 0 && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// startCPUProfile profiles the child's CPU over the phase's duration in the background
// and returns the channel the profile arrives on, or nil with no child to profile.
func (r *runner) startCPUProfile(ctx context.Context, ph Phase) <-chan Profile {
	if r.prof == nil {
		return nil
	}
	profiles := make(chan Profile, 1)
	go func() {
		p, err := r.prof.cpu(ctx, time.Duration(ph.Duration))
		if err != nil {
			fmt.Fprintf(r.opts.Stderr, "bench: cpu profile of %s: %v\n", ph.Name, err)
		}
		profiles <- p
	}()
	return profiles
}

// profiles waits for the CPU profile from startCPUProfile and adds the child's
// allocations; failures are reported on stderr and leave a profile out.
func (r *runner) profiles(ctx context.Context, phase string, cpu <-chan Profile) []Profile {
	if cpu == nil {
		return nil
	}
	var profs []Profile
	if p := <-cpu; len(p.data) > 0 {
		profs = append(profs, p)
	}
	if p, err := r.prof.allocs(ctx); err == nil {
		profs = append(profs, p)
	} else {
		fmt.Fprintf(r.opts.Stderr, "bench: allocs profile of %s: %v\n", phase, err)
	}
	return profs
}

// trackerResult is what tr counted in the phase that started at start and stopped
// sending at sendEnd; rewards still outstanding count as no_reward_within_drain errors.
func trackerResult(ph Phase, tr *Tracker, start, sendEnd time.Time) PhaseResult {
	lat, errs, timeline, lastDone := tr.snapshot()
	sent, done, failed := tr.Counts()
	pr := PhaseResult{
		Phase: ph, Started: start.UTC(), Sent: sent, Completed: done, Failed: failed,
		Missing: tr.Outstanding(), Rewards: tr.rewards.Load(), Latency: lat, Errors: errs,
		Timeline: timeline,
	}
	if pr.Missing > 0 {
		pr.Errors["no_reward_within_drain"] += pr.Missing
	}
	pr.SendRate = float64(sent) / sendEnd.Sub(start).Seconds()
	pr.AcceptRate = float64(sent-failed) / sendEnd.Sub(start).Seconds()
	if req := tr.Requests(); req.Count > 0 {
		pr.Requests = &req
	}
	if done > 0 {
		pr.Throughput = float64(done) / lastDone.Sub(start).Seconds()
	}
	return pr
}

func serverDelta(a, b serverSample) Server {
	d := func(k string) float64 { return b.metrics[k] - a.metrics[k] }
	var s Server
	if n := d("campaign_commit_duration_seconds_count"); n > 0 {
		s.Commits = n
		s.CommitMeanMS = d("campaign_commit_duration_seconds_sum") / n * 1000
	}
	if n := d("campaign_commit_batch_size_count"); n > 0 {
		s.CommitBatchMean = d("campaign_commit_batch_size_sum") / n
	}
	s.Processed = d("campaign_events_processed_total")
	if st := stageLatencies(a.metrics, b.metrics); len(st) > 0 {
		s.Stages = st
	}
	el := b.at.Sub(a.at).Seconds()
	if b.tree.RootCPU > 0 && el > 0 {
		s.CPU = map[string]float64{
			"campaignd": (b.tree.RootCPU - a.tree.RootCPU) / el,
			"postgres":  (b.tree.ChildrenCPU - a.tree.ChildrenCPU) / el,
			"driver":    (b.tree.SelfCPU - a.tree.SelfCPU) / el,
		}
		s.PostgresRSSMB = float64(b.tree.ChildrenRSS) / (1 << 20)
	}
	return s
}

// seedRand returns a PCG-backed source for tests and callers.
func seedRand(a, b uint64) *rand.Rand { return rand.New(rand.NewPCG(a, b)) }
