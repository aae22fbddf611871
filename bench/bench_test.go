package bench

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/ingress/bus/bustest"
	"github.com/campaignmanager/campaignmanager/ingress/event"
)

func TestZipfFollowsItsDistribution(t *testing.T) {
	z, err := NewZipf(1000, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	r := seedRand(1, 2)
	const draws = 200_000
	counts := make([]int, 1000)
	for range draws {
		k := z.Next(r.Float64())
		if k >= 1000 {
			t.Fatalf("rank %d out of range", k)
		}
		counts[k]++
	}
	for _, k := range []uint64{0, 1, 9} {
		got := float64(counts[k]) / draws
		want := z.Prob(k)
		if math.Abs(got-want) > 0.15*want {
			t.Errorf("P(rank %d) = %.4f, want %.4f ±15%%", k, got, want)
		}
	}
	if counts[0] <= counts[10] || counts[10] <= counts[500] {
		t.Errorf("frequencies do not fall with rank: %d, %d, %d", counts[0], counts[10], counts[500])
	}
	for _, bad := range []float64{0, 1, 1.5} {
		if _, err := NewZipf(10, bad); err == nil {
			t.Errorf("NewZipf(theta=%g) accepted", bad)
		}
	}
}

func TestUniformUsersCoverTheRange(t *testing.T) {
	u, err := NewUsers(10, "uniform", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := seedRand(3, 4)
	seen := map[uint64]bool{}
	for range 1000 {
		seen[u.Pick(r)] = true
	}
	if len(seen) != 10 {
		t.Errorf("saw %d of 10 users", len(seen))
	}
	if _, err := NewUsers(10, "pareto", 0); err == nil {
		t.Error("unknown skew accepted")
	}
}

func TestSequentialUsersSendInTurn(t *testing.T) {
	u, err := NewUsers(4, "sequential", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := seedRand(1, 2)
	var got []uint64
	for range 6 {
		got = append(got, u.Pick(r))
	}
	if fmt.Sprint(got) != "[0 1 2 3 0 1]" {
		t.Errorf("picks %v, want every user in turn", got)
	}
}

func TestGeneratedEventsAreValidAndMatchABenchCampaign(t *testing.T) {
	users, _ := NewUsers(100, "zipf", 0.9)
	mix, err := ParseMix("purchase:80,view:15,signup:5")
	if err != nil {
		t.Fatal(err)
	}
	gen := &Generator{Users: users, Mix: mix, PayloadSize: 512}
	r := seedRand(5, 6)
	now := time.Now()
	for i := range 200 {
		_, ev := gen.Append(nil, r, "t-", uint64(i), now)
		e, err := event.Decode(ev.JSON, now)
		if err != nil {
			t.Fatalf("event %s: %v", ev.JSON, err)
		}
		if e.ID != "t-"+itoa(i) || e.UserID != ev.UserID {
			t.Fatalf("decoded %+v from %s", e, ev.JSON)
		}
		if len(ev.JSON) < 500 || len(ev.JSON) > 530 {
			t.Fatalf("payload %d bytes, want about 512", len(ev.JSON))
		}
	}
	// CELBaseline fails unless every generated event matches a campaign.
	b, err := CELBaseline(gen, 10, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rate <= 0 || b.Parallel <= 0 {
		t.Errorf("CEL baseline measured nothing: %+v", b)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestScheduleIsOpenLoop(t *testing.T) {
	start := time.Now()
	s := Schedule{Start: start, Rate: 1000}
	if got := s.At(500).Sub(start); got != 500*time.Millisecond {
		t.Errorf("At(500) = %v after start, want 500ms", got)
	}
	if got := s.Due(start.Add(10*time.Millisecond), 1<<60); got != 11 {
		t.Errorf("Due at 10ms = %d, want 11", got)
	}
	if got := s.Due(start.Add(-time.Second), 1<<60); got != 0 {
		t.Errorf("Due before start = %d", got)
	}
	// A slow receiver does not delay the due times: ticks keep their scheduled time.
	out := make(chan Tick)
	go s.Run(context.Background(), start.Add(50*time.Millisecond), out)
	var ticks []Tick
	for tk := range out {
		if len(ticks) == 0 {
			time.Sleep(30 * time.Millisecond)
		}
		ticks = append(ticks, tk)
	}
	if len(ticks) != 50 {
		t.Fatalf("%d ticks, want 50", len(ticks))
	}
	for i, tk := range ticks {
		if tk.I != uint64(i) || !tk.At.Equal(s.At(uint64(i))) {
			t.Fatalf("tick %d = %+v, want due %v", i, tk, s.At(uint64(i)))
		}
	}
}

func TestTrackerMeasuresFromScheduledTime(t *testing.T) {
	start := time.Now()
	tr := NewTracker("p-", start, nil)
	for i := range 100 {
		tr.Scheduled(uint64(i), start)
	}
	tr.Scheduled(chunkSize+5, start) // a second chunk
	for i := range 100 {
		tr.Rewarded("p-"+itoa(i), start.Add(time.Duration(i+1)*time.Millisecond))
	}
	tr.Rewarded("p-3", start.Add(time.Second)) // a second reward of the same event
	tr.Rewarded("other-1", start)              // not ours
	tr.Failed(chunkSize+5, "http_503")
	sent, done, failed := tr.Counts()
	if sent != 101 || done != 100 || failed != 1 || tr.Outstanding() != 0 {
		t.Fatalf("counts %d/%d/%d outstanding %d", sent, done, failed, tr.Outstanding())
	}
	lat, errs, _, _ := tr.snapshot()
	if math.Abs(lat.P50-50) > 0.5 || math.Abs(lat.P99-99) > 0.5 || math.Abs(lat.Max-100) > 0.5 {
		t.Errorf("latency %+v, want p50 50ms, p99 99ms, max 100ms", lat)
	}
	if errs["http_503"] != 1 || tr.extra.Load() != 1 {
		t.Errorf("errors %v, extra %d", errs, tr.extra.Load())
	}
	s := tr.Tick(101, 100, 0)
	if s.T != 1 || s.Completed != 100 || math.Abs(s.P90-90) > 0.5 {
		t.Errorf("second %+v", s)
	}
}

func TestParseMetricsSumsLabels(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP x
campaign_commit_duration_seconds_bucket{le="0.1"} 3
campaign_commit_duration_seconds_sum 1.5
campaign_commit_duration_seconds_count 3
campaign_events_processed_total{outcome="ok"} 10
campaign_events_processed_total{outcome="dup"} 2
process_resident_memory_bytes 1.048576e+08
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["campaign_events_processed_total"] != 12 || m["campaign_commit_duration_seconds_sum"] != 1.5 || m["process_resident_memory_bytes"] != 104857600 {
		t.Errorf("parsed %v", m)
	}
	if _, ok := m["campaign_commit_duration_seconds_bucket"]; ok {
		t.Error("buckets kept")
	}
}

func TestReportWritesJSONMarkdownAndSVG(t *testing.T) {
	res := &Result{Scenario: "unit", Started: time.Now().UTC(), Machine: ReadMachine(), Ratios: map[string]float64{}}
	res.Baselines = []Baseline{{Name: "jetstream", Rate: 40000}, {Name: "cel", Rate: 1e5, Parallel: 2e5}, {Name: "jetstream-acked", Rate: 18000}}
	for _, name := range []string{PhaseHTTPMax, PhaseHTTPHalf, PhaseHTTPMax100, PhaseHTTPSingle} {
		p := PhaseResult{Phase: Phase{Name: name, Transport: "http", Batch: 100, Conns: 8}, Throughput: 8000,
			Latency: Latency{P99: 20}, Errors: map[string]int64{"http_503": 1}}
		for i := range 5 {
			p.Timeline = append(p.Timeline, Second{T: i + 1, Sent: 8000, Completed: int64(7000 + i), P50: 5, P90: 9, P99: 20, RSSMB: 100})
		}
		if name == PhaseHTTPSingle {
			p.Batch, p.Conns, p.AcceptRate = 1, 64, 9000
			p.Requests = &Latency{Count: 36000, P50: 4.5, P99: 21}
		}
		res.Phases = append(res.Phases, p)
	}
	res.computeRatios()
	if got := res.Ratios[PhaseHTTPMax+"/jetstream"]; got != 0.2 {
		t.Errorf("ratio %v, want 0.2", got)
	}
	if got := res.Ratios[PhaseHTTPSingle+"/accepted/jetstream-acked"]; got != 0.5 {
		t.Errorf("single-event ratio %v, want 0.5", got)
	}
	met := 0
	for _, tg := range res.Targets {
		if tg.Met {
			met++
		}
	}
	if len(res.Targets) != 5 || met != 5 {
		t.Errorf("targets %+v", res.Targets)
	}
	dir, err := res.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	b, _ := os.ReadFile(filepath.Join(dir, "result.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Phases) != 4 || back.Phases[0].Timeline[4].Completed != 7004 {
		t.Fatalf("result.json: %v %+v", err, back.Phases)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "| http-max | http | max | 100×8 |") || !strings.Contains(string(md), "| http-single-max | 1×64 | 9000 | 36000 | 4.50 |") {
		t.Errorf("summary.md:\n%s", md)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "chart.svg"))
	var doc struct{}
	if err := xmlUnmarshal(svg, &doc); err != nil || !strings.Contains(string(svg), "<path d=\"M") {
		t.Errorf("chart.svg is not a drawing: %v", err)
	}
}

// TestBaselinesAgainstEmbeddedJetStream runs the Fiber and JetStream baselines for a
// moment against an embedded server: BENCH_BASELINE copies EVENTS' configuration and is
// deleted afterwards.
func TestBaselinesAgainstEmbeddedJetStream(t *testing.T) {
	ns := bustest.Start(t)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := bus.EnsureStreams(ctx, js, bus.StreamsConfig{Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	users, _ := NewUsers(100, "uniform", 0)
	mix, _ := ParseMix("purchase")
	gen := &Generator{Users: users, Mix: mix}
	b, err := JetStreamBaseline(ctx, ns.ClientURL(), gen, 1, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rate <= 0 || b.Count == 0 || !strings.Contains(b.Note, "{{partition(8,1)}}.benchbase.{{wildcard(1)}}") {
		t.Errorf("jetstream baseline %+v", b)
	}
	if _, err := js.Stream(ctx, BaselineStream); err == nil {
		t.Error("BENCH_BASELINE not deleted")
	}
	a, err := JetStreamAckedBaseline(ctx, ns.ClientURL(), gen, 4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rate <= 0 || a.Errors != 0 || a.Latency == nil || a.Latency.Count == 0 {
		t.Errorf("jetstream-acked baseline %+v", a)
	}
	if _, err := js.Stream(ctx, BaselineStream); err == nil {
		t.Error("BENCH_BASELINE not deleted after the acked baseline")
	}
	f, err := FiberBaseline(ctx, gen, 10, 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Rate <= 0 || f.Errors != 0 || f.Latency == nil || f.Latency.Count == 0 {
		t.Errorf("fiber baseline %+v", f)
	}
}

func xmlUnmarshal(b []byte, v any) error { return xml.Unmarshal(b, v) }
