package appliance

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane"
	"github.com/fillcast/fillcast/controlplane/api"
	"github.com/fillcast/fillcast/controlplane/client"
	"github.com/fillcast/fillcast/internal/leakcheck"
	"github.com/fillcast/fillcast/internal/poll"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestStartStopLeavesNothing starts a control-plane node and an appliance
// that heartbeats to it and polls its manifest, and stops both, 20 times
// in this process on the same directories: no goroutine is left behind.
func TestStartStopLeavesNothing(t *testing.T) {
	cpDir, cacheDir := t.TempDir(), t.TempDir()
	o := startOrigin(t)
	o.put(t, "t1/master.m3u8", []byte("#EXTM3U\n"))
	before := leakcheck.Baseline()
	for round := range 20 {
		cpURL, stopCP := startControlPlane(t, cpDir)
		a := startApplianceWith(t, cacheDir, 1<<20, []string{o.srv.URL}, func(c *Config) {
			c.ControlPlanes = []string{cpURL}
			c.HeartbeatInterval, c.FillPoll = 50*time.Millisecond, 50*time.Millisecond
			c.AdvertiseURL = "http://a1.test:8080"
		})
		ops, err := client.New(client.Config{URLs: []string{cpURL}}, client.Deps{Token: "adm"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if round == 0 {
			if err := ops.Do(ctx, "PUT", "/v1/sites/s1", fillcast.Site{Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}, nil); err != nil {
				t.Fatal(err)
			}
		}
		// Registered with the URL it advertises: it heartbeats with the
		// admin key, which the registration binds too.
		reg := api.Registration{Site: "s1", Profile: "storage", URLs: []string{"http://a1.test:8080"}}
		if err := ops.Do(ctx, "PUT", "/v1/appliances/a1", reg, nil); err != nil {
			t.Fatal(err)
		}
		// Real work: a heartbeat seen, a manifest of this round fetched,
		// a segment served.
		poll.Until(t, 10*time.Second, "the appliance in the fleet", func() bool {
			var fleet []api.ApplianceView
			return ops.Do(ctx, "GET", "/v1/fleet", nil, &fleet) == nil && len(fleet) == 1 && fleet[0].Live
		})
		// The planner writes manifests too: this one comes after its.
		var version uint64
		poll.UntilNil(t, 10*time.Second, "a manifest written", func() error {
			m, _, err := ops.Manifest(ctx, "a1", "")
			if err == nil {
				version = m.Version + 1
				err = ops.Do(ctx, "PUT", "/v1/appliances/a1/manifest", map[string]any{"version": version, "titles": []string{}}, nil)
			}
			return err
		})
		poll.Until(t, 10*time.Second, "this round's manifest on the appliance", func() bool {
			st := a.Status().(Status)
			return st.Plan != nil && st.Plan.ManifestVersion >= version
		})
		if resp, _ := get(t, a.url+signed(t, "t1")+"/master.m3u8"); resp.StatusCode != 200 {
			t.Fatalf("round %d: master playlist: %s", round, resp.Status)
		}
		ops.Close()
		a.stop()
		stopCP()
	}
	leakcheck.VerifyNone(t, before)
}

// startControlPlane runs a one-node control plane on dir until the
// returned function stops it.
func startControlPlane(t *testing.T, dir string) (string, func()) {
	t.Helper()
	return startControlPlaneWith(t, controlplane.Config{ID: "n1", DataDir: dir, Bootstrap: true})
}

// startControlPlaneWith starts a node of cfg on loopback addresses of its
// own, and returns its URL and its stop.
func startControlPlaneWith(t *testing.T, cfg controlplane.Config) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raft, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.RaftAddr = raft.Addr().String()
	raft.Close()
	cfg.HTTP = ln.Addr().String()
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	n, err := controlplane.New(cfg, controlplane.Deps{AdminToken: "adm", Keys: keys(t), Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("control plane stopped before it was ready: %v", err)
	}
	scheme := "http://"
	if !cfg.TLS.IsZero() {
		scheme = "https://"
	}
	return scheme + ln.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("control plane: %v", err)
		}
	}
}
