package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// promtool finds the promtool binary. CI installs it (.ci/run); a missing promtool fails
// the test rather than skipping it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool not found: apt-get install prometheus, or go install github.com/prometheus/prometheus/cmd/promtool@latest")
	return p
}

// TestMetricsPassPromtoolLint scrapes /metrics of a campaignd that has processed an event
// and parked one, and runs promtool's linter over it: names, units, help and types follow
// Prometheus conventions.
func TestMetricsPassPromtoolLint(t *testing.T) {
	bin := promtool(t)
	e := newEnv(t)
	e.createCampaign(tenPercent)
	e.postEvent(map[string]any{"id": "m-1", "user_id": "metrics-user", "type": "purchase", "amount": 100}, http.StatusAccepted)
	e.waitUser("metrics-user", 1)
	status, body := e.raw("GET", "/metrics", "", nil)
	require.Equal(t, http.StatusOK, status)
	for _, name := range []string{"campaign_events_accepted_total", "campaign_events_processed_total", "campaign_rewards_total",
		"campaign_commit_duration_seconds", "campaign_dlq_messages", "campaign_http_request_duration_seconds"} {
		require.True(t, strings.Contains(string(body), "\n# TYPE "+name+" "), "metric %s is not exported", name)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

// TestDeployAlertRulesAndDashboardUseExportedMetrics checks deploy/: promtool accepts the
// alert rules and passes their unit tests (alerts_test.yml), the dashboard is valid JSON with Prometheus targets, and every campaign_*
// metric they query is one campaignd defines.
func TestDeployAlertRulesAndDashboardUseExportedMetrics(t *testing.T) {
	bin := promtool(t)
	root := filepath.Join("..", "..")
	rules := filepath.Join(root, "deploy", "prometheus", "alerts.yml")
	out, err := exec.Command(bin, "check", "rules", rules).CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s", out)
	// The rules' unit tests: each alert fires when it should, with its text.
	out, err = exec.Command(bin, "test", "rules", filepath.Join(root, "deploy", "prometheus", "alerts_test.yml")).CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", out)

	// Metric families campaignd defines, from the sources that register them.
	defined := map[string]bool{}
	nameRE := regexp.MustCompile(`Name:\s*"(campaign_[a-z0-9_]+)"`)
	for _, glob := range []string{"actors/*.go", "actors/*/*.go", "ingress/*.go", "ingress/*/*.go"} {
		files, err := filepath.Glob(filepath.Join(root, glob))
		require.NoError(t, err)
		for _, f := range files {
			src, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, m := range nameRE.FindAllStringSubmatch(string(src), -1) {
				defined[m[1]] = true
			}
		}
	}
	require.NotEmpty(t, defined)

	dash, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "campaign-manager.json"))
	require.NoError(t, err)
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(dash, &d))
	require.NotEmpty(t, d.Panels)
	ruleSrc, err := os.ReadFile(rules)
	require.NoError(t, err)
	exprs := []string{string(ruleSrc)}
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q", p.Title)
			exprs = append(exprs, tg.Expr)
		}
	}
	used := map[string]bool{}
	useRE := regexp.MustCompile(`\bcampaign_[a-z0-9_]+`)
	for _, x := range exprs {
		for _, name := range useRE.FindAllString(x, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && defined[base] {
					name = base
				}
			}
			used[name] = true
		}
	}
	var unknown []string
	for name := range used {
		if !defined[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	require.Empty(t, unknown, "deploy/ queries metrics campaignd does not define")
}
