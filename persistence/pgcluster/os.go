package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const installHint = "install PostgreSQL (apt-get install -y postgresql)"

// owner is the system user that runs initdb and pg_ctl when this process is root.
type owner struct {
	name   string
	home   string
	uid    uint32
	gid    uint32
	groups []uint32
}

func lookupOwner() (*owner, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, so initdb and postgres must run as the postgres user, but it is missing (%v): create it (useradd --system postgres) or %s", err, installHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgcluster: postgres user: %w", err)
	}
	o := &owner{name: u.Username, home: u.HomeDir, uid: uint32(uid), gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				o.groups = append(o.groups, uint32(g))
			}
		}
	}
	return o, nil
}

// canTraverse reports whether the owner may search directory fi.
func (o *owner) canTraverse(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := fi.Mode().Perm()
	switch {
	case st.Uid == o.uid:
		return mode&0o100 != 0
	case st.Gid == o.gid || slices.Contains(o.groups, st.Gid):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// prepareDir creates the cluster directory and, as root, hands it to the postgres
// user after checking that user can reach it.
func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(filepath.Dir(c.dir), 0o755); err != nil {
		return fmt.Errorf("pgcluster: create %s: %w", filepath.Dir(c.dir), err)
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgcluster: create %s: %w", c.dir, err)
	}
	if c.owner == nil {
		return nil
	}
	for p := filepath.Dir(c.dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: stat %s: %w", p, err)
		}
		if !c.owner.canTraverse(fi) {
			return fmt.Errorf("pgcluster: the postgres user (postgres runs as it because this process is root) cannot traverse %s (mode %v): run `chmod o+x %s` or put the cluster directory elsewhere", p, fi.Mode().Perm(), p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	if err := os.Chown(c.dir, int(c.owner.uid), int(c.owner.gid)); err != nil {
		return fmt.Errorf("pgcluster: give %s to the postgres user: %w", c.dir, err)
	}
	return nil
}

// writeFile atomically replaces path with content, mode 0600, owned by the user
// that runs postgres.
func (c *Cluster) writeFile(path, content string) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, []byte(content), 0o600)
	if err == nil && c.owner != nil {
		err = os.Chown(tmp, int(c.owner.uid), int(c.owner.gid))
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(tmp); err == nil {
			err = f.Sync()
			_ = f.Close()
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pgcluster: write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// touch creates path if missing and gives it to the user that runs postgres.
func (c *Cluster) touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		err = f.Close()
	}
	if err == nil && c.owner != nil {
		err = os.Chown(path, int(c.owner.uid), int(c.owner.gid))
	}
	if err != nil {
		return fmt.Errorf("pgcluster: create %s: %w", path, err)
	}
	return nil
}

// lockDir takes an exclusive flock on path, waiting until ctx ends.
func lockDir(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("pgcluster: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("pgcluster: wait for another Start on %s: %w", filepath.Dir(path), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// childEnv is the environment for initdb and pg_ctl: ours without PG* variables
// (PGDATA, PGPORT... would override our flags), with the C locale.
func childEnv(o *owner) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "PG"), strings.HasPrefix(k, "LC_"), k == "LANG", k == "LANGUAGE":
			continue
		case o != nil && (k == "HOME" || k == "USER" || k == "LOGNAME"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	if o != nil {
		env = append(env, "HOME="+o.home, "USER="+o.name, "LOGNAME="+o.name)
	}
	return env
}

// run runs a PostgreSQL program in the cluster directory, as the postgres user when
// this process is root, and returns its combined output.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.WaitDelay = 5 * time.Second
	if c.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
			Uid: c.owner.uid, Gid: c.owner.gid, Groups: c.owner.groups,
		}}
	}
	c.log.Debug("run", "cmd", cmd.String())
	return cmd.CombinedOutput()
}

// bins are the PostgreSQL programs used, from one installation.
type bins struct {
	initdb string
	pgCtl  string
}

// findBins finds initdb and pg_ctl on PATH or in /usr/lib/postgresql/<ver>/bin
// (highest version), preferring the version that created an existing cluster.
func (c *Cluster) findBins(ctx context.Context) error {
	var want string
	if b, err := os.ReadFile(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		want = strings.TrimSpace(string(b))
	}
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(matches, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	if want != "" {
		// Prefer the matching version's directory if there is one.
		slices.SortStableFunc(dirs, func(a, b string) int {
			am, bm := strings.Contains(a, "/"+want+"/"), strings.Contains(b, "/"+want+"/")
			switch {
			case am && !bm:
				return -1
			case bm && !am:
				return 1
			}
			return 0
		})
	}
	var mismatch error
	for _, d := range dirs {
		b := bins{initdb: filepath.Join(d, "initdb"), pgCtl: filepath.Join(d, "pg_ctl")}
		if !executable(b.initdb) || !executable(b.pgCtl) || !executable(filepath.Join(d, "postgres")) {
			continue
		}
		if want != "" {
			out, err := exec.CommandContext(ctx, b.pgCtl, "--version").Output()
			if err != nil {
				continue
			}
			if got := majorVersion(string(out)); got != want {
				mismatch = fmt.Errorf("pgcluster: %s was created by PostgreSQL %s but %s is version %s: install PostgreSQL %s or move the directory away", c.dataDir, want, b.pgCtl, got, want)
				continue
			}
		}
		c.bins = b
		return nil
	}
	if mismatch != nil {
		return mismatch
	}
	return errors.New("pgcluster: initdb not found (looked for initdb, pg_ctl and postgres on PATH and in /usr/lib/postgresql/*/bin): " + installHint)
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionOf returns the major version in a path like /usr/lib/postgresql/15/bin/x.
func versionOf(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// majorVersion extracts "15" from "pg_ctl (PostgreSQL) 15.18 (Debian ...)".
func majorVersion(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return ""
	}
	major, _, _ := strings.Cut(f[2], ".")
	return major
}
