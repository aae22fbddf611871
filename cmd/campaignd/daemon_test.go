package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
)

// Helpers for tests that run campaignd as a child process (crash tests) or against
// servers they stop and start (outage tests).

// buildCampaignd compiles this package into a temporary directory and returns the binary.
func buildCampaignd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "campaignd")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build campaignd: %s", out)
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon is a campaignd child process that a test kills and restarts with the same
// environment (data dir, database, ports).
type daemon struct {
	t       *testing.T
	bin     string
	vars    map[string]string
	logPath string
	base    string

	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

func newDaemon(t *testing.T, bin string, vars map[string]string) *daemon {
	t.Helper()
	d := &daemon{t: t, bin: bin, vars: vars, logPath: filepath.Join(t.TempDir(), "campaignd.log"),
		base: "http://" + vars["CAMPAIGN_HTTP_ADDR"]}
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			t.Logf("campaignd log (tail):\n%s", tailString(string(b), 8000))
		}
	})
	return d
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// start runs the process and waits until /readyz answers 200.
func (d *daemon) start() {
	d.t.Helper()
	require.Nil(d.t, d.cmd, "campaignd already running")
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(d.t, err)
	defer logf.Close()
	d.starts++
	fmt.Fprintf(logf, "==== start %d\n", d.starts)
	cmd := exec.Command(d.bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range d.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(d.t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(d.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			d.cmd = nil
			d.t.Fatalf("campaignd exited during start %d (see its log)", d.starts)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("campaignd start %d: not ready within 30s", d.starts)
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone. Killing a stopped daemon
// does nothing.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.t.Errorf("campaignd did not exit within 10s of SIGKILL")
	}
	d.cmd = nil
}

// ingestStats counts what a loadClient saw.
type ingestStats struct {
	accepted, duplicate, retries, transportErrors, unauthorized atomic.Int64
}

func (s *ingestStats) String() string {
	return fmt.Sprintf("202 accepted=%d, 200 duplicate=%d, retries=%d (transport errors=%d, 401 while keys load=%d)",
		s.accepted.Load(), s.duplicate.Load(), s.retries.Load(), s.transportErrors.Load(), s.unauthorized.Load())
}

// postUntilStored posts ev to /v1/events until ingress answers 2xx: 202 (stored now) or
// 200 (stored by an earlier attempt whose answer was lost). Transport errors, 401 (keys
// not loaded yet after a restart), 429 and 5xx are retried; any other status is an error.
func postUntilStored(ctx context.Context, client *http.Client, base, apiKey string, ev map[string]any, st *ingestStats) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			st.retries.Add(1)
			select {
			case <-ctx.Done():
				return fmt.Errorf("event %v not stored: %w", ev["id"], ctx.Err())
			case <-time.After(time.Duration(min(attempt, 10)) * 20 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "ApiKey "+apiKey)
		resp, err := client.Do(req)
		if err != nil {
			st.transportErrors.Add(1)
			continue
		}
		var out struct {
			Duplicate bool `json:"duplicate"`
		}
		derr := json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusAccepted && derr == nil && !out.Duplicate:
			st.accepted.Add(1)
			return nil
		case resp.StatusCode == http.StatusOK && derr == nil && out.Duplicate:
			st.duplicate.Add(1)
			return nil
		case resp.StatusCode == http.StatusUnauthorized:
			st.unauthorized.Add(1)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		default:
			return fmt.Errorf("event %v: unexpected status %d (duplicate=%v, decode err %v)", ev["id"], resp.StatusCode, out.Duplicate, derr)
		}
	}
}

// api is a small admin client over HTTP for a campaignd that is not in this process.
type api struct {
	t      *testing.T
	base   string
	token  string
	client *http.Client
}

func (a *api) call(method, path string, body any, want int, out any) {
	a.t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(a.t, err)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	require.Equalf(a.t, want, resp.StatusCode, "%s %s: %s", method, path, buf.String())
	if out != nil {
		require.NoError(a.t, json.Unmarshal(buf.Bytes(), out), buf.String())
	}
}

func (a *api) login(user, pw string) {
	a.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	a.call("POST", "/v1/auth/token", map[string]any{"username": user, "password": pw}, http.StatusOK, &tok)
	a.token = tok.AccessToken
}

// userState returns the user's loyalty state; ok is false for a 404.
func (a *api) userState(id string) (userView, bool) {
	a.t.Helper()
	req, err := http.NewRequest("GET", a.base+"/v1/users/"+url.PathEscape(id), nil)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return userView{}, false
	}
	require.Equal(a.t, http.StatusOK, resp.StatusCode)
	var u userView
	require.NoError(a.t, json.NewDecoder(resp.Body).Decode(&u))
	return u, true
}

func (a *api) userRewards(id string) []rewardView {
	a.t.Helper()
	var out struct{ Rewards []rewardView }
	a.call("GET", "/v1/users/"+url.PathEscape(id)+"/rewards?limit=1000", nil, http.StatusOK, &out)
	return out.Rewards
}

// pollUntil calls cond until it is true or d passes; it fails the test with what.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// engineIdle reports whether every partition consumer of EVENTS has nothing pending and
// nothing unacknowledged: all stored events are processed.
func engineIdle(ctx context.Context, js jetstream.JetStream) (bool, error) {
	s, err := js.Stream(ctx, bus.EventsStream)
	if err != nil {
		return false, err
	}
	lister := s.ListConsumers(ctx)
	n := 0
	for info := range lister.Info() {
		n++
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false, nil
		}
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return false, err
	}
	return n > 0, nil
}

// streamMsgs is the message count of a stream.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// connectJS connects to a NATS URL for the rest of the test.
func connectJS(t *testing.T, natsURL string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}
