// Command upgrade is the zero-downtime upgrade benchmark of issue 5: vegeta
// at a fixed rate (150 req/s, keep-alive) against an appliance serving
// segments and playlists from its cache, first for a quiet "before"
// window, then for 20 s during which the appliance is upgraded 5 times
// (SIGHUP to the process named by --pid-file). Every body is checked
// against the file it should be (length and SHA-256), so a truncated or
// wrong response counts as a failure. Prints the counts and latency
// percentiles of both windows, and where the slow requests of the second
// window fall relative to the upgrades. -mem-bytes 0 runs the appliance on
// its disk tier alone (an upgraded process starts with an empty memory
// tier, so the first request for each object after an upgrade refills it).
//
//	go build -o /tmp/fillcast ./cmd/fillcast && go run ./bench/upgrade -fillcast /tmp/fillcast
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const keyLine = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

func main() {
	bin := flag.String("fillcast", "", "path to the fillcast binary")
	rate := flag.Int("rate", 150, "requests per second")
	before := flag.Duration("before", 10*time.Second, "length of the window without upgrades")
	during := flag.Duration("during", 20*time.Second, "length of the window with upgrades")
	upgrades := flag.Int("upgrades", 5, "upgrades during the second window")
	segments := flag.Int("segments", 40, "segments of -bytes each (plus 2 playlists)")
	size := flag.Int("bytes", 1_500_000, "segment size")
	mem := flag.String("mem-bytes", "512MiB", "the appliance's memory tier (0: disk tier only)")
	flag.Parse()
	if err := run(*bin, *rate, *before, *during, *upgrades, *segments, *size, *mem); err != nil {
		fmt.Fprintln(os.Stderr, "upgrade:", err)
		os.Exit(1)
	}
}

func run(bin string, rate int, before, during time.Duration, upgrades, segments, size int, mem string) error {
	if bin == "" {
		return errors.New("-fillcast BIN is required")
	}
	dir, err := os.MkdirTemp("", "fillcast-upgrade-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keysFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keysFile, []byte(keyLine), 0o600); err != nil {
		return err
	}
	keys, err := auth.LoadKeys(keysFile)
	if err != nil {
		return err
	}
	// The appliance verifies with the public keys alone.
	pubFile := filepath.Join(dir, "keys.pub")
	if err := os.WriteFile(pubFile, auth.MarshalKeyFile(keys.PublicList()), 0o644); err != nil {
		return err
	}
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "t1/720p"), 0o755)
	files := map[string][]byte{
		"t1/master.m3u8":        bytes.Repeat([]byte("#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/playlist.m3u8\n"), 20),
		"t1/720p/playlist.m3u8": bytes.Repeat([]byte("#EXTINF:4.0,\nseg-00001.m4s\n"), 40),
	}
	for i := range segments {
		b := make([]byte, size)
		rand.Read(b)
		files[fmt.Sprintf("t1/720p/seg-%05d.m4s", i+1)] = b
	}
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			return err
		}
	}

	procs := &procs{dir: dir}
	defer procs.stop()
	originAddr, appAddr := freeAddr(), freeAddr()
	if err := procs.start("origin", bin, "origin", "--root", root, "--http", originAddr); err != nil {
		return err
	}
	pidFile := filepath.Join(dir, "fillcast.pid")
	if err := procs.start("appliance", bin, "appliance", "--id", "bench", "--site", "s1", "--http", appAddr,
		"--cache-dir", filepath.Join(dir, "cache"), "--mem-bytes", mem, "--disk-bytes", "4GiB",
		"--upstream", "http://"+originAddr, "--token-keys", pubFile, "--pid-file", pidFile); err != nil {
		return err
	}
	procs.pidFile = pidFile

	prefix := keys.SignPath("t1", time.Now().Add(12*time.Hour), netip.Prefix{})
	base := "http://" + appAddr + prefix[:strings.LastIndexByte(prefix, '/')+1]
	v := &verifier{want: map[string][32]byte{}, base: &http.Transport{MaxIdleConnsPerHost: 256}}
	var segTargets, plTargets []vegeta.Target
	for p, b := range files {
		u := base + p
		v.want[u] = sha256.Sum256(b)
		t := vegeta.Target{Method: http.MethodGet, URL: u}
		if strings.HasSuffix(p, ".m4s") {
			segTargets = append(segTargets, t)
		} else {
			plTargets = append(plTargets, t)
		}
	}
	// 7 segments for every 3 playlists, the mix of players mid-stream.
	var targets []vegeta.Target
	for i := 0; i < 10*len(segTargets); i++ {
		if i%10 < 7 {
			targets = append(targets, segTargets[i%len(segTargets)])
		} else {
			targets = append(targets, plTargets[i%len(plTargets)])
		}
	}
	if !poll.Wait(30*time.Second, func() bool { return procs.livePID() > 0 }) {
		return errors.New("the appliance did not become ready within 30s")
	}
	for _, t := range append(segTargets, plTargets...) { // warm the cache
		if err := v.check(t.URL); err != nil {
			return fmt.Errorf("warm-up %s: %w", t.URL, err)
		}
	}
	fmt.Printf("upgrade bench: %d req/s, keep-alive, %d segments of %d bytes and 2 playlists (70%%/30%%), bodies checked by SHA-256\n", rate, segments, size)

	pacer := vegeta.ConstantPacer{Freq: rate, Per: time.Second}
	b := attack(v, targets, pacer, before, "before")

	var done []time.Duration
	var events []upgradeEvent
	var uerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		gap := during / time.Duration(upgrades+1)
		for i := range upgrades {
			time.Sleep(gap) // pacing the upgrades across the window, not waiting for a condition
			ev, err := procs.upgrade()
			d := ev.ready.Sub(ev.hup).Round(time.Millisecond)
			events = append(events, ev)
			if err != nil {
				uerr = fmt.Errorf("upgrade %d: %w", i+1, err)
				return
			}
			done = append(done, d)
		}
	}()
	d := attack(v, targets, pacer, during, "during")
	wg.Wait()

	fmt.Printf("\n%-8s %8s %8s %8s %10s %9s %9s %9s\n", "window", "requests", "ok", "failed", "truncated", "p50", "p99", "max")
	for _, w := range []*window{b, d} {
		fmt.Printf("%-8s %8d %8d %8d %10d %9s %9s %9s\n", w.name, w.requests, w.ok, w.failed, w.truncated,
			w.m.Latencies.P50.Round(time.Microsecond), w.m.Latencies.P99.Round(time.Microsecond), w.m.Latencies.Max.Round(time.Microsecond))
	}
	fmt.Printf("\nupgrades completed: %d of %d (SIGHUP to new process ready: %v)\n", len(done), upgrades, done)
	for e, n := range d.errors {
		fmt.Printf("  error during: %dx %s\n", n, e)
	}
	// Where the slow requests of the second window fall relative to the
	// upgrades: after SIGHUP, after the new process became ready, or
	// after the old one exited.
	slow := 50 * b.m.Latencies.P50
	fmt.Printf("requests over %s (50x the p50 before): %d before, %d during\n", slow.Round(time.Millisecond), len(b.slow(slow)), len(d.slow(slow)))
	for i, r := range d.slow(slow) {
		if i == 20 {
			break
		}
		fmt.Printf("  slow: %8s at %s\n", r.lat.Round(time.Millisecond), describe(r.at, events))
	}
	if uerr != nil {
		return uerr
	}
	if d.failed+d.truncated+b.failed+b.truncated > 0 || len(done) != upgrades {
		fmt.Println("target missed: 0 failed or truncated requests across the upgrades")
		os.Exit(2)
	}
	fmt.Println("target met: 0 failed or truncated requests across", upgrades, "upgrades")
	return nil
}

// window is the outcome of one attack.
type window struct {
	name                            string
	requests, ok, failed, truncated int
	m                               vegeta.Metrics
	errors                          map[string]int
	lat                             []timed
}

type timed struct {
	at  time.Time
	lat time.Duration
}

func (w *window) slow(over time.Duration) []timed {
	var out []timed
	for _, t := range w.lat {
		if t.lat > over {
			out = append(out, t)
		}
	}
	return out
}

// upgradeEvent is when one upgrade's steps happened.
type upgradeEvent struct{ hup, ready, oldExit time.Time }

func describe(at time.Time, evs []upgradeEvent) string {
	best := "no upgrade near"
	bestD := time.Duration(1 << 62)
	for i, e := range evs {
		for _, p := range []struct {
			name string
			t    time.Time
		}{{"SIGHUP", e.hup}, {"new ready", e.ready}, {"old exit", e.oldExit}} {
			if p.t.IsZero() {
				continue
			}
			d := at.Sub(p.t)
			if d >= -time.Second && d.Abs() < bestD.Abs() {
				bestD = d
				best = fmt.Sprintf("upgrade %d %s %+dms", i+1, p.name, d.Milliseconds())
			}
		}
	}
	return best
}

func attack(v *verifier, targets []vegeta.Target, p vegeta.Pacer, d time.Duration, name string) *window {
	w := &window{name: name, errors: map[string]int{}}
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: v, Timeout: 30 * time.Second}), vegeta.MaxBody(0))
	v.truncated.Store(0)
	for res := range atk.Attack(vegeta.NewStaticTargeter(targets...), p, d, name) {
		w.m.Add(res)
		w.lat = append(w.lat, timed{res.Timestamp, res.Latency})
		w.requests++
		switch {
		case res.Error == "" && res.Code == http.StatusOK:
			w.ok++
		default:
			w.failed++
			w.errors[fmt.Sprintf("%d %s", res.Code, res.Error)]++
		}
	}
	w.m.Close()
	w.truncated = int(v.truncated.Load())
	return w
}

// verifier is the attack's transport: it reads every body to the end and
// checks it against the file it should be, so vegeta's latency covers the
// whole body and a short or wrong body is an error.
type verifier struct {
	base      http.RoundTripper
	want      map[string][32]byte
	truncated atomic.Int64
}

var errTruncated = errors.New("body truncated or wrong")

func (v *verifier) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(h, resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(nil))
	if resp.StatusCode == http.StatusOK && (err != nil || [32]byte(h.Sum(nil)) != v.want[req.URL.String()]) {
		v.truncated.Add(1)
		return nil, fmt.Errorf("%w: %v", errTruncated, err)
	}
	return resp, nil
}

func (v *verifier) check(u string) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	resp, err := v.RoundTrip(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// procs owns the origin and the appliance (whose live process is the one
// in the PID file after upgrades).
type procs struct {
	dir     string
	pidFile string
	cmds    []*exec.Cmd
}

func (p *procs) start(name, bin string, args ...string) error {
	f, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmds = append(p.cmds, cmd)
	go cmd.Wait() // reap; the appliance's first process exits at its first upgrade
	return nil
}

func (p *procs) livePID() int {
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// upgrade sends SIGHUP to the live process and waits until the new one is
// ready (the PID file changed) and the old one has exited.
func (p *procs) upgrade() (upgradeEvent, error) {
	var ev upgradeEvent
	old := p.livePID()
	ev.hup = time.Now()
	if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
		return ev, err
	}
	if !poll.Wait(60*time.Second, func() bool { n := p.livePID(); return n != 0 && n != old }) {
		return ev, errors.New("new process not ready within 60s")
	}
	ev.ready = time.Now()
	if !poll.Wait(60*time.Second, func() bool { return !alive(old) }) {
		return ev, fmt.Errorf("old process %d did not exit within 60s", old)
	}
	ev.oldExit = time.Now()
	return ev, nil
}

func (p *procs) stop() {
	if pid := p.livePID(); pid > 0 {
		syscall.Kill(pid, syscall.SIGTERM)
		poll.Wait(40*time.Second, func() bool { return !alive(pid) })
	}
	for _, c := range p.cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
}

// alive reports whether pid runs; an exited process not yet reaped (a
// zombie: upgraded processes are re-parented to PID 1) counts as gone.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func freeAddr() string {
	port, err := h3test.FreePort()
	if err != nil {
		panic(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}
