package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/bench/internal/procstat"

	"github.com/fillcast/fillcast/bench/internal/ports"

	"github.com/fillcast/fillcast/bench/internal/apicall"
)

// adminToken is every process's admin token.
const adminToken = "bench-catalog-admin"

// proc is one process of the bench: an origin or a control-plane node.
type proc struct {
	name    string
	bin     string
	args    []string
	dir     string // its data directory (nodes)
	url     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// start runs p.bin with p.args, logging to logDir/p.name.log.
func (p *proc) start(logDir string) error {
	logf, err := os.OpenFile(filepath.Join(logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// A bench killed outright must not leave its processes running.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.waitErr = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return nil
}

// stop ends p with SIGTERM, then SIGKILL after a minute; safe to call
// on a stopped process.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// rss is the process's resident memory, from /proc.
func (p *proc) rss() int64 { return procstat.RSSBytes(p.cmd.Process.Pid) }

// system is an origin and three control-plane nodes of one release.
type system struct {
	dir    string
	origin *proc
	root   string // the origin's directory
	nodes  []*proc
}

// startSystem starts the origin and three nodes of bin in dir, and
// returns once the three are members with a leader. flags are added to
// every node's.
func startSystem(ctx context.Context, bin, dir string, flags []string) (*system, error) {
	s := &system{dir: dir, root: filepath.Join(dir, "origin")}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, err
	}
	keys := filepath.Join(dir, "token-keys")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(keys, []byte("k1 "+hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return nil, err
	}
	free, err := ports.Free(10)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(free[i]) }
	s.origin = &proc{name: "origin", bin: bin, url: "http://" + addr(0),
		args: []string{"origin", "--root", s.root, "--http", addr(0), "--admin-token", adminToken, "--log-level", "warn"}}
	if err := s.origin.start(dir); err != nil {
		return nil, err
	}
	for i := range 3 {
		id := "n" + strconv.Itoa(i+1)
		p := &proc{name: id, bin: bin, dir: filepath.Join(dir, id), url: "http://" + addr(1+3*i)}
		p.args = append([]string{"controlplane", "--id", id, "--data", p.dir, "--http", addr(1 + 3*i), "--raft", addr(2 + 3*i),
			"--events-listen", addr(3 + 3*i), "--token-keys", keys, "--admin-token", adminToken, "--origin", s.origin.url}, flags...)
		if i == 0 {
			p.args = append(p.args, "--bootstrap")
		} else {
			p.args = append(p.args, "--join", s.nodes[0].url)
		}
		if err := p.start(dir); err != nil {
			s.stop()
			return nil, err
		}
		s.nodes = append(s.nodes, p)
		if err := waitMembers(ctx, s.nodes[0], i+1, time.Minute); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s: %w (log: %s)", id, err, logTail(filepath.Join(dir, id+".log")))
		}
	}
	return s, nil
}

// waitMembers waits until n reports a leader and want members.
func waitMembers(ctx context.Context, n *proc, want int, within time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second}
	return until(ctx, within, fmt.Sprintf("%d members with a leader", want), func() bool {
		var st struct {
			Leader  string `json:"leader"`
			Members []any  `json:"members"`
		}
		_, err := apicall.Call(ctx, c, "GET", n.url+"/v1/cluster", nil, adminToken, http.StatusOK, &st)
		return err == nil && st.Leader != "" && len(st.Members) == want
	}, n)
}

// until polls ok every 100 ms until it holds, within has passed (an
// error naming what) or a watched process exits.
func until(ctx context.Context, within time.Duration, what string, ok func() bool, watch ...*proc) error {
	deadline := time.Now().Add(within)
	for !ok() {
		for _, p := range watch {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited (%v) waiting for %s", p.name, p.waitErr, what)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %v", what, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// stop ends every process.
func (s *system) stop() {
	for _, n := range s.nodes {
		n.stop()
	}
	if s.origin != nil {
		s.origin.stop()
	}
}

// raftBytes is the size of a node's raft log directory and of its
// newest snapshot's state.
func raftBytes(n *proc) (log, snapshot int64) {
	log = dirBytes(filepath.Join(n.dir, "raft", "wal"))
	snaps, _ := filepath.Glob(filepath.Join(n.dir, "raft", "snapshots", "*", "state.bin"))
	var newest time.Time
	for _, s := range snaps {
		if st, err := os.Stat(s); err == nil && st.ModTime().After(newest) {
			newest, snapshot = st.ModTime(), st.Size()
		}
	}
	return log, snapshot
}

// dirBytes is the disk space (allocated blocks, not apparent sizes: the
// log's segments are preallocated sparse files) the files under dir use.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// logTail is the end of a log file, for errors.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// buildRelease builds ./cmd/fillcast of the module (rev empty) or of git
// revision rev (in a worktree under dir) into dir, and returns the
// binary's path.
func buildRelease(ctx context.Context, dir, rev string) (string, error) {
	src, bin := ".", filepath.Join(dir, "fillcast-new")
	if rev != "" {
		src, bin = filepath.Join(dir, "src-"+rev), filepath.Join(dir, "fillcast-"+rev)
		if out, err := exec.CommandContext(ctx, "git", "worktree", "add", "-f", "--detach", src, rev).CombinedOutput(); err != nil {
			return "", fmt.Errorf("git worktree add %s: %w\n%s", rev, err, out)
		}
		defer exec.Command("git", "worktree", "remove", "--force", src).Run()
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fillcast")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/fillcast (%s): %w\n%s", cmp.Or(rev, "this tree"), err, out)
	}
	return bin, nil
}
