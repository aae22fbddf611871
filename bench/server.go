package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/campaignmanager/campaignmanager/cel/campaign"
)

// Child is a campaignd started by the driver: built from the module's ./cmd/campaignd,
// with a private data dir (its own Postgres cluster and JetStream store) and free ports.
type Child struct {
	// NATSURL, once started, carries the user campaignd and its generated password: the
	// embedded server has no anonymous access.
	URL, NATSURL       string
	Username, Password string
	// PprofURL serves the child's Go profiles (/debug/pprof/...).
	PprofURL string
	cmd      *exec.Cmd
	dir      string
	log      *os.File
	exited   chan struct{}
}

// freeAddr returns a free 127.0.0.1 TCP address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	_ = l.Close() // it only reserved the port; a close error leaves nothing to undo
	return addr, nil
}

// ModuleRoot returns the directory holding go.mod, searching upward from dir.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory; pass --campaignd or --server")
		}
		dir = parent
	}
}

// StartChild builds campaignd (unless binary is set) and starts it with extraEnv
// (KEY=VALUE, overriding the driver's choices), then waits until /readyz answers 200. stderr receives progress lines. Stop must be called.
func StartChild(ctx context.Context, binary string, extraEnv []string, stderr io.Writer) (*Child, error) {
	dir, err := os.MkdirTemp("", "campaignbench-")
	if err != nil {
		return nil, err
	}
	// The private Postgres runs as the postgres user when campaignd is root: it must be
	// able to traverse the data dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Child{dir: dir, Username: "admin", exited: make(chan struct{})}
	if binary == "" {
		root, err := ModuleRoot(".")
		if err != nil {
			return nil, err
		}
		binary = filepath.Join(dir, "campaignd")
		if err := buildCampaignd(ctx, root, binary, stderr); err != nil {
			_ = os.RemoveAll(dir) // best effort: the build error is the one to report
			return nil, err
		}
	}
	addrs, err := freeChildAddrs()
	if err != nil {
		return nil, err
	}
	c.PprofURL = "http://" + addrs.pprof
	pw := make([]byte, 12)
	_, _ = rand.Read(pw)
	c.Password = hex.EncodeToString(pw)
	c.URL = "http://" + addrs.http
	c.NATSURL = "nats://" + addrs.nats
	if err := c.start(binary, c.env(addrs, extraEnv)); err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "bench: campaignd pid %d, api %s, nats %s, data %s\n", c.cmd.Process.Pid, c.URL, c.NATSURL, dir)
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	// The embedded NATS server has no anonymous access: connect as campaignd, with the
	// password it generated into its data dir.
	natsPassword, err := os.ReadFile(filepath.Join(dir, "data", "nats-campaignd.password"))
	if err != nil {
		c.Stop(io.Discard)
		return nil, fmt.Errorf("campaignd's NATS password: %w", err)
	}
	c.NATSURL = (&url.URL{Scheme: "nats", User: url.UserPassword("campaignd", strings.TrimSpace(string(natsPassword))), Host: addrs.nats}).String()
	return c, nil
}

// buildCampaignd builds root's ./cmd/campaignd into binary.
func buildCampaignd(ctx context.Context, root, binary string, stderr io.Writer) error {
	fmt.Fprintf(stderr, "bench: building campaignd in %s\n", root)
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/campaignd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/campaignd: %v\n%s", err, out)
	}
	return nil
}

// childAddrs are the free 127.0.0.1 addresses a child listens on.
type childAddrs struct{ http, nats, pprof string }

func freeChildAddrs() (childAddrs, error) {
	var a childAddrs
	for _, addr := range []*string{&a.http, &a.nats, &a.pprof} {
		var err error
		if *addr, err = freeAddr(); err != nil {
			return childAddrs{}, err
		}
	}
	return a, nil
}

// env is the child's environment: the driver's without DATABASE_URL, NATS_URL and
// CAMPAIGN_*, then the child's settings, then extra (the last of a key wins).
func (c *Child) env(addrs childAddrs, extra []string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "NATS_URL" || strings.HasPrefix(k, "CAMPAIGN_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"CAMPAIGN_DATA_DIR="+filepath.Join(c.dir, "data"),
		"CAMPAIGN_HTTP_ADDR="+addrs.http,
		"CAMPAIGN_NATS_LISTEN="+addrs.nats,
		"CAMPAIGN_ADMIN_USER="+c.Username,
		"CAMPAIGN_ADMIN_PASSWORD="+c.Password,
		"CAMPAIGN_LOG_LEVEL=warn",
		"CAMPAIGN_PPROF_ADDR="+addrs.pprof,
	)
	return append(env, extra...)
}

// start starts binary with env, its output in campaignd.log in the data dir, in a
// process group of its own; c.exited is closed when it exits.
func (c *Child) start(binary string, env []string) error {
	var err error
	c.log, err = os.Create(filepath.Join(c.dir, "campaignd.log"))
	if err != nil {
		return err
	}
	c.cmd = exec.Command(binary)
	c.cmd.Env = env
	c.cmd.Stdout = c.log
	c.cmd.Stderr = c.log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start campaignd: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	return nil
}

// waitReady polls /readyz every 200 ms until it answers 200. It returns an error with the
// tail of the log when campaignd exits first, and stops campaignd when ctx ends or it is
// not ready within 120 s.
func (c *Child) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(120 * time.Second)
	for {
		resp, err := http.Get(c.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.exited:
			return fmt.Errorf("campaignd exited during start:\n%s", c.LogTail(30))
		case <-ctx.Done():
			c.Stop(io.Discard)
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop(io.Discard)
			return fmt.Errorf("campaignd not ready after 120s:\n%s", c.LogTail(30))
		}
	}
}

// Pid is the process id of campaignd.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// LogTail returns the last n lines of campaignd's output.
func (c *Child) LogTail(n int) string {
	b, _ := os.ReadFile(c.log.Name())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM, waits up to 60 s (then kills the process group) and removes the
// data dir.
func (c *Child) Stop(stderr io.Writer) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		fmt.Fprintf(stderr, "bench: campaignd did not stop in 60s; killing it\n")
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	// Stop has no error to return: the log is only read back after a failure, and the
	// data dir is a temporary directory.
	_ = c.log.Close()
	_ = os.RemoveAll(c.dir)
}

// API is a client of campaignd's admin API.
type API struct {
	URL   string
	Token string
	HTTP  *http.Client
}

func (a *API) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Login exchanges the admin credentials for a JWT.
func (a *API) Login(ctx context.Context, username, password string) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if _, err := a.do(ctx, "POST", "/v1/auth/token", map[string]string{"username": username, "password": password}, &out); err != nil {
		return err
	}
	a.Token = out.AccessToken
	return nil
}

// CreateAPIKey creates an ingest API key and returns its secret.
func (a *API) CreateAPIKey(ctx context.Context, name string) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	_, err := a.do(ctx, "POST", "/v1/api-keys", map[string]string{"name": name}, &out)
	return out.Key, err
}

// SetCampaigns makes the first active bench campaigns active and the next up to total
// paused, creating or replacing them as needed.
func (a *API) SetCampaigns(ctx context.Context, active, total int) error {
	for i, c := range Campaigns(total) {
		if i >= active {
			c.Status = campaign.StatusPaused
		}
		code, err := a.do(ctx, "POST", "/v1/campaigns", c, nil)
		if code == http.StatusConflict {
			_, err = a.do(ctx, "PUT", "/v1/campaigns/"+c.ID, c, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Activate activates bench campaigns from..to-1.
func (a *API) Activate(ctx context.Context, from, to int) error {
	for i := from; i < to; i++ {
		if _, err := a.do(ctx, "POST", "/v1/campaigns/"+CampaignID(i)+"/activate", nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// Pause pauses bench campaigns 0..n-1, ignoring those that do not exist.
func (a *API) Pause(ctx context.Context, n int) {
	for i := range n {
		_, _ = a.do(ctx, "POST", "/v1/campaigns/"+CampaignID(i)+"/pause", nil, nil)
	}
}

// Metrics fetches /metrics and returns the sum over labels of every sample by name.
func (a *API) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", a.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads Prometheus text exposition and sums samples by metric name (labels
// dropped; histogram buckets are skipped). The engine's stage histogram is also kept
// sample by sample, under its name with its labels (see stageLatencies).
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		labels := ""
		if j := strings.LastIndex(rest, "}"); j >= 0 {
			labels, rest = rest[:j+1], rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if strings.HasPrefix(name, stageHistogram) {
			out[name+labels] = v
		}
		if strings.HasSuffix(name, "_bucket") {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
