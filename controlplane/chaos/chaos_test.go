package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/fillcast/fillcast/internal/netns"
	"github.com/fillcast/fillcast/internal/poll"
)

// durationEnv sets how long TestLinearizable injects faults (a Go
// duration); `make chaos` sets ten minutes.
const durationEnv = "FILLCAST_CHAOS_DURATION"

// binaryEnv names a fillcast binary to test instead of building this
// tree's (to check another version, or an old one the harness should
// fail).
const binaryEnv = "FILLCAST_CHAOS_BINARY"

// prefix names the namespaces of this harness (netns.Sweep).
const prefix = "fcchaos"

// TestLinearizable runs three control-plane nodes in their own network
// namespaces, five clients creating, updating and reading titles through
// all of them, and a nemesis killing and partitioning leaders for a
// minute (FILLCAST_CHAOS_DURATION); then it heals everything, lets the
// clients run on for a few seconds, and checks the history with
// porcupine. A failure keeps the run's directory (node logs, the history
// as text, porcupine's picture) and names it.
func TestLinearizable(t *testing.T) {
	faultsFor := time.Minute
	if s := os.Getenv(durationEnv); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 10m", durationEnv, s)
		}
		faultsFor = d
	}
	r := newRig(t)
	ctx, cluster, net, token, dir := context.Background(), r.cluster, r.net, r.token, r.dir
	hist := NewHistory(time.Now())
	urls := make([]string, cluster.Size())
	for i := range urls {
		urls[i] = cluster.URL(i)
	}
	wl, err := NewWorkload(WorkloadConfig{Token: token}, urls, hist)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopClients := context.WithCancel(ctx)
	clientsDone := make(chan struct{})
	go func() { wl.Run(wctx); close(clientsDone) }()
	defer func() { stopClients(); <-clientsDone }()

	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	fctx, stopFaults := context.WithTimeout(ctx, faultsFor)
	err = NewNemesis(NemesisConfig{}, cluster, net, hist, log).Run(fctx)
	stopFaults()
	if err != nil {
		t.Fatal(err)
	}
	r.healthy(t, "the cluster whole again after the faults")
	// The clients go on against the healed cluster: its reads show what
	// the faults left behind.
	sleep(ctx, 5*time.Second)
	stopClients()
	<-clientsDone
	if p := wl.Problems(); len(p) > 0 {
		t.Fatalf("answers that mean the harness is wrong:\n%s", strings.Join(p, "\n"))
	}

	ops := hist.Ops()
	faults := hist.Faults()
	t.Logf("faults over %v: %s", faultsFor, counts(hist.FaultCounts()))
	t.Logf("operations recorded: %d (%s); left out: %s", len(ops), outcomes(ops), counts(hist.Dropped()))
	started := time.Now()
	v := Check(ops, faults, max(2*time.Minute, faultsFor))
	t.Logf("porcupine: %s, %d operations checked (%d unknown writes among them, %d more pruned), in %v",
		v.Result, v.Checked, v.Unknown, v.Pruned, time.Since(started).Round(time.Millisecond))
	if v.Result == porcupine.Ok {
		return
	}
	text := filepath.Join(dir, "history.txt")
	if err := WriteText(text, ops, faults); err != nil {
		t.Error(err)
	}
	html := filepath.Join(dir, "linearizability.html")
	if err := v.Visualize(html, faults); err != nil {
		t.Error(err)
	}
	// Reads from partitioned nodes first: the case the harness is for.
	sort.SliceStable(v.Stale, func(i, j int) bool {
		return strings.Contains(v.Stale[i], "partitioned") && !strings.Contains(v.Stale[j], "partitioned")
	})
	fromPartitioned := 0
	for _, s := range v.Stale {
		if strings.Contains(s, "partitioned") {
			fromPartitioned++
		}
	}
	t.Logf("stale reads: %d, %d of them from partitioned nodes", len(v.Stale), fromPartitioned)
	if len(v.Stale) > 10 {
		v.Stale = append(v.Stale[:10], fmt.Sprintf("... and %d more", len(v.Stale)-10))
	}
	t.Errorf("the history is not linearizable (%s); porcupine's picture: %s; the history: %s; stale reads:\n%s",
		v.Result, html, text, strings.Join(v.Stale, "\n"))
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// fillcastBinary returns FILLCAST_CHAOS_BINARY, or this tree's
// cmd/fillcast built once for the package's tests.
func fillcastBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(binaryEnv); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "fillcast-chaos-bin-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "fillcast"), "github.com/fillcast/fillcast/cmd/fillcast").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	statSources(t)
	return filepath.Join(buildDir, "fillcast")
}

// statSources stats the module's Go files: go test caches a package's
// result by its own test binary, which does not depend on the binary
// under test here, and by the files the test looked at, so this makes a
// change anywhere in the module run the test again.
func statSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata"):
			return filepath.SkipDir
		case !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum"):
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rig is a healthy three-node cluster, each node in its own namespace,
// with a directory for its data and logs that a failed test keeps.
type rig struct {
	dir, token string
	net        *netns.Network
	cluster    *Cluster
}

// newRig skips the test where namespaces cannot be created, else builds
// the rig and waits until it is healthy. Cleanup takes it down.
func newRig(t *testing.T) *rig {
	t.Helper()
	if err := netns.Available(""); errors.Is(err, netns.ErrUnavailable) {
		t.Skipf("this test runs nodes in network namespaces, which cannot be created here: %v (run as root with iproute2)", err)
	} else if err != nil {
		t.Fatal(err)
	}
	if err := netns.Sweep(prefix, ""); err != nil {
		t.Fatal(err)
	}
	bin := fillcastBinary(t)
	r := &rig{token: randomHex(t, 16)}
	var err error
	if r.dir, err = os.MkdirTemp("", "fillcast-chaos-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the run's directory (node logs, history): %s", r.dir)
			return
		}
		os.RemoveAll(r.dir)
	})
	if r.net, err = netns.New(netns.Config{Prefix: prefix, Hosts: 3}); err != nil {
		t.Fatal(err)
	}
	if err := r.net.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.net.Close(); err != nil {
			t.Error(err)
		}
	})
	keysFile := filepath.Join(r.dir, "keys")
	if err := os.WriteFile(keysFile, []byte("k1 "+randomHex(t, 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r.cluster, err = NewCluster(ClusterConfig{Binary: bin, Dir: r.dir, KeysFile: keysFile, AdminToken: r.token}, r.net); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cluster.Close) // before net.Close
	for i := range r.cluster.Size() {
		if err := r.cluster.Start(i); err != nil {
			t.Fatal(err)
		}
	}
	r.healthy(t, "three nodes with one leader")
	return r
}

// healthy waits until the cluster is healthy, and fails the test at
// once if a node crashed.
func (r *rig) healthy(t *testing.T, what string) {
	t.Helper()
	var err error
	if !poll.Wait(2*time.Minute, func() bool {
		err = r.cluster.Healthy(context.Background())
		return err == nil || errors.Is(err, ErrCrashed)
	}) || err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// counts writes a count map as "a 1, b 2", sorted.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// outcomes counts ops by kind and outcome.
func outcomes(ops []Op) string {
	m := map[string]int{}
	for _, op := range ops {
		switch {
		case op.Input.Kind == Read && op.Output.Value == "":
			m["read 404"]++
		case op.Input.Kind == Read:
			m["read"]++
		default:
			m[op.Input.Kind.String()+" "+op.Output.Result.String()]++
		}
	}
	return counts(m)
}
