package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
	"github.com/quic-go/quic-go/http3"
)

// These tests run the real binary: upgrades re-execute it, and a drain
// ends the process. It is built once per test run. They are not parallel:
// they signal and kill processes by PID, and check that PIDs are gone.

const opsKeys = "k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// fillcastBinary builds cmd/fillcast into a temporary directory once.
func fillcastBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "fillcast-bin-"); buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "fillcast"), ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "fillcast")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// logFile is a process's stderr. It is a file, not a pipe: an upgraded
// process inherits it, and exec.Cmd.Wait would otherwise wait for the
// last inheritor to exit.
type logFile struct{ f *os.File }

func (l logFile) String() string {
	b, _ := os.ReadFile(l.f.Name())
	return string(b)
}

// opsEnv is an origin with one title and a directory for an appliance.
type opsEnv struct {
	dir, keysFile, origin string
	keys                  *auth.Keys
	seg                   []byte
}

func newOpsEnv(t *testing.T, segBytes int) *opsEnv {
	t.Helper()
	e := &opsEnv{dir: t.TempDir()}
	e.keysFile = filepath.Join(e.dir, "keys")
	if err := os.WriteFile(e.keysFile, []byte(opsKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.keys, err = auth.LoadKeys(e.keysFile); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(e.dir, "origin")
	e.seg = make([]byte, segBytes)
	rand.Read(e.seg)
	for p, b := range map[string][]byte{"t1/720p/seg-00001.m4s": e.seg, "t1/master.m3u8": []byte("#EXTM3U\n")} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ocfg := origin.DefaultConfig()
	ocfg.Root = root
	o, err := origin.New(ocfg, origin.Deps{Keys: e.keys, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	e.origin = srv.URL
	return e
}

func (e *opsEnv) path(object string) string {
	return e.keys.SignPath("t1", time.Now().Add(time.Hour), netip.Prefix{}) + "/" + object
}

// applianceProc is a running appliance binary (and, after upgrades, its
// successors, found through the PID file).
type applianceProc struct {
	cmd     *exec.Cmd
	stderr  logFile
	pidFile string
	addr    string
	exited  chan struct{}
	err     error
}

func startApplianceProc(t *testing.T, bin string, e *opsEnv, extra ...string) *applianceProc {
	t.Helper()
	return startApplianceProcAt(t, bin, e, freeLoopback(t), extra...)
}

// startApplianceProcAt is startApplianceProc listening on addr, for an
// appliance registered with its URL before it starts.
func startApplianceProcAt(t *testing.T, bin string, e *opsEnv, addr string, extra ...string) *applianceProc {
	t.Helper()
	lf, err := os.Create(filepath.Join(e.dir, "appliance.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	p := &applianceProc{stderr: logFile{lf}, pidFile: filepath.Join(e.dir, "fillcast.pid"),
		addr: addr, exited: make(chan struct{})}
	args := append([]string{"appliance", "--id", "a1", "--site", "s1", "--http", p.addr,
		"--cache-dir", filepath.Join(e.dir, "cache"), "--mem-bytes", "0", "--disk-bytes", "1GiB",
		"--upstream", e.origin, "--token-keys", e.keysFile, "--pid-file", p.pidFile,
		"--upgrade-timeout", "20s", "--log-level", "debug", "--admin-token", applianceAdmin}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = lf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		// Stop whatever process is live now, then the first one.
		if pid := p.livePID(); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("appliance stderr:\n%s", p.stderr.String())
		}
	})
	p.waitPID(t, p.cmd.Process.Pid)
	return p
}

// startH3ApplianceProc starts an appliance with HTTP/3 (and TLS) on an
// origin whose segment has segBytes.
func startH3ApplianceProc(t *testing.T, segBytes int, extra ...string) (*opsEnv, *h3test.Cert, *applianceProc) {
	t.Helper()
	e := newOpsEnv(t, segBytes)
	cert, err := h3test.WriteCert(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--h3", "--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile}, extra...)
	return e, cert, startApplianceProc(t, fillcastBinary(t), e, args...)
}

// waitFirstExit waits until the first process has exited, with status 0.
func (p *applianceProc) waitFirstExit(t *testing.T, d time.Duration, when string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("the first process did not exit %s", when)
	}
	if p.err != nil {
		t.Errorf("first process: %v, want exit status 0", p.err)
	}
}

// livePID reads the PID file.
func (p *applianceProc) livePID() int {
	b, err := os.ReadFile(p.pidFile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// waitPID polls until the PID file names pid.
func (p *applianceProc) waitPID(t *testing.T, pid int) {
	t.Helper()
	poll.Until(t, 30*time.Second, fmt.Sprintf("PID file naming %d", pid), func() bool { return p.livePID() == pid })
}

// alive reports whether pid runs. A process that exited but was not yet
// reaped (a zombie: upgraded processes are re-parented to PID 1, which may
// reap late) counts as gone.
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

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	return clientGet(t, http.DefaultClient, url)
}

// TestUpgradeFinishesInFlight starts a long segment download (HTTP/1.1
// over TLS), reads part of it, upgrades (SIGHUP) and only then reads the
// rest: the old process must finish that response with the right bytes
// while the new one, which inherited the TCP listener and opened its own
// HTTP/3 socket on the same port, serves new requests; then the old one exits and HTTP/3 is still served.
func TestUpgradeFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e, cert, p := startH3ApplianceProc(t, 24<<20)
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientTLS()}}
	url := "https://" + p.addr + e.path("720p/seg-00001.m4s")
	if code, b := clientGet(t, h1, url); code != 200 || !bytes.Equal(b, e.seg) {
		t.Fatalf("warm-up GET: %d, %d bytes", code, len(b))
	}
	h3get := func(when string) {
		tr := &http3.Transport{TLSClientConfig: cert.ClientTLS()}
		defer tr.Close()
		c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		if code, b := clientGet(t, c, "https://"+p.addr+e.path("master.m3u8")); code != 200 || string(b) != "#EXTM3U\n" {
			t.Fatalf("HTTP/3 GET %s: %d %q", when, code, b)
		}
	}
	h3get("before the upgrade")

	// A slow player: one connection, read 64 KiB, then pause.
	raw, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctls := cert.ClientTLS()
	ctls.ServerName = "127.0.0.1"
	conn := tls.Client(raw, ctls)
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", e.path("720p/seg-00001.m4s"))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}

	oldPID := p.cmd.Process.Pid
	p.cmd.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the new process to become ready", func() bool {
		pid := p.livePID()
		return pid != 0 && pid != oldPID
	})
	newPID := p.livePID()
	// New connections are served (by the new process: the old one has
	// stopped accepting), over TCP and over HTTP/3.
	if code, b := clientGet(t, h1, "https://"+p.addr+e.path("master.m3u8")); code != 200 || string(b) != "#EXTM3U\n" {
		t.Fatalf("GET after upgrade: %d %q", code, b)
	}
	h3start := time.Now()
	h3get("while the old process drains")
	t.Logf("HTTP/3 GET while both processes hold a socket on the port: %s", time.Since(h3start))
	if !alive(oldPID) {
		t.Fatal("the old process exited with a response in flight")
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("in-flight response cut: %v after %d bytes", err, len(head)+len(rest))
	}
	if got := append(head, rest...); !bytes.Equal(got, e.seg) {
		t.Fatalf("in-flight response: got %d bytes, want the %d-byte segment", len(got), len(e.seg))
	}
	p.waitFirstExit(t, 30*time.Second, "after its last response")
	if !alive(newPID) {
		t.Fatal("the new process is not running")
	}
	h3get("after the old process exited")
}

// applianceAdmin is the admin token the test appliances are started with,
// for their /v1/status and /admin/ routes.
const applianceAdmin = "local"

// statusGet GETs an appliance's /v1/status at base with its admin token.
func statusGet(t *testing.T, c *http.Client, base string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+applianceAdmin)
	return clientDo(t, c, req)
}

func clientGet(t *testing.T, c *http.Client, url string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return clientDo(t, c, req)
}

func clientDo(t *testing.T, c *http.Client, req *http.Request) (int, []byte) {
	t.Helper()
	url := req.URL.String()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// TestUpgradeBrokenBinaryKeepsOld replaces the binary with one that fails
// at start-up and sends SIGHUP: the old process must keep serving and
// stay in the PID file. A good binary afterwards upgrades normally.
func TestUpgradeBrokenBinaryKeepsOld(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	good := fillcastBinary(t)
	e := newOpsEnv(t, 1<<20)
	bin := filepath.Join(e.dir, "fillcast")
	copyFile(t, good, bin)
	p := startApplianceProc(t, bin, e)
	oldPID := p.cmd.Process.Pid
	url := "http://" + p.addr + e.path("720p/seg-00001.m4s")

	broken := filepath.Join(e.dir, "broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho 'broken build' >&2\nexit 3\n"), 0o755)
	os.Rename(broken, bin)
	p.cmd.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the failed upgrade to be logged", func() bool {
		return strings.Contains(p.stderr.String(), "did not become ready")
	})
	if got := p.livePID(); got != oldPID {
		t.Fatalf("PID file: got %d, want the old process %d", got, oldPID)
	}
	for range 3 {
		if code, b := httpGet(t, url); code != 200 || !bytes.Equal(b, e.seg) {
			t.Fatalf("GET after the failed upgrade: %d, %d bytes", code, len(b))
		}
	}

	copyFile(t, good, bin)
	p.cmd.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the good upgrade", func() bool {
		pid := p.livePID()
		return pid != 0 && pid != oldPID
	})
	if code, _ := httpGet(t, url); code != 200 {
		t.Fatalf("GET after the good upgrade: %d", code)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the old process did not exit after the good upgrade")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
