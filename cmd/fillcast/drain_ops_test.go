package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/internal/poll"
)

// heartbeats is a control plane that records heartbeats and plays
// steering: it stops sending new players to an appliance that reports
// draining.
type heartbeats struct {
	mu       sync.Mutex
	health   []string
	draining bool
}

func (h *heartbeats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var hb fillcast.Heartbeat
	if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	h.mu.Lock()
	h.health = append(h.health, hb.Health)
	if hb.Health == fillcast.HealthDraining {
		h.draining = true
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *heartbeats) steersHere() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.health) > 0 && !h.draining
}

// TestDrainStopsNewPlayers sends SIGTERM while new players keep arriving:
// the appliance must report draining, keep serving until steering (the
// fake control plane) stops sending players and the quiet period has
// passed, then exit 0.
func TestDrainStopsNewPlayers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := fillcastBinary(t)
	e := newOpsEnv(t, 1<<20)
	cp := &heartbeats{}
	cpSrv := httptest.NewServer(cp)
	defer cpSrv.Close()
	const quiet = 1500 * time.Millisecond
	p := startApplianceProc(t, bin, e, "--controlplane", cpSrv.URL, "--heartbeat", "100ms",
		"--drain-quiet", quiet.String(), "--drain-timeout", "20s")
	poll.Until(t, 10*time.Second, "a first heartbeat", cp.steersHere)

	p.cmd.Process.Signal(syscall.SIGTERM)
	// New players start sessions for as long as steering sends them here.
	var sessions int
	var lastSession time.Time
	for cp.steersHere() {
		if code, _ := httpGet(t, "http://"+p.addr+e.path("master.m3u8")); code != 200 {
			t.Fatalf("new player during drain: %d", code)
		}
		sessions++
		lastSession = time.Now()
	}
	if sessions == 0 {
		lastSession = time.Now()
	}
	// Players already watching keep getting segments while it drains.
	if code, b := httpGet(t, "http://"+p.addr+e.path("720p/seg-00001.m4s")); code != 200 || !bytes.Equal(b, e.seg) {
		t.Fatalf("segment for a watching player during drain: %d, %d bytes", code, len(b))
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the appliance did not exit after draining")
	}
	exitedAt := time.Now()
	if p.err != nil {
		t.Fatalf("exit: %v, want status 0", p.err)
	}
	if d := exitedAt.Sub(lastSession); d < quiet {
		t.Errorf("exited %s after the last new player, before the %s quiet period", d, quiet)
	}
	if !strings.Contains(p.stderr.String(), "drained") {
		t.Errorf("want the drain logged as complete (not timed out); stderr:\n%s", p.stderr.String())
	}
}
