package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSweepRemovesDirsOfDeadTestBinaries(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no true(1): %v", err)
	}
	dead := cmd.Process.Pid // exited and reaped
	leftover, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(dead)+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(leftover) })
	live, err := os.MkdirTemp("", dirPrefix+strconv.Itoa(os.Getppid())+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(live) })
	if err := os.MkdirAll(filepath.Join(leftover, "cluster", "data"), 0o700); err != nil {
		t.Fatal(err)
	}

	sweep()

	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover of dead pid %d not removed: %v", dead, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("dir of a live process removed: %v", err)
	}
}
