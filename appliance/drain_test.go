package appliance

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
)

// TestDrain covers how Drain ends: once the control plane accepted the
// draining heartbeat and no new session arrived for DrainQuiet; at
// DrainTimeout when no control plane accepts it; at once without a
// control plane. Not parallel: it times Drain, which other tests' load
// would stretch.
func TestDrain(t *testing.T) {
	tests := []struct {
		name      string
		status    int  // the control plane's answer; 0: no control plane
		wantErr   bool // cut short by the timeout
		minWait   time.Duration
		wantDrain bool // a draining heartbeat reached the control plane
	}{
		{"accepted", http.StatusNoContent, false, 300 * time.Millisecond, true},
		{"refused", http.StatusServiceUnavailable, true, time.Second, true},
		{"no control plane", 0, false, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var draining atomic.Bool
			var cps []string
			if tc.status != 0 {
				cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var hb fillcast.Heartbeat
					json.NewDecoder(r.Body).Decode(&hb)
					if hb.Health == fillcast.HealthDraining {
						draining.Store(true)
					}
					w.WriteHeader(tc.status)
				}))
				defer cp.Close()
				cps = []string{cp.URL}
			}
			a := startApplianceWith(t, t.TempDir(), 1<<20, []string{"http://127.0.0.1:1"}, func(c *Config) {
				c.ControlPlanes = cps
				c.HeartbeatInterval = time.Hour // only the draining beat is sent promptly
				c.DrainQuiet = 300 * time.Millisecond
				c.DrainTimeout = time.Second
			})
			start := time.Now()
			err := a.Drain(t.Context())
			took := time.Since(start)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Drain: %v, want error %v", err, tc.wantErr)
			}
			if took < tc.minWait || took > tc.minWait+3*time.Second {
				t.Fatalf("Drain took %s, want about %s", took, tc.minWait)
			}
			if draining.Load() != tc.wantDrain {
				t.Fatalf("draining heartbeat seen: %v, want %v", draining.Load(), tc.wantDrain)
			}
		})
	}
}

// TestDrainWaitsForNewPlayers keeps starting sessions during the drain and
// wants Drain to return only DrainQuiet after the last one. Not parallel:
// the players' pace must stay well under DrainQuiet.
func TestDrainWaitsForNewPlayers(t *testing.T) {
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	cp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer cp.Close()
	const quiet = time.Second // ten times the players' pace: a stall of a loaded machine is not a quiet period
	a := startApplianceWith(t, t.TempDir(), 1<<20, []string{o.srv.URL}, func(c *Config) {
		c.ControlPlanes = []string{cp.URL}
		c.HeartbeatInterval = time.Hour
		c.DrainQuiet, c.DrainTimeout = quiet, 20*time.Second
	})
	done := make(chan time.Time, 1)
	go func() { a.Drain(t.Context()); done <- time.Now() }()
	var last time.Time
	for range 10 { // players still steered here for a while: 10 sessions over about 1 s
		// Taken before the request: the appliance sees it later, so the
		// quiet period it counts from there is never shorter.
		last = time.Now()
		if resp, _ := get(t, a.url+signed(t, "t1")+"/master.m3u8"); resp.StatusCode != 200 {
			t.Fatalf("session during drain: %d", resp.StatusCode)
		}
		select {
		case at := <-done:
			if at.Before(last.Add(quiet)) {
				t.Fatalf("Drain returned at %s, %s after the last player, while players kept arriving", at.Format(time.StampMilli), at.Sub(last))
			}
			// The machine stalled the players for longer than the
			// quiet period: Drain rightly saw one.
			t.Logf("a stall of %s between players: Drain returned after a real quiet period", at.Sub(last))
			return
		case <-time.After(100 * time.Millisecond): // the players' pace, not a wait for a condition
		}
	}
	select {
	case at := <-done:
		if at.Sub(last) < quiet {
			t.Fatalf("Drain returned %s after the last new player, want at least %s", at.Sub(last), quiet)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after players stopped arriving")
	}
}
