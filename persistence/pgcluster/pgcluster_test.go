package pgcluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/persistence/pgcluster"
)

// clusterDir returns a cluster directory in a fresh base directory that the
// postgres user can traverse when the tests run as root (t.TempDir is mode 0700).
func clusterDir(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	return filepath.Join(base, "cluster")
}

func start(t *testing.T, dir string) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	begin := time.Now()
	c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func stop(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func port(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestartKeepsDataAndPort(t *testing.T) {
	dir := clusterDir(t)
	c := start(t, dir)
	if err := c.CreateDatabase(t.Context(), "app"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(t.Context(), "app"); err != nil {
		t.Fatalf("CreateDatabase on an existing database: %v", err)
	}
	conn := connect(t, c.URL("app"))
	if _, err := conn.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(t.Context())
	firstPort := port(t, c.URL("app"))
	stop(t, c)
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}

	c = start(t, dir)
	if got := port(t, c.URL("app")); got != firstPort {
		t.Errorf("port after restart = %d, want the remembered %d", got, firstPort)
	}
	var v string
	if err := connect(t, c.URL("app")).QueryRow(t.Context(), "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "hello" {
		t.Errorf("v = %q, want hello", v)
	}
	for _, name := range []string{"password", "port", "postgres.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "password")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestSecondStartAdoptsRunningServer(t *testing.T) {
	dir := clusterDir(t)
	first := start(t, dir)
	second := start(t, dir)
	if first.URL("x") != second.URL("x") {
		t.Errorf("URLs differ: %s vs %s", first.URL("x"), second.URL("x"))
	}
	var t1, t2 time.Time
	if err := connect(t, first.URL("postgres")).QueryRow(t.Context(), "SELECT pg_postmaster_start_time()").Scan(&t1); err != nil {
		t.Fatal(err)
	}
	if err := connect(t, second.URL("postgres")).QueryRow(t.Context(), "SELECT pg_postmaster_start_time()").Scan(&t2); err != nil {
		t.Fatal(err)
	}
	if !t1.Equal(t2) {
		t.Errorf("server restarted: start times %v and %v", t1, t2)
	}
}

func TestStalePidFileDoesNotBlockStart(t *testing.T) {
	dir := clusterDir(t)
	c := start(t, dir)
	stop(t, c)
	// After a reboot the recorded pid may belong to any process, even this one.
	pidFile := filepath.Join(dir, "data", "postmaster.pid")
	content := strconv.Itoa(os.Getpid()) + "\n" + filepath.Join(dir, "data") + "\n1700000000\n5432\n\n127.0.0.1\n0 0\nready\n"
	if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c = start(t, dir)
	if err := connect(t, c.URL("postgres")).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestBusyRememberedPortIsReplaced(t *testing.T) {
	dir := clusterDir(t)
	c := start(t, dir)
	old := port(t, c.URL("postgres"))
	stop(t, c)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(old)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // only holds the old port while start runs
	c = start(t, dir)
	if got := port(t, c.URL("postgres")); got == old {
		t.Fatalf("port = %d, which is taken", got)
	}
	b, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(port(t, c.URL("postgres"))) {
		t.Errorf("remembered port %s, want %d", got, port(t, c.URL("postgres")))
	}
}

func TestUntraversableParentIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	dir := filepath.Join(t.TempDir(), "cluster") // t.TempDir's parent is mode 0700
	_, err := pgcluster.Start(t.Context(), pgcluster.Config{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "cannot traverse") {
		t.Fatalf("Start = %v, want a 'cannot traverse' error", err)
	}
}

// TestHelperStartAndHang is the child process of
// TestStartAdoptsServerOfKilledProcess: it starts a cluster, prints its URL and
// waits to be killed.
func TestHelperStartAndHang(t *testing.T) {
	dir := os.Getenv("PGCLUSTER_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestStartAdoptsServerOfKilledProcess")
	}
	c, err := pgcluster.Start(context.Background(), pgcluster.Config{Dir: dir})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("URL", c.URL("postgres"))
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed or the parent goes away
	os.Exit(0)
}

func TestStartAdoptsServerOfKilledProcess(t *testing.T) {
	dir := clusterDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStartAndHang$")
	cmd.Env = append(os.Environ(), "PGCLUSTER_HELPER_DIR="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close() }() // the child is killed below; this only frees the pipe
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var childURL string
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			childURL = u
			break
		}
		t.Logf("child: %s", sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to stop postgres
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if childURL == "" {
		t.Fatal("child did not start a cluster")
	}
	var before, after time.Time
	if err := connect(t, childURL).QueryRow(t.Context(), "SELECT pg_postmaster_start_time()").Scan(&before); err != nil {
		t.Fatalf("server died with its parent: %v", err)
	}

	c := start(t, dir)
	if c.URL("postgres") != childURL {
		t.Errorf("URL = %s, want the running server's %s", c.URL("postgres"), childURL)
	}
	if err := connect(t, c.URL("postgres")).QueryRow(t.Context(), "SELECT pg_postmaster_start_time()").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !before.Equal(after) {
		t.Errorf("server restarted (start time %v, then %v), want it adopted", before, after)
	}
}

func TestFailedStartReportsServerLog(t *testing.T) {
	dir := clusterDir(t)
	stop(t, start(t, dir))
	conf, err := os.OpenFile(filepath.Join(dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.WriteString("\nshared_buffers = 'plenty'\n"); err != nil {
		t.Fatal(err)
	}
	if err := conf.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = pgcluster.Start(t.Context(), pgcluster.Config{Dir: dir})
	if err == nil {
		t.Fatal("Start succeeded with a broken postgresql.conf")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), "shared_buffers") {
		t.Errorf("error does not show the server log's complaint about shared_buffers: %v", err)
	}
}
