package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Machine is the facts of the machine a run measured.
type Machine struct {
	CPUs      int     `json:"nproc"`
	CPUModel  string  `json:"cpu_model"`
	MemoryGB  float64 `json:"memory_gb"`
	GoVersion string  `json:"go_version"`
	OS        string  `json:"os"`
}

// ReadMachine reads nproc, the CPU model from /proc/cpuinfo and MemTotal from
// /proc/meminfo.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close() // read-only
	}
	if kb := procKB("/proc/meminfo", "MemTotal:"); kb > 0 {
		m.MemoryGB = float64(kb) / (1 << 20)
	}
	return m
}

// procKB reads a "Name: <n> kB" line of a /proc file.
func procKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// RSS returns the resident set size of pid in bytes (VmRSS in /proc/<pid>/status).
func RSS(pid int) int64 { return procKB("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS:") * 1024 }

// procStat is one process's parent and CPU ticks.
type procStat struct {
	ppid  int
	ticks int64
	comm  string
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, ticks: ut + st, comm: s[open+1 : end]}, true
}

// TreeUsage is CPU time (seconds) and RSS (bytes) of a process tree: the root process,
// its descendants (Postgres for campaignd) and the driver itself.
type TreeUsage struct {
	RootCPU, ChildrenCPU, SelfCPU float64
	RootRSS, ChildrenRSS          int64
}

// clkTck is USER_HZ on Linux.
const clkTck = 100

// ReadTree sums CPU and RSS of root and of all its descendants, counting as descendants
// also the processes under a postmaster whose command line names dataDir (pg_ctl
// detaches the private Postgres from campaignd). Processes that exited are not counted,
// so ChildrenCPU is a lower bound.
func ReadTree(root int, dataDir string) TreeUsage {
	var u TreeUsage
	if s, ok := readStat(os.Getpid()); ok {
		u.SelfCPU = float64(s.ticks) / clkTck
	}
	if root <= 0 {
		return u
	}
	stats := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if s, ok := readStat(pid); ok {
			stats[pid] = s
		}
	}
	roots := map[int]bool{root: true}
	if dataDir != "" {
		for pid, s := range stats {
			if s.comm == "postgres" {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.Contains(string(b), dataDir) {
					roots[pid] = true
					u.ChildrenCPU += float64(s.ticks) / clkTck
					u.ChildrenRSS += RSS(pid)
				}
			}
		}
	}
	for pid, s := range stats {
		if roots[pid] && pid != root {
			continue
		}
		if pid == root {
			u.RootCPU = float64(s.ticks) / clkTck
			u.RootRSS = RSS(pid)
			continue
		}
		for p, n := s.ppid, 0; p > 1 && n < 16; p, n = stats[p].ppid, n+1 {
			if roots[p] {
				u.ChildrenCPU += float64(s.ticks) / clkTck
				u.ChildrenRSS += RSS(pid)
				break
			}
		}
	}
	return u
}
