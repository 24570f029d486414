package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
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
var testSamples = []sample{
	{fillcast.Title{ID: "big-sky", Name: "Big Sky Country", Description: "Colour bars drift across a test-pattern prairie.",
		Genres: []string{"documentary"}, Year: 2024}, "testsrc2=size=640x360:rate=25", 48, []string{"eng"}},
	{fillcast.Title{ID: "night-train", Name: "Night Train to Mandelbrot", Description: "A detective rides a fractal express.",
		Genres: []string{"crime"}, Year: 2023}, "smptebars=size=480x270:rate=25", 12, []string{"eng", "fra"}},
}

// killable is an appliance's listener that the test can kill: the
// listening socket and every accepted connection close at once, as when
// the process dies, while the appliance's Serve keeps waiting (a dead
// appliance stops nothing else in the demo).
type killable struct {
	net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
	done   chan struct{}
	once   sync.Once
}

func (k *killable) Accept() (net.Conn, error) {
	c, err := k.Listener.Accept()
	k.mu.Lock()
	killed := k.killed
	if err == nil && !killed {
		k.conns = append(k.conns, c)
	}
	k.mu.Unlock()
	if !killed {
		return c, err
	}
	if c != nil {
		c.Close()
	}
	<-k.done
	return nil, net.ErrClosed
}

func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	k.Listener.Close()
	for _, c := range k.conns {
		c.Close()
	}
}

func (k *killable) Close() error {
	k.once.Do(func() { close(k.done) })
	return k.Listener.Close()
}

// TestBrowser runs the demo and drives headless Chromium through the web
// pages with web/test/browser.mjs: catalog, search by a misspelt word,
// ten seconds of HLS and of DASH, killing the appliance in use mid-play,
// the operator page and its upload form. Screenshots go to web/test-output. make test
// installs Chromium and the npm packages and sets
// FILLCAST_BROWSER_TESTS=require, so that there a missing browser fails
// rather than skips.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
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
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not found: %v", err)
	}

	d, err := newDemo(Config{Dir: t.TempDir(), HTTP: "127.0.0.1:0", Out: testWriter{t}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	d.samples = testSamples
	var mu sync.Mutex
	listeners := map[string]*killable{} // by host:port
	d.wrap = func(id string, ln net.Listener) net.Listener {
		k := &killable{Listener: ln, done: make(chan struct{})}
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
	cmd.Env = append(os.Environ(), "FILLCAST_URL="+d.cpURL, "FILLCAST_OUT="+out, "FILLCAST_UPLOAD="+upload, "FILLCAST_ADMIN="+d.token)
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
		host, ok := strings.CutPrefix(line, "KILL ")
		if !ok {
			continue
		}
		mu.Lock()
		k := listeners[host]
		mu.Unlock()
		if k == nil {
			fmt.Fprintln(stdin, "no such appliance")
			continue
		}
		k.kill()
		fmt.Fprintln(stdin, "killed")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("browser test failed (%v); screenshots in %s", err, out)
	}
	t.Logf("screenshots in %s", out)
}

// testWriter sends what the demo prints to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
