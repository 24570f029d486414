package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast/controlplane/events"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// leader is a single-node state that always leads: commands go straight
// into a real FSM, as raft applies them on a cluster of one.
type leader struct {
	f     *fsm.FSM
	index atomic.Uint64
}

func (l *leader) IsLeader() bool { return true }

func (l *leader) Apply(_ context.Context, c fsm.Command) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if r := l.f.Apply(&raft.Log{Index: l.index.Add(1), Data: b}); r != nil {
		return r.(error)
	}
	return nil
}

// stored is a ready title of size bytes as the catalog stores it: with
// its file list's summary, no files.
func stored(t *testing.T, id string, size int64) *fillcast.Title {
	t.Helper()
	title := &fillcast.Title{ID: id, Name: "x", Status: "ready", Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 1}}}
	_, sum, err := filelist.Encode([]fillcast.File{{Path: "720p/seg-00001.m4s", Size: size}})
	if err != nil {
		t.Fatal(err)
	}
	sum.SetOn(title)
	return title
}

// passes is how many passes p's fillcast_planner_pass_seconds counts.
func passes(t *testing.T, p *Planner) uint64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "fillcast_planner_pass_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no fillcast_planner_pass_seconds")
	return 0
}

// newPlanner returns a planner over a real FSM that tells it of catalog
// changes, as the control plane wires them.
func newPlanner(t *testing.T, cfg Config) (*Planner, *leader) {
	t.Helper()
	var p *Planner
	node := &leader{}
	node.f = fsm.New(func(c fsm.Command) {
		if p != nil {
			p.CatalogChanged(c)
		}
	})
	var err error
	if p, err = New(cfg, node, node.f, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return p, node
}

func TestPlansFlashAndStorage(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	p, node := newPlanner(t, Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	must := func(c fsm.Command) {
		t.Helper()
		if err := node.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	must(fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}})
	const titles, size = 20, 1000
	for i := range titles {
		must(fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: fmt.Sprintf("t%02d", i), Name: "x", Status: "ready",
			Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 1}},
			Files:      []fillcast.File{{Path: "720p/seg-00001.m4s", Size: size}}}})
	}
	apps := []fsm.Appliance{
		{ID: "flash1", Site: "isp1", Profile: "flash", URL: "http://f:1", CapacityBytes: 4 * size}, // 90 % of it is planned: 3 titles,
		{ID: "store1", Site: "isp1", Profile: "storage", URL: "http://s:1", CapacityBytes: 100 * size},
	}
	for _, a := range apps {
		must(registered(&a))
		must(fsm.Command{Op: fsm.OpPutAppliance, Appliance: &a})
	}
	// t05, t06 and t07 are the most watched.
	for _, a := range apps {
		bytes := map[string]int64{}
		if a.Profile == "flash" {
			bytes = map[string]int64{"t05": 90 * size, "t06": 80 * size, "t07": 70 * size, "t01": size}
		}
		p.Observe(fleet.Beat{ID: a.ID, Seen: now, Beat: fillcast.Heartbeat{Site: "isp1", Profile: a.Profile, URL: a.URL, Health: "ok"}})
		served(t, p, "isp1", bytes)
	}
	if err := p.PlanAll(ctx); err != nil {
		t.Fatal(err)
	}
	var flash, store *fsm.Manifest
	node.f.Read(func(s *fsm.State) { flash, store = s.Manifests["flash1"], s.Manifests["store1"] })
	if flash == nil || store == nil {
		t.Fatal("no manifests written")
	}
	if got := fmt.Sprint(flash.Titles); got != "[t05 t06 t07]" {
		t.Errorf("flash plan = %s, want the three most watched", got)
	}
	if len(store.Titles) != titles {
		t.Errorf("storage plan holds %d titles, want the whole catalog (%d)", len(store.Titles), titles)
	}
	// Planning again with nothing changed writes nothing.
	if err := p.PlanAll(ctx); err != nil {
		t.Fatal(err)
	}
	node.f.Read(func(s *fsm.State) {
		if s.Manifests["flash1"].Version != 1 || s.Manifests["store1"].Version != 1 {
			t.Errorf("versions moved without a change: %d %d", s.Manifests["flash1"].Version, s.Manifests["store1"].Version)
		}
	})
	if got := passes(t, p); got != 2 {
		t.Errorf("fillcast_planner_pass_seconds counts %d passes, want 2", got)
	}
	// A title's files change (a new list digest, ten times the bytes):
	// the planner sees the stored summary, not the files, and the next
	// plan no longer fits it on the flash appliance.
	must(fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t06", Name: "x", Status: "ready",
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 1}},
		Files:      []fillcast.File{{Path: "720p/seg-00001.m4s", Size: 5 * size}, {Path: "720p/seg-00002.m4s", Size: 5 * size}}}})
	if err := p.PlanAll(ctx); err != nil {
		t.Fatal(err)
	}
	node.f.Read(func(s *fsm.State) { flash = s.Manifests["flash1"] })
	if slices.Contains(flash.Titles, "t06") || !slices.Contains(flash.Titles, "t05") || flash.Version != 2 {
		t.Errorf("flash plan after t06 grew to %d bytes: %v (version %d), want t05 kept and t06 dropped", 10*size, flash.Titles, flash.Version)
	}
	// A silent appliance keeps its plan for LiveFor, then drops out of
	// planning (its manifest stays as it was).
	now = now.Add(time.Hour)
	p.Observe(fleet.Beat{ID: "store1", Seen: now, Beat: fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://s:1", Health: "ok"}})
	served(t, p, "isp1", map[string]int64{"t01": 500 * size})
	if err := p.PlanAll(ctx); err != nil {
		t.Fatal(err)
	}
	node.f.Read(func(s *fsm.State) {
		if s.Manifests["flash1"].Version != flash.Version {
			t.Errorf("a silent appliance was re-planned")
		}
	})
}

func TestPlaybackStartsCount(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	node := &leader{f: fsm.New(nil)}
	p, err := New(Config{Now: func() time.Time { return now }}, node, node.f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	node.Apply(ctx, fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}})
	title := stored(t, "t1", 1000)
	node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: title})
	p.CatalogChanged(fsm.Command{Op: fsm.OpPutTitle, Title: title})
	play := func(id, site string) events.Event {
		return events.Event{ID: id, User: "p1", Title: "t1", Type: events.TypePlay, Site: site, TS: time.Now()}
	}
	p.Handle(1, "viewer", events.AppendRecord(nil, []events.Event{play("e1", "isp1"), play("e2", "nowhere")})) // unknown site: ignored
	f := p.Tracker().Forecast("eu", now)
	if len(f) != 1 || f[0].Title != "t1" || f[0].Views <= 0 {
		t.Errorf("forecast after one start = %+v", f)
	}
	// The same message delivered again counts once.
	p.Handle(1, "viewer", events.AppendRecord(nil, []events.Event{play("e1", "isp1")}))
	if again := p.Tracker().Forecast("eu", now); again[0].Views != f[0].Views {
		t.Errorf("views after a message delivered twice = %v, want %v", again[0].Views, f[0].Views)
	}
}

// TestOwnClock: heartbeats are timed by the planner's clock, whatever
// the fleet stamped them with, so a planner on a compressed clock keeps
// an appliance alive and decays its viewing on that clock; with Off, Run
// writes no plan.
func TestOwnClock(t *testing.T) {
	sim := time.Date(2026, 1, 5, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		off   bool
		plans bool
	}{
		{"planning", false, true},
		{"off", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, node := newPlanner(t, Config{Now: func() time.Time { return sim }, Off: tt.off, Every: time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			node.Apply(ctx, fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}})
			node.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "x", Status: "ready",
				Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Bandwidth: 1}}, Files: []fillcast.File{{Path: "a.m4s", Size: 1000}}}})
			s1 := &fsm.Appliance{ID: "s1", Site: "isp1", Profile: "storage", URL: "http://s:1", CapacityBytes: 1e6}
			node.Apply(ctx, registered(s1))
			node.Apply(ctx, fsm.Command{Op: fsm.OpPutAppliance, Appliance: s1})
			// The fleet's wall-clock stamp is months away from the
			// simulated time: it must not matter.
			p.Observe(fleet.Beat{ID: "s1", Seen: time.Now(), Beat: fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://s:1",
				Health: "ok"}})
			served(t, p, "isp1", map[string]int64{"t1": 3000})
			if f := p.Tracker().Forecast("eu", sim); len(f) != 1 || math.Abs(f[0].Views-3) > 1e-6 {
				t.Errorf("forecast at the simulated time = %+v, want t1 with 3 views, undecayed", f)
			}
			done := make(chan struct{})
			go func() { p.Run(ctx); close(done) }()
			// A planner that plans does so within a few periods of 1 ms;
			// one that is off gets 100 of them to prove it stays quiet.
			wait := 5 * time.Second
			if !tt.plans {
				wait = 100 * time.Millisecond
			}
			deadline := time.Now().Add(wait)
			var planned bool
			for time.Now().Before(deadline) && !planned {
				node.f.Read(func(s *fsm.State) { planned = s.Manifests["s1"] != nil })
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			if planned != tt.plans {
				t.Errorf("storage appliance planned = %v, want %v", planned, tt.plans)
			}
		})
	}
}

// registered is the registration an operator makes before appliance a
// may heartbeat and enter the registry.
func registered(a *fsm.Appliance) fsm.Command {
	return fsm.Command{Op: fsm.OpRegisterAppliance, Registration: &fsm.Registration{ID: a.ID, Site: a.Site, Profile: a.Profile,
		URLs: []string{a.URL}, CredentialHash: auth.HashSecret(a.ID)}}
}

// served hands the planner an appliance's usage summary from site, as
// the event stream would, at the next sequence, and returns the message.
func served(t *testing.T, p *Planner, site string, bytes map[string]int64) []byte {
	t.Helper()
	u := fillcast.Usage{Appliance: "a", Site: site, ID: "a-1", Start: time.Now().Add(-10 * time.Second), End: time.Now()}
	for title, n := range bytes {
		u.Titles = append(u.Titles, fillcast.UsageRow{Title: title, Rendition: "720p", Requests: 1, Bytes: n, Status2xx: 1})
	}
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	_, seq := p.Position()
	p.Handle(seq+1, "usage", b)
	return b
}
