package main

import (
	"reflect"
	"strings"
	"testing"
)

func mustDoc(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := decodeDocument([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v.(map[string]any)
}

func TestChangedFieldsComparesWhatTheServerStores(t *testing.T) {
	stored := `{"id":"c","name":"N","rule":"event.amount > 1","status":"active","priority":0,"exclusive":false,
		"reward":{"type":"points","points":"100"},"limits":{"per_user":2},
		"starts_at":"2025-01-01T00:00:00Z","version":7,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-02T00:00:00Z"}`
	cases := []struct {
		name    string
		desired string
		want    []string
	}{
		{"same fields", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: \"100\"}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\n", nil},
		{"integer points equal their string", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2, total_points: 0}\nstarts_at: 2025-01-01T00:00:00Z\n", nil},
		{"time in another zone is the same instant", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\nstarts_at: \"2025-01-01T01:00:00+01:00\"\n", nil},
		{"zero values equal omitted ones", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100, data: {}}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\npriority: 0\nexclusive: false\ndescription: \"\"\n", nil},
		{"status given and equal", "id: c\nname: N\nstatus: active\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\n", nil},
		{"server-managed fields are ignored", "id: c\nversion: 1\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\n", nil},
		{"rule and status differ", "id: c\nname: N\nstatus: paused\nrule: event.amount > 2\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\n", []string{"rule", "status"}},
		{"nested limit differs", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 3}\nstarts_at: 2025-01-01T00:00:00Z\n", []string{"limits"}},
		{"omitted stored fields would be cleared", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\n", []string{"limits", "starts_at"}},
		{"unknown field counts as a change", "id: c\nname: N\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\nstarts_at: 2025-01-01T00:00:00Z\nrul: x\n", []string{"rul"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := changedFields(mustDoc(t, tc.desired), mustDoc(t, stored))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changedFields = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeDocumentReadsYAMLAndJSON(t *testing.T) {
	y := mustDoc(t, "id: a\npoints: 100\nrule: |\n  a &&\n  b\n")
	j := mustDoc(t, `{"id":"a","points":100,"rule":"a \u0026\u0026\nb\n"}`)
	if !reflect.DeepEqual(y, j) {
		t.Errorf("YAML %v != JSON %v", y, j)
	}
	if _, err := decodeDocument([]byte("  \n")); err == nil {
		t.Error("empty document accepted")
	}
	if _, err := decodeDocument([]byte("a: [")); err == nil {
		t.Error("broken YAML accepted")
	}
}

func TestUnifiedDiffShowsChangesWithContext(t *testing.T) {
	a := strings.Split("a\nb\nc\nd\ne\nf\ng\nh\ni\nj", "\n")
	b := strings.Split("a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk", "\n")
	want := `--- old
+++ new
@@ -1,5 +1,5 @@
 a
-b
+B
 c
 d
 e
@@ -8,3 +8,4 @@
 h
 i
 j
+k
`
	if got := unifiedDiff("old", "new", a, b); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if got := unifiedDiff("old", "new", a, a); got != "" {
		t.Errorf("equal lines diff to %q", got)
	}
	if got := unifiedDiff("old", "new", nil, []string{"x"}); got != "--- old\n+++ new\n@@ -0,0 +1,1 @@\n+x\n" {
		t.Errorf("diff from nothing: %q", got)
	}
}

func TestCampaignDiffShowsOnlyWhatApplyWouldChange(t *testing.T) {
	stored := mustDoc(t, `{"id":"c","name":"Ten","rule":"event.amount > 1","status":"active","priority":0,"exclusive":false,
		"reward":{"type":"points","points":"100"},"limits":{"per_user":2},"version":7,"created_at":"2025-01-01T00:00:00Z"}`)
	same := mustDoc(t, "id: c\nname: Ten\nrule: event.amount > 1\nreward: {type: points, points: 100}\nlimits: {per_user: 2}\n")
	if out, err := campaignDiff("c", "c.yaml", applyBody(same), stored); err != nil || out != "" {
		t.Errorf("an equal campaign diffs to %q, %v", out, err)
	}
	changed := mustDoc(t, "id: c\nname: Ten\nrule: event.amount > 2\nreward: {type: points, points: 100}\nversion: 1\n")
	out, err := campaignDiff("c", "c.yaml", applyBody(changed), stored)
	if err != nil {
		t.Fatal(err)
	}
	want := `--- campaign/c (on the server, version 7)
+++ campaign/c (c.yaml)
@@ -1,11 +1,9 @@
 exclusive: false
 id: c
-limits:
-  per_user: 2
 name: Ten
 priority: 0
 reward:
   points: "100"
   type: points
-rule: event.amount > 1
+rule: event.amount > 2
 status: active
`
	if out != want {
		t.Errorf("diff:\n%s\nwant:\n%s", out, want)
	}
	out, err = campaignDiff("new", "c.yaml", applyBody(changed), nil)
	if err != nil || !strings.HasPrefix(out, "--- campaign/new (not on the server)\n+++ campaign/new (c.yaml)\n@@ -0,0 +1,") ||
		!strings.Contains(out, "+rule: event.amount > 2\n") || strings.Contains(out, "version") {
		t.Errorf("diff of a new campaign:\n%s", out)
	}
}
