package bench

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// stageHistogram is the engine's histogram of the time an event spends in each stage
// from its storage in EVENTS to its notices' publication (actors/stages.go).
const stageHistogram = "campaign_event_stage_seconds"

// stageOrder is the engine's stages in an event's order, total last.
var stageOrder = []string{"stream", "actor", "batch", "commit", "publish", "total"}

// StageLatency is one engine stage over a phase: events timed, mean and quantiles
// (estimated from the histogram's buckets, linearly within a bucket).
type StageLatency struct {
	Count  float64 `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
}

// bucket is one cumulative histogram bucket.
type bucket struct{ le, n float64 }

// stageLatencies is each stage's latency between two /metrics samples (ParseMetrics
// keeps the stage histogram's samples by name and labels).
func stageLatencies(a, b map[string]float64) map[string]StageLatency {
	out := map[string]StageLatency{}
	for _, st := range stageOrder {
		sel := `stage="` + st + `"`
		n := b[stageHistogram+"_count{"+sel+"}"] - a[stageHistogram+"_count{"+sel+"}"]
		if n <= 0 {
			continue
		}
		sum := b[stageHistogram+"_sum{"+sel+"}"] - a[stageHistogram+"_sum{"+sel+"}"]
		var bs []bucket
		prefix := stageHistogram + "_bucket{" + sel + `,le="`
		for k, v := range b {
			le, ok := strings.CutPrefix(k, prefix)
			if !ok {
				continue
			}
			bound, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
			if err != nil {
				continue
			}
			bs = append(bs, bucket{bound, v - a[k]})
		}
		sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
		out[st] = StageLatency{Count: n, MeanMS: sum / n * 1000, P50MS: quantile(bs, 0.5) * 1000, P99MS: quantile(bs, 0.99) * 1000}
	}
	return out
}

// quantile estimates the q-quantile from cumulative buckets sorted by bound, the way
// Prometheus' histogram_quantile does: linearly within the bucket it falls in; in the
// +Inf bucket, the highest finite bound.
func quantile(bs []bucket, q float64) float64 {
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].n
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return lo
			}
			if b.n == below {
				return b.le
			}
			return lo + (b.le-lo)*(rank-below)/(b.n-below)
		}
		lo, below = b.le, b.n
	}
	return lo
}

// stagesMarkdown writes the engine's stage table: p50 / p99 ms of each stage by phase.
func (res *Result) stagesMarkdown(b *strings.Builder) {
	var staged bool
	for _, p := range res.Phases {
		staged = staged || len(p.Server.Stages) > 0
	}
	if !staged {
		return
	}
	b.WriteString("\n## Engine stages (p50 / p99 ms)\n\nFrom the event's storage in EVENTS to its notices' acknowledgement, by the engine's `campaign_event_stage_seconds`: " +
		"stream = JetStream to the engine's lane, actor = inbox, state load and rules, batch = waiting for its Postgres batch (group commit), " +
		"commit = the transaction, publish = REWARDS/LOYALTY publish and its ack; total = the whole way (ingest and the driver's side are not in it).\n\n| phase |")
	for _, st := range stageOrder {
		b.WriteString(" " + st + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(stageOrder)) + "\n")
	for _, p := range res.Phases {
		b.WriteString("| " + p.Name + " |")
		for _, st := range stageOrder {
			if l, ok := p.Server.Stages[st]; ok {
				b.WriteString(" " + strconv.FormatFloat(l.P50MS, 'f', 1, 64) + " / " + strconv.FormatFloat(l.P99MS, 'f', 1, 64) + " |")
			} else {
				b.WriteString(" n/a |")
			}
		}
		b.WriteString("\n")
	}
}
