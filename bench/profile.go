package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Profile is a Go profile of the server taken during a phase.
type Profile struct {
	// Kind is "cpu" (sampled over the phase's send time) or "allocs" (taken at its end).
	Kind string `json:"kind"`
	// File is the profile's file name in the results folder.
	File string `json:"file"`
	// Top is `go tool pprof -top` of the profile (empty when the tool is unavailable).
	Top  string `json:"-"`
	data []byte
}

// profiler fetches profiles from a campaignd's pprof endpoint (CAMPAIGN_PPROF_ADDR).
type profiler struct {
	url    string
	client *http.Client
}

// cpu samples the CPU for d (rounded to whole seconds, at least 1).
func (p *profiler) cpu(ctx context.Context, d time.Duration) (Profile, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	b, err := p.get(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
	return Profile{Kind: "cpu", data: b}, err
}

// allocs returns the allocation profile since the process started.
func (p *profiler) allocs(ctx context.Context) (Profile, error) {
	b, err := p.get(ctx, "/debug/pprof/allocs")
	return Profile{Kind: "allocs", data: b}, err
}

func (p *profiler) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.url+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// writeProfiles saves the phases' profiles into dir and fills in their file names and
// top lists. The top list needs `go tool pprof`; without it only the files are written.
func writeProfiles(dir string, phases []PhaseResult) error {
	for i := range phases {
		for k := range phases[i].Profiles {
			pr := &phases[i].Profiles[k]
			pr.File = phases[i].Name + "." + pr.Kind + ".pprof"
			path := filepath.Join(dir, pr.File)
			if err := os.WriteFile(path, pr.data, 0o644); err != nil {
				return err
			}
			pr.Top = pprofTop(path, pr.Kind)
		}
	}
	return nil
}

// pprofTop returns the 15 heaviest functions of a profile by flat cost (allocated bytes
// for allocs), or "" when `go tool pprof` cannot run.
func pprofTop(path, kind string) string {
	args := []string{"tool", "pprof", "-top", "-nodecount=15"}
	if kind == "allocs" {
		args = append(args, "-sample_index=alloc_space")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, path)...).Output()
	if err != nil {
		return ""
	}
	// Keep the summary lines and the table; drop the binary's path and build lines.
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}
