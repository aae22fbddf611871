package actors

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/campaignmanager/campaignmanager/cel"
)

func TestRuleErrorsAreCountedAndLoggedOncePerCampaignPerInterval(t *testing.T) {
	var buf bytes.Buffer
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	l := newRuleErrorLog(slog.New(slog.NewTextHandler(&buf, nil)), m, time.Hour)
	fail := func(ids ...string) []cel.EvalError {
		var out []cel.EvalError
		for _, id := range ids {
			out = append(out, cel.EvalError{CampaignID: id, Err: errors.New("evaluate points: result -5 is negative")})
		}
		return out
	}
	l.record("e1", fail("a", "b"))
	l.record("e2", fail("a"))
	l.record("e3", fail("a"))
	if got := testutil.ToFloat64(m.ruleErrors.WithLabelValues("a")); got != 3 {
		t.Fatalf("campaign_rule_errors_total{campaign=a} = %v, want 3", got)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "campaign=a") || !strings.Contains(lines[0], "result -5 is negative") ||
		!strings.Contains(lines[1], "campaign=b") {
		t.Fatalf("log =\n%s\nwant one line for a and one for b", buf.String())
	}
	if n, ok := l.due("a", time.Now().Add(2*time.Hour)); !ok || n != 2 {
		t.Fatalf("due after the interval = %d, %v; want 2 left out, true", n, ok)
	}
}
