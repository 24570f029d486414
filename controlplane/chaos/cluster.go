package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/netns"
)

// Ports every node uses in its own namespace.
const (
	httpPort   = 7000
	raftPort   = 7001
	eventsPort = 7002
)

// ClusterConfig describes the nodes. Required unless a default is named.
type ClusterConfig struct {
	// Binary is the fillcast command.
	Binary string
	// Dir holds each node's data directory and log (n1, n1.log, ...).
	Dir string
	// KeysFile is the token key file every node is given.
	KeysFile string
	// AdminToken is the operators' and nodes' token.
	AdminToken string
}

// Validate reports a missing field.
func (c ClusterConfig) Validate() error {
	for _, f := range []struct{ name, v string }{{"Binary", c.Binary}, {"Dir", c.Dir}, {"KeysFile", c.KeysFile}, {"AdminToken", c.AdminToken}} {
		if f.v == "" {
			return fmt.Errorf("chaos: cluster: %s is required", f.name)
		}
	}
	return nil
}

// Cluster runs one control-plane node per host of a network, as the
// real binary: node i (from 0) is "n{i+1}" on host i. The first
// bootstraps, the others join it; restarted, a node keeps its data
// directory and addresses.
type Cluster struct {
	cfg ClusterConfig
	net *netns.Network

	mu    sync.Mutex
	procs []*proc // nil while not running
}

// proc is a running node process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewCluster describes the nodes of net; it starts nothing.
func NewCluster(cfg ClusterConfig, net *netns.Network) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Cluster{cfg: cfg, net: net, procs: make([]*proc, len(net.Hosts()))}, nil
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.procs) }

// URL is where clients reach node i: its client link.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("http://%s:%d", c.net.Hosts()[i].ClientAddr, httpPort)
}

// peerURL is where the other nodes reach node i: its cluster link.
func (c *Cluster) peerURL(i int) string {
	return fmt.Sprintf("http://%s:%d", c.net.Hosts()[i].ClusterAddr, httpPort)
}

// LogPath is node i's log file.
func (c *Cluster) LogPath(i int) string { return filepath.Join(c.cfg.Dir, c.id(i)+".log") }

func (c *Cluster) id(i int) string { return "n" + strconv.Itoa(i+1) }

// Start starts node i; it must not be running.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.procs[i] != nil {
		return fmt.Errorf("chaos: %s is running", c.id(i))
	}
	h := c.net.Hosts()[i]
	args := []string{"controlplane", "--id", c.id(i), "--data", filepath.Join(c.cfg.Dir, c.id(i)),
		"--http", fmt.Sprintf("0.0.0.0:%d", httpPort), "--advertise-url", c.peerURL(i),
		"--raft", fmt.Sprintf("%s:%d", h.ClusterAddr, raftPort), "--events-listen", fmt.Sprintf("%s:%d", h.ClusterAddr, eventsPort),
		"--token-keys", c.cfg.KeysFile, "--admin-token", c.cfg.AdminToken}
	if i == 0 {
		args = append(args, "--bootstrap")
	} else {
		// Any other node will do: a restarted node joins through whichever
		// is up (joining again is harmless).
		var peers []string
		for j := range c.procs {
			if j != i {
				peers = append(peers, c.peerURL(j))
			}
		}
		args = append(args, "--join", strings.Join(peers, ","))
	}
	lf, err := os.OpenFile(c.LogPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "---- chaos: starting %s at %s\n", c.id(i), time.Now().Format(time.RFC3339Nano))
	cmd := c.net.Command(i, c.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Dies with the harness, should the harness die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start %s: %w", c.id(i), err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	c.procs[i] = p
	return nil
}

// Kill sends node i SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	p := c.procs[i]
	c.procs[i] = nil
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("chaos: %s is not running", c.id(i))
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("chaos: kill %s: %w", c.id(i), err)
	}
	<-p.exited
	return nil
}

// Running reports whether node i was started and not killed, and has
// not exited on its own.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	p := c.procs[i]
	c.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// ErrCrashed is returned (wrapped) for a node that exited on its own.
var ErrCrashed = errors.New("chaos: a node exited on its own")

// Crashed returns an error wrapping ErrCrashed, with the end of its log,
// for each node that exited without being killed, or nil.
func (c *Cluster) Crashed() error {
	var errs []error
	for i := range c.procs {
		c.mu.Lock()
		p := c.procs[i]
		c.mu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			errs = append(errs, fmt.Errorf("%w: %s (%v); the end of its log (%s):\n%s", ErrCrashed, c.id(i), p.cmd.ProcessState, c.LogPath(i), tail(c.LogPath(i), 30)))
		default:
		}
	}
	return errors.Join(errs...)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Close kills every running node.
func (c *Cluster) Close() {
	for i := range c.procs {
		c.Kill(i)
	}
}

// Status asks node i for its view of the cluster (GET /v1/cluster).
func (c *Cluster) Status(ctx context.Context, i int) (fillcast.ClusterStatus, error) {
	var st fillcast.ClusterStatus
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL(i)+"/v1/cluster", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("chaos: %s: GET /v1/cluster: %s", c.id(i), resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// Leader finds the node that leads among those running and not in
// skip: the one that says it leads, of the highest term if two do (a
// partitioned leader may not know yet). It returns -1 if none does.
func (c *Cluster) Leader(ctx context.Context, skip map[int]bool) int {
	best, bestTerm := -1, -1
	for i := range c.procs {
		if skip[i] || !c.Running(i) {
			continue
		}
		st, err := c.Status(ctx, i)
		if err != nil || st.State != "Leader" {
			continue
		}
		if term, _ := strconv.Atoi(st.Term); term > bestTerm {
			best, bestTerm = i, term
		}
	}
	return best
}

// Healthy reports nil once every node runs, knows the same leader and
// lists every node as a member with its URL, else what is missing.
func (c *Cluster) Healthy(ctx context.Context) error {
	if err := c.Crashed(); err != nil {
		return err
	}
	leader := ""
	for i := range c.procs {
		if !c.Running(i) {
			return fmt.Errorf("%s is not running", c.id(i))
		}
		st, err := c.Status(ctx, i)
		if err != nil {
			return err
		}
		if st.Leader == "" || (leader != "" && st.Leader != leader) {
			return fmt.Errorf("%s knows leader %q, others %q", c.id(i), st.Leader, leader)
		}
		leader = st.Leader
		urls := 0
		for _, m := range st.Members {
			if m.HTTPURL != "" {
				urls++
			}
		}
		if urls != len(c.procs) {
			return fmt.Errorf("%s lists %d of %d members with their URLs", c.id(i), urls, len(c.procs))
		}
	}
	return nil
}
