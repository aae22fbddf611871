package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	superuser      = "postgres"
	defaultTimeout = 2 * time.Minute
	startAttempts  = 3
)

// settings are appended to postgresql.conf at initdb. They keep fsync and
// synchronous commit on: the cluster is durable, just small and quick to start.
const settings = `
# Added by campaignmanager/persistence/pgcluster.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
password_encryption = 'scram-sha-256'
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
`

// Config describes a cluster.
type Config struct {
	// Dir is the cluster directory, created if missing. The data files live in
	// Dir/data.
	Dir string
	// Port is the TCP port on 127.0.0.1. With 0, a free port is picked at first
	// start and remembered in Dir/port; if it is busy at a later start, another one
	// is picked and remembered.
	Port int
	// Logger receives progress messages. It may be nil.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL cluster. Its methods are safe for concurrent use.
type Cluster struct {
	dir      string
	dataDir  string
	logFile  string
	password string
	bins     bins
	owner    *owner // nil when not running as root
	env      []string
	log      *slog.Logger

	mu   sync.Mutex
	port int
}

// Start initialises the cluster in cfg.Dir on first use, starts it and blocks until
// it accepts connections or ctx ends (with no deadline, it gives up after two
// minutes). If a server started by an earlier process on the same Dir is still
// running, Start adopts it instead; a stale postmaster.pid is removed.
//
// Errors name what failed; a failed server start includes the tail of
// Dir/postgres.log.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pgcluster: Config.Dir is empty")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("pgcluster: Config.Port %d out of range", cfg.Port)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: resolve %s: %w", cfg.Dir, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logFile: filepath.Join(dir, "postgres.log"),
		log:     logger.With("component", "pgcluster", "dir", dir),
	}
	if os.Geteuid() == 0 {
		if c.owner, err = lookupOwner(); err != nil {
			return nil, err
		}
	}
	c.env = childEnv(c.owner)
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	// Name the data directory the same way in every run: the running postmaster is
	// recognised by it.
	if resolved, err := filepath.EvalSymlinks(dir); err == nil && resolved != dir {
		dir = resolved
		c.dir, c.dataDir, c.logFile = dir, filepath.Join(dir, "data"), filepath.Join(dir, "postgres.log")
	}
	unlock, err := lockDir(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := c.findBins(ctx); err != nil {
		return nil, err
	}
	if !c.initialised() {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	pw, err := os.ReadFile(filepath.Join(dir, "password"))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: read superuser password: %w", err)
	}
	c.password = strings.TrimSpace(string(pw))

	adopted, err := c.adopt(ctx)
	if err != nil {
		return nil, err
	}
	if adopted {
		return c, nil
	}
	if err := c.start(ctx, cfg.Port); err != nil {
		return nil, err
	}
	return c, nil
}

// URL returns the connection URL of database dbname as the superuser, in the form
// postgres://postgres:password@127.0.0.1:port/dbname?sslmode=disable.
func (c *Cluster) URL(dbname string) string {
	c.mu.Lock()
	port := c.port
	c.mu.Unlock()
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name owned by the superuser. It returns nil if
// the database already exists. It blocks until done or ctx ends.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: create database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("pgcluster: create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down with pg_ctl stop -m fast (active sessions are
// disconnected, data is flushed) and blocks until it has exited or ctx ends (with no
// deadline, it gives up after two minutes). Stopping a stopped cluster returns nil.
func (c *Cluster) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := c.run(ctx, c.bins.pgCtl, "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", waitSeconds(ctx))
	if err != nil {
		if _, serr := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("pgcluster: pg_ctl stop: %w: %s", err, out)
	}
	c.log.Info("postgres stopped")
	return nil
}

// initialised reports whether initdb has completed in the data directory.
func (c *Cluster) initialised() bool {
	_, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION"))
	return err == nil
}

// initdb creates the data directory in a scratch directory and renames it into
// place, so an interrupted initdb never leaves a half-made cluster behind.
func (c *Cluster) initdb(ctx context.Context) error {
	begin := time.Now()
	tmp := filepath.Join(c.dir, "data.init")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgcluster: remove %s: %w", tmp, err)
	}
	pwFile := filepath.Join(c.dir, "password")
	if err := c.writeFile(pwFile, randomHex(24)+"\n"); err != nil {
		return err
	}
	out, err := c.run(ctx, c.bins.initdb,
		"-D", tmp,
		"-U", superuser,
		"--pwfile="+pwFile,
		"--auth=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
	)
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %w: %s", err, tail(out, 2000))
	}
	f, err := os.OpenFile(filepath.Join(tmp, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: open postgresql.conf: %w", err)
	}
	_, err = f.WriteString(settings)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: write postgresql.conf: %w", err)
	}
	if err := os.Rename(tmp, c.dataDir); err != nil {
		return fmt.Errorf("pgcluster: install data directory: %w", err)
	}
	syncDir(c.dir)
	c.log.Info("initialised cluster", "duration", time.Since(begin).Round(time.Millisecond))
	return nil
}

// adopt reports whether a server from an earlier run is serving the data directory,
// waiting for one that is still starting up. It removes a stale postmaster.pid.
func (c *Cluster) adopt(ctx context.Context) (bool, error) {
	pidPath := filepath.Join(c.dataDir, "postmaster.pid")
	for {
		pid, port, err := readPidFile(pidPath)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil || !postgresAlive(pid, c.dataDir) {
			if rerr := os.Remove(pidPath); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return false, fmt.Errorf("pgcluster: remove stale %s: %w", pidPath, rerr)
			}
			c.log.Info("removed stale postmaster.pid", "pid", pid)
			return false, nil
		}
		if port > 0 {
			c.setPort(port)
			if c.ping(ctx) == nil {
				if err := c.writeFile(filepath.Join(c.dir, "port"), strconv.Itoa(port)+"\n"); err != nil {
					return false, err
				}
				c.log.Info("adopted running postgres", "pid", pid, "port", port)
				return true, nil
			}
		}
		// Starting up, recovering or shutting down: wait for it to settle.
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("pgcluster: postgres (pid %d) in %s is running but does not accept connections: %w%s",
				pid, c.dataDir, ctx.Err(), c.logTail(0))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start starts the server with pg_ctl, retrying on another port when an
// automatically chosen port turns out to be taken.
func (c *Cluster) start(ctx context.Context, fixedPort int) error {
	for attempt := 1; ; attempt++ {
		port, err := c.choosePort(fixedPort)
		if err != nil {
			return err
		}
		c.setPort(port)
		begin := time.Now()
		offset := fileSize(c.logFile)
		if c.owner != nil {
			if err := c.touch(c.logFile); err != nil {
				return err
			}
		}
		out, err := c.run(ctx, c.bins.pgCtl, "start",
			"-D", c.dataDir,
			"-l", c.logFile,
			"-o", "-p "+strconv.Itoa(port),
			"-w", "-t", waitSeconds(ctx),
		)
		if err == nil {
			err = c.ping(ctx)
		}
		if err == nil {
			c.log.Info("postgres started", "port", port, "duration", time.Since(begin).Round(time.Millisecond))
			return nil
		}
		logTail := c.logTail(offset)
		if fixedPort == 0 && attempt < startAttempts && strings.Contains(logTail, "could not bind") {
			c.log.Warn("port taken, picking another", "port", port)
			if werr := os.Remove(filepath.Join(c.dir, "port")); werr != nil && !errors.Is(werr, os.ErrNotExist) {
				return fmt.Errorf("pgcluster: forget port: %w", werr)
			}
			continue
		}
		return fmt.Errorf("pgcluster: start postgres on 127.0.0.1:%d: %w: %s%s", port, err, tail(out, 2000), logTail)
	}
}

// choosePort returns the configured port, else the remembered one if it is free,
// else a new free port, which it remembers.
func (c *Cluster) choosePort(fixed int) (int, error) {
	if fixed != 0 {
		return fixed, nil
	}
	portFile := filepath.Join(c.dir, "port")
	if b, err := os.ReadFile(portFile); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && portFree(p) {
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: pick a free port: %w", err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("pgcluster: pick a free port: %w", err)
	}
	if err := c.writeFile(portFile, strconv.Itoa(p)+"\n"); err != nil {
		return 0, err
	}
	return p, nil
}

// ping connects as the superuser and runs a query, proving the server accepts
// connections and the password is right.
func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

func (c *Cluster) setPort(p int) {
	c.mu.Lock()
	c.port = p
	c.mu.Unlock()
}

// logTail returns the end of the server log from offset, formatted to append to an
// error message, or "" when there is nothing to show.
func (c *Cluster) logTail(offset int64) string {
	f, err := os.Open(c.logFile)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }() // read-only
	const maxTail = 4000
	size := fileSize(c.logFile)
	if size-offset > maxTail {
		offset = size - maxTail
	}
	buf := make([]byte, size-offset)
	n, _ := f.ReadAt(buf, offset)
	s := strings.TrimSpace(string(buf[:n]))
	if s == "" {
		return ""
	}
	return "\n--- end of " + c.logFile + " ---\n" + s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on supported platforms
	return hex.EncodeToString(b)
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitSeconds is the pg_ctl -t value for ctx's deadline.
func waitSeconds(ctx context.Context) string {
	s := 60
	if d, ok := ctx.Deadline(); ok {
		s = int(time.Until(d).Seconds() + 0.999)
	}
	return strconv.Itoa(max(s, 1))
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// readPidFile returns the pid and port recorded in postmaster.pid.
func readPidFile(path string) (pid, port int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("malformed %s", path)
	}
	if len(lines) > 3 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pid, port, nil
}

// postgresAlive reports whether pid is a live postmaster of dataDir. A pid recycled
// by an unrelated process (after a reboot, say) counts as dead.
func postgresAlive(pid int, dataDir string) bool {
	if pid == os.Getpid() || pid == os.Getppid() {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return false
		}
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) != "postgres" {
		return false
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cmdline) > 0 {
		// The postmaster keeps its command line: postgres -D <dataDir> -p <port>.
		return slices.Contains(strings.Split(string(cmdline), "\x00"), dataDir)
	}
	return true // no /proc: trust kill(2)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
