package cache

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fillcast/fillcast/internal/poll"
)

// TestTmpFilesGoWithTheirOwner: opening a directory removes the temporary
// files of every owner that no longer holds its lock, whatever its PID is
// doing (reused by a live process, or a zombie not yet reaped), and keeps
// those of an owner that does (the process being upgraded from, still
// filling) until it lets go.
func TestTmpFilesGoWithTheirOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := testDiskOptions()
	dc := DirConfig{Path: dir, Bytes: 1 << 30}
	old, err := openDisk(dc, opts) // the process upgraded from, filling
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := old.owner.tmpName(old.tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, inFlight, "half an object")

	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zombie.Wait() })
	poll.Until(t, 10*time.Second, "the child to become a zombie", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(zombie.Process.Pid) + "/stat")
		i := bytes.LastIndexByte(b, ')')
		return err == nil && i > 0 && i+2 < len(b) && b[i+2] == 'Z'
	})
	tests := []struct {
		name, owner string
		lockFile    bool // the owner made its lock file (it is not locked: the owner is gone)
		kept        bool
	}{
		{"PID reused by a live process", strconv.Itoa(os.Getpid()) + ".0badf00d", true, false},
		{"zombie PID", strconv.Itoa(zombie.Process.Pid) + ".0badf00d", true, false},
		{"lock file lost", strconv.Itoa(os.Getpid()) + ".deadbeef", false, false},
		{"no lock, dead PID (before locks)", "999999999", false, false},
		{"no lock, live PID (before locks)", strconv.Itoa(os.Getppid()), false, true},
	}
	for _, tt := range tests {
		writeFile(t, filepath.Join(dir, "tmp", tt.owner+"-1"), "torn")
		if tt.lockFile {
			writeFile(t, filepath.Join(dir, "owners", tt.owner+".lock"), "")
		}
	}

	upgraded, err := openDisk(dc, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer upgraded.close()
	for _, tt := range tests {
		_, err := os.Stat(filepath.Join(dir, "tmp", tt.owner+"-1"))
		if got := err == nil; got != tt.kept {
			t.Errorf("%s: temporary file kept %v, want %v", tt.name, got, tt.kept)
		}
		if _, err := os.Stat(filepath.Join(dir, "owners", tt.owner+".lock")); err == nil {
			t.Errorf("%s: lock file kept", tt.name)
		}
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Fatalf("the live owner's temporary file was removed: %v", err)
	}
	// The old process dies (the kernel drops its lock): the next sweep,
	// Adopt's, clears what it left.
	old.close()
	if err := upgraded.clearTmp(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inFlight); !os.IsNotExist(err) {
		t.Errorf("the dead owner's temporary file is still there: %v", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
