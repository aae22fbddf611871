package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// campaigndBin is the campaignd binary TestMain builds for the integration tests.
var campaigndBin string

// binDirPrefix names the directory holding campaigndBin; the owner's pid follows, so a
// later run can remove what a killed run left behind.
const binDirPrefix = "campaignctl-test-"

func TestMain(m *testing.M) {
	sweepBinDirs()
	dir, err := os.MkdirTemp("", binDirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "campaignctl test:", err)
		os.Exit(1)
	}
	campaigndBin = filepath.Join(dir, "campaignd")
	build := exec.Command(goTool(), "build", "-o", campaigndBin, "github.com/campaignmanager/campaignmanager/cmd/campaignd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "campaignctl test: build campaignd: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	// pgtest.Main exits the process; the next run's sweepBinDirs removes dir.
	pgtest.Main(m)
}

// goTool finds the go command: on PATH, else under GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		return filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// sweepBinDirs removes binary directories of test processes that are no longer running
// (the current one's is removed by the next run).
func sweepBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*-*"))
	for _, d := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

const adminPassword = "admin-password-1"

// lockedBuffer collects a child's output from its copying goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("free port: %v", err)
	}
	return addr
}

// startCampaignd runs the real campaignd binary against a throwaway database and an
// embedded NATS, waits until /readyz answers 200, and stops it with SIGTERM in
// t.Cleanup. It returns the server URL. extra are more settings, as NAME=value.
func startCampaignd(t *testing.T, extra ...string) string {
	t.Helper()
	addr := freeAddr(t)
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR":      addr,
		"CAMPAIGN_NATS_LISTEN":    "127.0.0.1:-1",
		"DATABASE_URL":            pgtest.New(t),
		"CAMPAIGN_DATA_DIR":       t.TempDir(),
		"CAMPAIGN_JWT_SECRET":     "campaignctl-test-secret-0123456789abcdef",
		"CAMPAIGN_ADMIN_PASSWORD": adminPassword,
		"CAMPAIGN_PARTITIONS":     "4",
		"CAMPAIGN_LOG_LEVEL":      "warn",
		"CAMPAIGN_LOG_FORMAT":     "text",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CAMPAIGN_") || k == "NATS_URL" || k == "DATABASE_URL" {
			continue // the parent's settings must not leak into the test server
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(campaigndBin)
	cmd.Env = env
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start campaignd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("campaignd exited with %v after SIGTERM", err)
			}
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed: the exit status is the kill's, not a finding
			t.Errorf("campaignd did not stop within 45s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("campaignd output:\n%s", out.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(90 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaignd not ready within 90s (last: %v)\n%s", err, out.String())
		}
		select {
		case err := <-exited:
			exited <- err // let the cleanup see it
			t.Fatalf("campaignd exited before it was ready: %v\n%s", err, out.String())
		case <-tick.C:
		}
	}
}

// ctl runs campaignctl in-process with a fixed environment.
type ctl struct {
	t         *testing.T
	server    string
	configDir string
}

// result is one campaignctl run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs campaignctl with args and stdin.
func (c ctl) run(stdin string, args ...string) result {
	c.t.Helper()
	env := map[string]string{"CAMPAIGN_SERVER": c.server, "CAMPAIGNCTL_CONFIG_DIR": c.configDir}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs campaignctl and requires exit code want.
func (c ctl) must(want int, args ...string) result {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != want {
		c.t.Fatalf("campaignctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}
