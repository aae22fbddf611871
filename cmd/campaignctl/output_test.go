package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestYAMLOutputKeepsTheServersFieldOrderAndTypes(t *testing.T) {
	raw := json.RawMessage(`{"id":"ten","version":3,"rule":"event.amount > 1 &&\nuser.tier == \"gold\"",` +
		`"name":"123","active":true,"none":null,"reward":{"type":"points","points":"10"},"tags":["a","b"],"empty":{}}`)
	var b bytes.Buffer
	if err := writeYAML(&b, raw); err != nil {
		t.Fatal(err)
	}
	want := `id: ten
version: 3
rule: |-
  event.amount > 1 &&
  user.tier == "gold"
name: "123"
active: true
none: null
reward:
  type: points
  points: "10"
tags:
  - a
  - b
empty: {}
`
	if b.String() != want {
		t.Errorf("YAML:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWideTablesShowMoreColumnsAndWholeCells(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct {
		output string
		want   string
	}{
		{outputTable, "ID  RULE\na   " + shorten(long, 10) + "\n"},
		{outputWide, "ID  RULE" + strings.Repeat(" ", len(long)-len("RULE")) + "  LIMITS\na   " + long + "  per_user=1\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		c := &cli{stdout: &b, output: tt.output}
		if err := c.table(cols("ID", "RULE", "+LIMITS"), [][]string{{"a", c.cut(long, 10), "per_user=1"}}); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("-o %s:\n%q\nwant\n%q", tt.output, b.String(), tt.want)
		}
	}
}

func TestVersionAndCompletionNeedNoServer(t *testing.T) {
	env := map[string]string{"CAMPAIGN_SERVER": "not a url", "CAMPAIGNCTL_CONFIG_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	runCtl := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(t.Context(), args, strings.NewReader(""), &out, &errb, getenv)
		return code, out.String(), errb.String()
	}
	if code, out, errs := runCtl("version"); code != exitOK || !strings.HasPrefix(out, "campaignctl ") || !strings.Contains(out, "go1.") {
		t.Errorf("version: exit %d %q %q", code, out, errs)
	}
	code, out, _ := runCtl("version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || v.Version == "" || v.Go == "" {
		t.Errorf("version -o json: exit %d %q %v", code, out, err)
	}
	for shell, want := range map[string]string{
		"bash": "__start_campaignctl", "zsh": "#compdef campaignctl", "fish": "complete -c campaignctl",
	} {
		if code, out, errs := runCtl("completion", shell); code != exitOK || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %d bytes without %q; stderr %q", shell, code, len(out), want, errs)
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		if code, _, _ := runCtl(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	// What the scripts call: cobra's __complete lists subcommands and --output's values.
	if _, out, _ := runCtl("__complete", "campaigns", ""); !strings.Contains(out, "diff") || !strings.Contains(out, "apply") {
		t.Errorf("__complete campaigns: %q", out)
	}
	if _, out, _ := runCtl("__complete", "campaigns", "list", "-o", ""); !strings.Contains(out, "yaml") || !strings.Contains(out, "wide") {
		t.Errorf("__complete -o: %q", out)
	}
}
