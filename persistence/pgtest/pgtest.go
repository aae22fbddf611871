package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/campaignmanager/campaignmanager/persistence/pgcluster"
)

// EnvURL names the environment variable that points New at an external server:
// a postgres:// URL of a role that may create databases, e.g.
// postgres://postgres:secret@localhost:5432/postgres?sslmode=disable.
const EnvURL = "CAMPAIGN_TEST_DATABASE_URL"

const dirPrefix = "pgtest-"

var (
	mu        sync.Mutex
	inMain    bool
	cluster   *pgcluster.Cluster
	baseDir   string
	adminURL  string
	startErr  error
	dbCounter atomic.Int64
)

// New returns the URL of a fresh, empty database, dropped (WITH (FORCE)) in
// t.Cleanup. The first call starts the cluster shared by the test binary, which
// takes one to two seconds; later calls take tens of milliseconds. It is safe for
// concurrent use, so parallel tests may each call it.
//
// With CAMPAIGN_TEST_DATABASE_URL set, the database is created on that server
// instead. Otherwise the test binary's TestMain must call Main. If no server is
// available, New calls t.Fatal with the reason; it never skips.
func New(t testing.TB) string {
	t.Helper()
	admin, err := server()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("test_%d_%s", dbCounter.Add(1), randomHex(6))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// Main runs the tests, then stops the shared cluster (if New started one) and
// removes its directory, and exits with the tests' status. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// server returns the admin URL of the server to create databases on, starting the
// shared cluster on first use.
func server() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if adminURL != "" {
		return adminURL, nil
	}
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return "", fmt.Errorf("%s must be a postgres:// URL, got %q", EnvURL, env)
		}
		adminURL = env
		return adminURL, nil
	}
	if startErr != nil {
		return "", startErr
	}
	if !inMain {
		return "", errors.New("no shared cluster: the package's TestMain must call pgtest.Main so the cluster is stopped after the tests (func TestMain(m *testing.M) { pgtest.Main(m) }), or set " + EnvURL)
	}
	adminURL, startErr = startCluster()
	return adminURL, startErr
}

func startCluster() (string, error) {
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("start shared cluster: %w", err)
	}
	// MkdirTemp makes a 0700 directory; as root, the postgres user must traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("start shared cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Config{Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("start shared cluster: %w", err)
	}
	cluster, baseDir = c, dir
	return c.URL("postgres"), nil
}

func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	if cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cluster.Stop(ctx); err != nil {
		return fmt.Errorf("stop shared cluster (left in %s): %w", baseDir, err)
	}
	if err := os.RemoveAll(baseDir); err != nil {
		return fmt.Errorf("remove shared cluster: %w", err)
	}
	cluster, baseDir, adminURL = nil, "", ""
	return nil
}

func execAdmin(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// sweep stops and removes clusters left behind by test binaries that died before
// Main could clean up (killed by go test -timeout, ^C...). Failures are ignored:
// the leftovers are only garbage.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*-*"))
	for _, dir := range dirs {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), dirPrefix), "-")
		owner, err := strconv.Atoi(pidStr)
		if err != nil || owner <= 0 || owner == os.Getpid() || alive(owner) {
			continue
		}
		dataDir := filepath.Join(dir, "cluster", "data")
		if b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			pid, err := strconv.Atoi(strings.TrimSpace(first))
			if err != nil || pid <= 0 {
				continue
			}
			if alive(pid) {
				cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if err != nil || !bytes.Contains(cmdline, []byte(dataDir)) {
					continue // not provably that cluster's postmaster: leave it
				}
				_ = syscall.Kill(pid, syscall.SIGQUIT) // immediate shutdown
				deadline := time.Now().Add(10 * time.Second)
				for alive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				if alive(pid) {
					continue
				}
			}
		}
		_ = os.RemoveAll(dir)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
