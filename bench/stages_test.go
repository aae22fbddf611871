package bench

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestStageLatenciesAreTheDeltaBetweenTwoSamples(t *testing.T) {
	sample := func(n [4]int, sum float64) map[string]float64 {
		// Buckets 1 ms, 10 ms, 100 ms, +Inf of the commit stage; another stage's samples
		// and another histogram's buckets must not mix in.
		text := `# TYPE campaign_event_stage_seconds histogram
campaign_event_stage_seconds_bucket{stage="commit",le="0.001"} ` + itoa(n[0]) + `
campaign_event_stage_seconds_bucket{stage="commit",le="0.01"} ` + itoa(n[1]) + `
campaign_event_stage_seconds_bucket{stage="commit",le="0.1"} ` + itoa(n[2]) + `
campaign_event_stage_seconds_bucket{stage="commit",le="+Inf"} ` + itoa(n[3]) + `
campaign_event_stage_seconds_sum{stage="commit"} ` + ftoa(sum) + `
campaign_event_stage_seconds_count{stage="commit"} ` + itoa(n[3]) + `
campaign_event_stage_seconds_bucket{stage="actor",le="0.001"} 7
campaign_event_stage_seconds_bucket{stage="actor",le="+Inf"} 7
campaign_event_stage_seconds_sum{stage="actor"} 0.001
campaign_event_stage_seconds_count{stage="actor"} 7
campaign_commit_duration_seconds_bucket{le="0.001"} 99
`
		m, err := ParseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Before: 10 events, all under 1 ms. During the phase: 100 more, 50 under 1 ms, 40 in
	// (1, 10] ms, 9 in (10, 100] ms, 1 over 100 ms; 0.5 s between them.
	a := sample([4]int{10, 10, 10, 10}, 0.005)
	b := sample([4]int{60, 100, 109, 110}, 0.505)
	st := stageLatencies(a, b)
	c, ok := st["commit"]
	if !ok || c.Count != 100 {
		t.Fatalf("commit stage = %+v, %v; want 100 events", c, ok)
	}
	if math.Abs(c.MeanMS-5) > 1e-9 {
		t.Errorf("mean = %v ms, want 5", c.MeanMS)
	}
	if math.Abs(c.P50MS-1) > 1e-9 { // rank 50 is the last of the first bucket
		t.Errorf("p50 = %v ms, want 1", c.P50MS)
	}
	if want := 10 + 90*(99.0-90)/9; math.Abs(c.P99MS-want) > 1e-9 { // rank 99: the top of (10, 100]
		t.Errorf("p99 = %v ms, want %v", c.P99MS, want)
	}
	if _, ok := st["actor"]; ok {
		t.Errorf("actor stage had no events during the phase, got %+v", st["actor"])
	}
	if got := quantile([]bucket{{0.01, 0}, {math.Inf(1), 3}}, 0.99); got != 0.01 {
		t.Errorf("a quantile in +Inf = %v, want the highest finite bound", got)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
