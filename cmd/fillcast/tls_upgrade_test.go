package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast/appliance/h3/h3test"
	"github.com/fillcast/fillcast/appliance/tlsconf/tlstest"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/quic-go/quic-go/http3"
)

// tlsStatus GETs /v1/status over a new connection (HTTP/1.1 over TLS, or
// HTTP/3) whose TLS session cache is cache, and returns the PID that
// served it and whether the session resumed.
func tlsStatus(t *testing.T, base string, cert *h3test.Cert, h3 bool, cache tls.ClientSessionCache) (pid int, resumed bool) {
	t.Helper()
	tc := &tls.Config{RootCAs: cert.Pool, ClientSessionCache: cache}
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	if h3 {
		tr := &http3.Transport{TLSClientConfig: tc}
		defer tr.Close()
		rt = tr
	}
	req, err := http.NewRequest("GET", base+"/v1/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+applianceAdmin)
	resp, err := (&http.Client{Transport: rt, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET /v1/status (h3 %v): %v", h3, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var st struct {
		PID int `json:"pid"`
	}
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.PID == 0 || resp.TLS == nil {
		t.Fatalf("GET /v1/status (h3 %v): %d %v %.200q", h3, resp.StatusCode, err, b)
	}
	return st.PID, resp.TLS.DidResume
}

// TestTLSSessionsResumeAcrossUpgrade: a session ticket the old process
// issued (HTTP/1.1 over TLS, and HTTP/3) resumes on the process an
// upgrade started, through the ticket key file the appliance keeps in
// its cache directory by default.
func TestTLSSessionsResumeAcrossUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e, cert, p := startH3ApplianceProc(t, 1<<10)
	base := "https://" + p.addr
	oldPID := p.cmd.Process.Pid
	keyFile := filepath.Join(e.dir, "cache", "tls-ticket-keys")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("default ticket key file: %v, %v: want one, 0600", fi, err)
	}

	held := map[bool]*tlstest.HeldCache{false: {}, true: {}} // by HTTP/3
	for h3, cache := range held {
		if pid, resumed := tlsStatus(t, base, cert, h3, cache); pid != oldPID || resumed {
			t.Fatalf("h3 %v: first connection served by %d (want %d), resumed %v", h3, pid, oldPID, resumed)
		}
		poll.Until(t, 10*time.Second, "a session ticket", cache.Held)
		if pid, resumed := tlsStatus(t, base, cert, h3, cache); pid != oldPID || !resumed {
			t.Fatalf("h3 %v: second connection served by %d (want %d), resumed %v: want resumed", h3, pid, oldPID, resumed)
		}
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	poll.Until(t, 30*time.Second, "the new process to become ready", func() bool {
		pid := p.livePID()
		return pid != 0 && pid != oldPID
	})
	newPID := p.livePID()
	for h3, cache := range held {
		// Until the old process has closed its listener, it may still
		// accept a connection.
		poll.Until(t, 30*time.Second, "a connection to the new process", func() bool {
			pid, resumed := tlsStatus(t, base, cert, h3, cache)
			if pid == newPID && !resumed {
				t.Fatalf("h3 %v: the old process's ticket did not resume on the new one", h3)
			}
			return pid == newPID
		})
	}
}

// TestTLSTicketKeysFlagRefusesABadFile: a key file others can read stops
// the appliance at start, naming the flag and what to do.
func TestTLSTicketKeysFlagRefusesABadFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	e := newOpsEnv(t, 1<<10)
	cert, err := h3test.WriteCert(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(e.dir, "tickets")
	if err := os.WriteFile(keys, []byte("2026-12-07T08:00:00Z "+strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(keys, 0o644)
	out, err := exec.Command(fillcastBinary(t), "appliance", "--id", "a1", "--site", "s1", "--http", freeLoopback(t),
		"--cache-dir", filepath.Join(e.dir, "cache"), "--disk-bytes", "1GiB", "--upstream", e.origin, "--token-keys", e.keysFile,
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--tls-ticket-keys", keys).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "tls-ticket-keys") || !strings.Contains(string(out), "chmod 600") {
		t.Fatalf("appliance with a 0644 ticket key file: %v\n%s\nwant a refusal naming --tls-ticket-keys and chmod 600", err, out)
	}
	if strings.Contains(string(out), strings.Repeat("ab", 32)) {
		t.Fatalf("the refusal quotes the key:\n%s", out)
	}
}
