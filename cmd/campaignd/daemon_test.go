package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/campaignmanager/campaignmanager/ingress/bus"
	"github.com/campaignmanager/campaignmanager/persistence/pgtest"
)

// Helpers for tests that run campaignd as a child process (crash tests).

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
	defer func() { _ = ln.Close() }() // only its port is wanted
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
	// frozen: stopped with SIGSTOP (a kill at cleanup still ends it).
	frozen bool
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
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
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
	hc := &http.Client{Timeout: 2 * time.Second}
	poll(d.t, 30*time.Second, fmt.Sprintf("campaignd start %d: /readyz answers 200", d.starts), func() bool {
		select {
		case <-exited:
			d.cmd = nil
			d.t.Fatalf("campaignd exited during start %d (see its log)", d.starts)
		default:
		}
		resp, err := hc.Get(d.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// natsAuth are the options to connect to the daemon's embedded NATS server as campaignd:
// the password it generated into its data dir (nats-campaignd.password) at first start.
func (d *daemon) natsAuth() []nats.Option {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.vars["CAMPAIGN_DATA_DIR"], campaigndPasswordFile))
	require.NoError(d.t, err, "campaignd's NATS password in its data dir")
	return []nats.Option{nats.UserInfo(bus.CampaigndUser, strings.TrimSpace(string(b)))}
}

// kill sends SIGKILL and waits for the process to be gone. Killing a stopped daemon
// does nothing.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	d.frozen = false
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.t.Errorf("campaignd did not exit within 10s of SIGKILL")
	}
	d.cmd = nil
}

// startCrashDaemon runs campaignd as a child process on fixed ports, a throwaway
// database and a data dir that survive kills, with pointPerPurchase and oneOffBonus
// live (a probe purchase stored through in has been rewarded by both) and a client
// logged in as admin with a storefront key.
func startCrashDaemon(t *testing.T, in ingester) (*daemon, *client) {
	t.Helper()
	bin := buildCampaignd(t)
	natsPort, httpPort := freePort(t), freePort(t)
	vars := map[string]string{
		"CAMPAIGN_HTTP_ADDR":      "127.0.0.1:" + strconv.Itoa(httpPort),
		"CAMPAIGN_NATS_LISTEN":    "127.0.0.1:" + strconv.Itoa(natsPort),
		"DATABASE_URL":            pgtest.New(t),
		"CAMPAIGN_DATA_DIR":       t.TempDir(),
		"CAMPAIGN_JWT_SECRET":     testSecret,
		"CAMPAIGN_ADMIN_PASSWORD": adminPassword,
		"CAMPAIGN_PARTITIONS":     "8",
		"CAMPAIGN_LOG_LEVEL":      "warn",
		"CAMPAIGN_LOG_FORMAT":     "text",
	}
	d := newDaemon(t, bin, vars)
	d.start()
	c := newClient(t, d.base, "nats://"+vars["CAMPAIGN_NATS_LISTEN"], d.natsAuth()...)
	c.http.Timeout = 10 * time.Second
	c.token = c.login("admin", adminPassword)
	c.newAPIKey("crash-test")
	c.do("POST", "/v1/campaigns", c.token, pointPerPurchase, http.StatusCreated, nil)
	c.do("POST", "/v1/campaigns", c.token, oneOffBonus, http.StatusCreated, nil)
	c.waitActiveCampaigns(2)

	// A probe purchase shows the key reached ingress and both campaigns reached the engine.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, in.store(ctx, c, map[string]any{"id": "probe-1", "user_id": "probe", "type": "purchase", "amount": 1}, nil))
	poll(t, patience, "probe purchase rewarded by both campaigns", func() bool {
		u, ok := c.user("probe")
		return ok && u.Points == 1+bonusPoints
	})
	return d, c
}

// killUnderLoad sends the load through in (one goroutine per user, each event retried
// until stored) and SIGKILLs d rounds times at random points of the stream, restarting
// it on the same data dir, database and ports: round r fires once roughly r/(rounds+1)
// of the events are stored, give or take a random share. It returns when every event is
// stored, with the number stored at each kill.
func killUnderLoad(t *testing.T, d *daemon, c *client, in ingester, l purchaseLoad, rounds int, st *ingestStats) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.jetStream() // connect here: the load's goroutines may not touch t
	var progress atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- l.send(ctx, 0, l.perUser, func(ctx context.Context, ev map[string]any) error {
			return in.store(ctx, c, ev, st)
		}, &progress)
	}()
	total := int64(l.users * l.perUser)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	slice := total / int64(rounds+1)
	killedAt := make([]int64, 0, rounds)
	for r := 1; r <= rounds; r++ {
		target := int64(r)*slice + rng.Int64N(slice/2) - slice/4
		poll(t, time.Minute, fmt.Sprintf("round %d: %d events stored", r, target), func() bool {
			return progress.Load() >= target
		})
		d.kill()
		killedAt = append(killedAt, progress.Load())
		d.start()
	}
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatalf("load did not finish: %d of %d events stored", progress.Load(), total)
	}
	return killedAt
}
