package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/bench/internal/ports"

	"github.com/fillcast/fillcast/bench/internal/apicall"
	"github.com/fillcast/fillcast/bench/internal/procstat"
)

// adminToken is each node's bootstrap admin key.
const adminToken = "bench-overload-admin"

// build compiles the fillcast binary into dir, from the module this
// command runs in.
func build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "fillcast")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/fillcast/fillcast/cmd/fillcast")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fillcast: %w\n%s", err, out)
	}
	return bin, nil
}

// binFlags are the controlplane flags of the binary that the bench may
// pass: the overload protections are being added while this bench is
// written, so it asks the binary rather than assuming.
type binFlags map[string]bool

// controlplaneFlags reads `fillcast controlplane -h`.
func controlplaneFlags(ctx context.Context, bin string) (binFlags, error) {
	out, _ := exec.CommandContext(ctx, bin, "controlplane", "-h").CombinedOutput() // -h exits 2
	if !strings.Contains(string(out), "-admin-token") {
		return nil, fmt.Errorf("%s controlplane -h lists no flags:\n%s", bin, out)
	}
	f := binFlags{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-") {
			name, _, _ := strings.Cut(line[1:], " ")
			f[strings.TrimPrefix(name, "-")] = true
		}
	}
	return f, nil
}

// protection is the node flags of one side of the comparison.
type protection struct {
	name  string   // "on" or "off"
	flags []string // added to the common flags
	// note says where the flags came from, printed with the results.
	note string
}

// protections resolves -on and -off: "auto" means the flags when
// the binary has them, and the nearest thing it has otherwise.
func protections(o options, f binFlags) (on, off protection, err error) {
	on, off = protection{name: "on"}, protection{name: "off"}
	switch {
	case o.on != "auto":
		on.flags, on.note = strings.Fields(o.on), "-on"
	case f["concurrency-limit"]:
		on.note = "default flags (--concurrency-limit adaptive)"
	case f["max-in-flight"]:
		on.flags = []string{"--max-in-flight", strconv.Itoa(standInMaxInFlight)}
		on.note = "this binary has no --concurrency-limit: stand-in, the static shedding it has"
	default:
		return on, off, errors.New("the binary has neither --concurrency-limit nor --max-in-flight: give -on FLAGS")
	}
	switch {
	case o.off != "auto":
		off.flags, off.note = strings.Fields(o.off), "-off"
	case f["concurrency-limit"]:
		off.flags, off.note = []string{"--concurrency-limit", "off"}, "no concurrency limit, no prioritized shedding"
	default:
		off.note = "this binary has no --concurrency-limit: its defaults, which shed nothing (--max-in-flight 0)"
	}
	return on, off, nil
}

// standInMaxInFlight is the static shedding threshold standing in for the
// adaptive limit on a binary without --concurrency-limit.
const standInMaxInFlight = 64

// commonFlags are every node's flags besides the protection's: one
// client address plays many viewers, so the per-address caps are lifted
// the same way on both sides.
func commonFlags(o options, f binFlags) (flags []string, notes []string) {
	flags = []string{"--signups-per-hour", "-1", "--max-conns-per-client", "-1", "--log-level", "warn"}
	notes = append(notes, "--signups-per-hour -1 (viewers are signed up from one address)",
		"--max-conns-per-client -1 (one address opens up to -conns connections)",
		"--log-level warn (no access log at info; 5xx are still logged)")
	switch {
	case !f["rate-limits"]:
		notes = append(notes, "no --rate-limits in this binary: only the events limit per account applies (20 events/s, burst 2000), which the viewers stay under")
	case o.rateLimits != "":
		flags = append(flags, "--rate-limits", o.rateLimits)
		notes = append(notes, "--rate-limits "+o.rateLimits+" (per-principal request limits lifted: a few hundred viewers play thousands of players, and this measures the node, not a viewer's quota)")
	default:
		notes = append(notes, "--rate-limits at the binary's defaults (-rate-limits \"\"): expect 429s from viewers above their quota")
	}
	return flags, notes
}

// node is one control-plane process.
type node struct {
	cmd     *exec.Cmd
	url     string
	dir     string
	args    []string
	exited  chan struct{}
	waitErr error
}

// startNode starts a bootstrap node with its data in dir, logging to
// dir/node.log, and returns once it is the leader of its one-node
// cluster.
func startNode(ctx context.Context, bin, dir string, flags []string, cpu float64, within time.Duration) (*node, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	keys := filepath.Join(dir, "token-keys")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(keys, []byte("k1 "+hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, err
	}
	free, err := ports.Free(4)
	if err != nil {
		return nil, err
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	args := []string{"controlplane", "--id", "n1", "--data", filepath.Join(dir, "data"),
		"--http", addr(free[0]), "--raft", addr(free[1]), "--events-listen", addr(free[2]), "--bootstrap",
		"--token-keys", keys, "--admin-token", adminToken,
		// Nothing listens there: it is the URL players get last, as from
		// a real node with an origin.
		"--origin", "http://" + addr(free[3])}
	args = append(args, flags...)
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if pinned() {
		cmd = exec.Command(taskset, append([]string{"-c", "0", bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// A bench killed outright (SIGKILL, a closed pipe) must not leave the
	// node running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	n := &node{cmd: cmd, url: "http://" + addr(free[0]), dir: dir, args: args, exited: make(chan struct{})}
	release := func() {}
	if pinned() && cpu > 0 {
		if release, err = limitCPU(cmd.Process.Pid, cpu); err != nil {
			fmt.Printf("note: the node runs without a CPU quota: %v\n", err)
			release = func() {}
		}
	}
	go func() {
		n.waitErr = cmd.Wait()
		release()
		logf.Close()
		close(n.exited)
	}()
	if err := n.waitLeader(ctx, within); err != nil {
		n.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, n.logTail())
	}
	return n, nil
}

// waitLeader polls GET /v1/cluster until the node says it leads.
func (n *node) waitLeader(ctx context.Context, within time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	for {
		var st struct {
			State string `json:"state"`
		}
		if _, err := apicall.Call(ctx, c, "GET", n.url+"/v1/cluster", nil, adminToken, http.StatusOK, &st); err == nil && st.State == "Leader" {
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node exited: %v", n.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node at %s not leader after %v", n.url, within)
		}
	}
}

// stop ends the node with SIGTERM, then SIGKILL after 20 s; safe to call
// twice.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// pid is the node's process id.
func (n *node) pid() int { return n.cmd.Process.Pid }

// logTail is the end of the node's log, for errors.
func (n *node) logTail() string {
	b, err := os.ReadFile(filepath.Join(n.dir, "node.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// cpuMeter measures, over an interval, the CPUs the node, this process
// and the whole machine used.
type cpuMeter struct {
	pid         int
	node, self  float64
	busy, total uint64
	start       time.Time
}

func startCPU(pid int) cpuMeter {
	m := cpuMeter{pid: pid, node: procstat.CPUSeconds(pid), self: procstat.CPUSeconds(0), start: time.Now()}
	m.busy, m.total = procstat.MachineCPU()
	return m
}

// cpuUse is what a cpuMeter measured: CPUs busy on average.
type cpuUse struct{ node, self, machine float64 }

func (m cpuMeter) stop() cpuUse {
	wall := time.Since(m.start).Seconds()
	busy, total := procstat.MachineCPU()
	u := cpuUse{node: (procstat.CPUSeconds(m.pid) - m.node) / wall, self: (procstat.CPUSeconds(0) - m.self) / wall}
	if total > m.total {
		u.machine = float64(numCPU()) * float64(busy-m.busy) / float64(total-m.total)
	}
	return u
}

func numCPU() int { return runtime.NumCPU() }

func (u cpuUse) String() string {
	return fmt.Sprintf("CPUs: node %.2f, bench %.2f, machine %.2f of %d", u.node, u.self, u.machine, numCPU())
}

// settle waits, at most within, until the node has been quiet (under a
// quarter of a CPU) for half a second: a phase's leftovers, such as the
// event stream's consumers folding a backlog, must not load the next.
func settle(ctx context.Context, pid int, within time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < within && ctx.Err() == nil {
		before := procstat.CPUSeconds(pid)
		time.Sleep(500 * time.Millisecond)
		if (procstat.CPUSeconds(pid)-before)/0.5 < 0.25 {
			break
		}
	}
	return time.Since(start)
}
