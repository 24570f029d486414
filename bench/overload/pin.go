package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// pinnedEnv marks the process that pinSelf started again on CPU 1.
const pinnedEnv = "FILLCAST_OVERLOAD_PINNED"

// taskset is util-linux's, found by pinSelf.
var taskset string

// pinSelf starts this program again on CPU 1 alone (taskset), so that
// the load generator and the node it measures (on CPU 0, see startNode)
// do not take each other's CPU: a node starved by its own load generator
// measures the generator. It does nothing with fewer than 2 CPUs or
// without taskset, and returns only then or in the pinned process.
func pinSelf() {
	if os.Getenv(pinnedEnv) != "" {
		taskset, _ = exec.LookPath("taskset")
		return
	}
	path, err := exec.LookPath("taskset")
	if err != nil || runtime.NumCPU() < 2 {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), pinnedEnv+"=1")
	err = syscall.Exec(path, append([]string{"taskset", "-c", "1", self}, os.Args[1:]...), env)
	os.Stderr.WriteString("overload: cannot pin to CPU 1: " + err.Error() + "\n")
}

// pinned reports whether this process runs pinned, and the node is to.
func pinned() bool { return os.Getenv(pinnedEnv) != "" && taskset != "" }

// limitCPU puts process pid in a cgroup of its own allowed share of one
// CPU (cgroup v2's cpu.max, or v1's cpu.cfs_quota_us), and returns what
// removes the cgroup once the process has exited.
func limitCPU(pid int, share float64) (release func(), err error) {
	const period = 100_000 // µs
	quota := int(share * period)
	name := "fillcast-overload-" + strconv.Itoa(pid)
	for _, g := range []struct{ root, limit, value string }{
		{"/sys/fs/cgroup", "cpu.max", fmt.Sprintf("%d %d", quota, period)},
		{"/sys/fs/cgroup/unified", "cpu.max", fmt.Sprintf("%d %d", quota, period)},
		{"/sys/fs/cgroup/cpu", "cpu.cfs_quota_us", strconv.Itoa(quota)},
	} {
		dir := filepath.Join(g.root, name)
		if err = os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		// A cgroup's files are there as soon as it is made: writing
		// without creating tells a cgroup from a plain directory.
		if err = writeExisting(filepath.Join(dir, g.limit), g.value); err == nil {
			err = writeExisting(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid))
		}
		if err != nil {
			os.Remove(dir)
			continue
		}
		return func() { os.Remove(dir) }, nil
	}
	return nil, fmt.Errorf("no cgroup with a CPU controller to join (%v)", err)
}

// writeExisting writes s to the existing file path.
func writeExisting(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	return errors.Join(err, f.Close())
}
