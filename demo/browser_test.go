package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
)

// testSamples are short, small titles: enough to list, search, play for
// ten seconds and fail over mid-play, quick to transcode on two cores.
// night-train is rated 16+, hidden from kids profiles; tiny-world, for
// kids, is 720p, so that a 480p plan has a rendition to be kept from.
var testSamples = []sample{
	{fillcast.Title{ID: "big-sky", Name: "Big Sky Country", Description: "Colour bars drift across a test-pattern prairie.",
		Genres: []string{"documentary"}, Year: 2024, Maturity: fillcast.MaturityAll}, "testsrc2=size=640x360:rate=25", 48, []string{"eng"}},
	{fillcast.Title{ID: "night-train", Name: "Night Train to Mandelbrot", Description: "A detective rides a fractal express.",
		Genres: []string{"crime"}, Year: 2023, Maturity: fillcast.Maturity16}, "smptebars=size=480x270:rate=25", 12, []string{"eng", "fra"}},
	{fillcast.Title{ID: "tiny-world", Name: "Tiny World", Description: "A short film about a very small planet.",
		Genres: []string{"animation"}, Year: 2022, Maturity: fillcast.Maturity7}, "testsrc2=size=1280x720:rate=25", 16, []string{"eng"}},
}

// killable is an appliance's listener that the test can kill and revive:
// kill closes the listening socket and every accepted connection at once,
// as when the process dies, while the appliance's Serve keeps waiting
// (a dead appliance stops nothing else in the demo); revive listens on the
// same address again.
type killable struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener // nil while dead
	// change is closed and replaced whenever ln changes or Close is
	// called, waking an Accept that waits.
	change chan struct{}
	conns  []net.Conn
	closed bool
}

func newKillable(ln net.Listener) *killable {
	return &killable{addr: ln.Addr().String(), ln: ln, change: make(chan struct{})}
}

func (k *killable) Accept() (net.Conn, error) {
	for {
		k.mu.Lock()
		ln, change, closed := k.ln, k.change, k.closed
		k.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if ln == nil {
			<-change
			continue
		}
		c, err := ln.Accept()
		k.mu.Lock()
		if err == nil && k.ln == ln && !k.closed {
			k.conns = append(k.conns, c)
			k.mu.Unlock()
			return c, nil
		}
		stale := k.ln != ln || k.closed
		k.mu.Unlock()
		if c != nil {
			c.Close()
		}
		if !stale {
			return nil, err
		}
	}
}

func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln != nil {
		k.ln.Close()
		k.ln = nil
	}
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
	close(k.change)
	k.change = make(chan struct{})
}

func (k *killable) revive() error {
	ln, err := net.Listen("tcp", k.addr)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ln = ln
	close(k.change)
	k.change = make(chan struct{})
	return nil
}

func (k *killable) Addr() net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", k.addr)
	return a
}

func (k *killable) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	close(k.change)
	if k.ln != nil {
		return k.ln.Close()
	}
	return nil
}

// TestBrowser runs the demo and drives headless Chromium through the web
// pages with web/test/browser.mjs. Signed in as the demo's premium viewer
// (FILLCAST_VIEWER): catalog, search by a misspelt word, ten seconds of
// HLS and of DASH, killing the appliance in use mid-play, the operator
// page (entering the demo's admin key, FILLCAST_ADMIN, in its key prompt;
// a rule put through the API listed and audited; squeeze tests started,
// cancelled and run to their end from its form; a read key made there; a
// revoked key) and its upload form. Then, as a
// new viewer signed up on the basic plan: a kids profile that neither
// lists nor plays a 16+ title, no rendition above the plan's 480p, and a
// second tab refused by the plan's one screen.
// Then, through the operator API with the admin token, what the pages
// and the player reported on the way (checkReported): the premium
// viewer's qoe and impression events, and CMCD seen by the appliances.
// Screenshots go to web/test-output. make test installs Chromium and the
// npm packages and sets FILLCAST_BROWSER_TESTS=require, so that there a
// missing browser fails rather than skips.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	webDir := needBrowser(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}

	d, err := newDemo(Config{Dir: t.TempDir(), HTTP: "127.0.0.1:0"}, Deps{Out: testWriter{t}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.samples = testSamples
	var mu sync.Mutex
	listeners := map[string]*killable{} // by host:port
	d.wrap = func(id string, ln net.Listener) net.Listener {
		k := newKillable(ln)
		mu.Lock()
		listeners[ln.Addr().String()] = k
		mu.Unlock()
		return k
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- d.run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil && ctx.Err() == nil {
			t.Errorf("demo: %v", err)
		}
	}()
	select {
	case <-d.ready:
	case err := <-runErr:
		t.Fatalf("demo stopped before it was ready: %v", err)
	case <-time.After(8 * time.Minute):
		t.Fatal("demo not ready within 8 minutes")
	}

	upload := filepath.Join(t.TempDir(), "upload.mp4")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", upload).CombinedOutput(); err != nil {
		t.Fatalf("render the upload: %v: %s", err, b)
	}
	out := filepath.Join(webDir, "test-output")
	cmd := exec.CommandContext(ctx, "node", filepath.Join(webDir, "test", "browser.mjs"))
	cmd.Dir = webDir
	var premium viewer
	for _, v := range d.viewers {
		if v.Plan == "premium" {
			premium = v
		}
	}
	cmd.Env = append(os.Environ(), "FILLCAST_URL="+d.sys.ControlPlaneURL, "FILLCAST_OUT="+out, "FILLCAST_UPLOAD="+upload, "FILLCAST_ADMIN="+d.token,
		"FILLCAST_VIEWER="+premium.Email+" "+premium.Password)
	cmd.Stderr = testWriter{t}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log("browser: " + line)
		verb, host, _ := strings.Cut(line, " ")
		if verb != "KILL" && verb != "REVIVE" {
			continue
		}
		mu.Lock()
		k := listeners[host]
		mu.Unlock()
		switch {
		case k == nil:
			fmt.Fprintln(stdin, "no such appliance")
		case verb == "KILL":
			k.kill()
			fmt.Fprintln(stdin, "killed")
		default:
			if err := k.revive(); err != nil {
				fmt.Fprintln(stdin, err)
				continue
			}
			fmt.Fprintln(stdin, "revived")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser test failed (%v); screenshots in %s", err, out)
	}
	t.Logf("screenshots in %s", out)
	checkReported(t, ctx, d, premium)
}

// needBrowser answers the web directory, skipping the test when
// Chromium, node or the npm packages the browser tests need are missing;
// make test installs them and sets FILLCAST_BROWSER_TESTS=require, so
// that there they fail instead.
func needBrowser(t *testing.T) string {
	t.Helper()
	required := os.Getenv("FILLCAST_BROWSER_TESTS") == "require"
	webDir, _ := filepath.Abs("../web")
	for _, need := range []string{"/usr/bin/chromium", filepath.Join(webDir, "node_modules", "playwright-core"), filepath.Join(webDir, "static", "vendor", "shaka-player.compiled.js")} {
		if _, err := os.Stat(need); err != nil {
			if required {
				t.Fatalf("browser test needs %s (make test installs it): %v", need, err)
			}
			t.Skipf("browser test needs %s: run make test", need)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not found: %v", err)
	}
	return webDir
}

// reported is an event as GET /v1/ops/events answers it: the fields the
// test looks at.
type reported struct {
	ID        string  `json:"id"`
	User      string  `json:"user"`
	Type      string  `json:"type"`
	Title     string  `json:"title"`
	Appliance string  `json:"appliance"`
	Row       string  `json:"row"`
	PlayedS   float64 `json:"played_s"`
}

// qoeRow is a row of GET /v1/ops/qoe: the fields the test looks at.
type qoeRow struct {
	Key             string  `json:"key"`
	Plays           int     `json:"plays"`
	CMCDBitrateKbps float64 `json:"cmcd_bitrate_kbps"`
}

// checkReported checks, through the operator API with the demo's admin
// token, what the browser's pages and player reported while the browser
// test ran as the premium viewer v (events.js, player.js):
//   - GET /v1/ops/events?type=qoe&user={profile} has a qoe event of one
//     of v's profiles for a sample title, naming the appliance played
//     from and more than zero seconds played;
//   - GET /v1/ops/events?type=impression&user={profile} has an
//     impression of a sample title in a named row;
//   - GET /v1/ops/qoe has an appliance row whose cmcd_bitrate_kbps is
//     above zero: an appliance saw segment requests carrying CMCD (the
//     br key) from shaka-player, summed them in its usage summaries
//     (POST /v1/appliances/{id}/usage) and the control plane averaged
//     them. The basic viewer's shaka playbacks at the end of the script
//     are well inside the answer's 15-minute window.
//
// Events reach the operator routes through the event stream, and usage
// summaries every 10 s, a little after the fact, so each check polls.
func checkReported(t *testing.T, ctx context.Context, d *demo, v viewer) {
	t.Helper()
	c, done, err := d.signIn(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	var acct struct {
		Profiles []struct {
			ID string `json:"id"`
		} `json:"profiles"`
	}
	err = c.Do(ctx, http.MethodGet, "/v1/account", nil, &acct)
	done()
	if err != nil || len(acct.Profiles) == 0 {
		t.Fatalf("the profiles of %s: %+v, %v", v.Email, acct, err)
	}
	titles := map[string]bool{}
	for _, s := range testSamples {
		titles[s.title.ID] = true
	}

	// find polls GET /v1/ops/events for events of typ of v's profiles
	// until one passes ok, and returns what it saw last.
	find := func(typ string, ok func(reported) bool) (seen []reported, lastErr error) {
		var unfiltered []string // events the filters should have kept out
		cond := func() bool {
			seen, lastErr = nil, nil
			for _, p := range acct.Profiles {
				var res struct {
					Events       []reported `json:"events"`
					TotalMatched int        `json:"total_matched"`
				}
				q := url.Values{"type": {typ}, "user": {p.ID}, "limit": {"200"}}
				if err := d.sys.API.Do(ctx, http.MethodGet, "/v1/ops/events?"+q.Encode(), nil, &res); err != nil {
					lastErr = err
					return false
				}
				for _, e := range res.Events {
					if e.Type != typ || e.User != p.ID {
						if len(unfiltered) < 5 {
							unfiltered = append(unfiltered, fmt.Sprintf("%+v to ?%s", e, q.Encode()))
						}
						continue
					}
					seen = append(seen, e)
					if ok(e) {
						return true
					}
				}
			}
			return false
		}
		if err := d.sys.WaitFor(ctx, typ+" events of "+v.Email, time.Minute, cond); err != nil {
			t.Errorf("%v: the last answer had %d %s events of %s's profiles %+v (%v)", err, len(seen), typ, v.Email, seen, lastErr)
		}
		if len(unfiltered) > 0 {
			t.Errorf("GET /v1/ops/events answered events its type and user filters leave out: %s", strings.Join(unfiltered, "; "))
		}
		return seen, lastErr
	}
	qoe, _ := find("qoe", func(e reported) bool { return titles[e.Title] && e.Appliance != "" && e.PlayedS > 0 })
	t.Logf("qoe events of %s: %d", v.Email, len(qoe))
	imp, _ := find("impression", func(e reported) bool { return titles[e.Title] && e.Row != "" })
	t.Logf("impression events of %s: %d", v.Email, len(imp))

	var q struct {
		WindowS    float64  `json:"window_s"`
		Appliances []qoeRow `json:"appliances"`
	}
	var qErr error
	cmcd := func() bool {
		if qErr = d.sys.API.Do(ctx, http.MethodGet, "/v1/ops/qoe", nil, &q); qErr != nil {
			return false
		}
		for _, r := range q.Appliances {
			if r.CMCDBitrateKbps > 0 {
				return true
			}
		}
		return false
	}
	if err := d.sys.WaitFor(ctx, "an appliance that saw CMCD", time.Minute, cmcd); err != nil {
		t.Errorf("%v: GET /v1/ops/qoe answered window_s %v, appliances %+v (%v); want an appliance whose cmcd_bitrate_kbps is above 0",
			err, q.WindowS, q.Appliances, qErr)
	}
}

// testWriter sends what the demo prints to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
