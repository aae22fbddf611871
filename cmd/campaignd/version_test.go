package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFlagPrintsTheBuildVersionAndExits proves --version answers without loading
// the configuration or starting anything: a getenv that fails the test would be called
// otherwise.
func TestVersionFlagPrintsTheBuildVersionAndExits(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--mode", "engine", "--version"}} {
		var stdout, stderr bytes.Buffer
		getenv := func(k string) string {
			t.Errorf("%v: read %s; --version must not load the configuration", args, k)
			return ""
		}
		code := run(t.Context(), args, getenv, &stdout, &stderr)
		out := stdout.String()
		if code != 0 || !strings.HasPrefix(out, "campaignd ") || !strings.HasSuffix(strings.TrimSpace(out), runtime.Version()) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and \"campaignd <version>, %s\"", args, code, out, stderr.String(), runtime.Version())
		}
	}
}
