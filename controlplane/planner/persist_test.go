package planner

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fleet"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// TestPopularitySurvivesRestart: what a planner learned is saved when Run
// ends and restored by the next planner on the same file; a file that is
// not a snapshot is ignored.
func TestPopularitySurvivesRestart(t *testing.T) {
	now := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		corrupt bool
		want    int // titles forecast after the restart
	}{
		{"saved and restored", false, 1},
		{"corrupt file", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "popularity.json")
			node := &leader{f: fsm.New(nil)}
			ctx := context.Background()
			node.Apply(ctx, fsm.Command{Op: fsm.OpPutSite, Site: &fillcast.Site{ID: "isp1", Kind: "isp", Region: "eu", Prefixes: []string{"10.0.0.0/8"}}})
			cfg := Config{Now: func() time.Time { return now }, SnapshotPath: path, Off: true}
			p, err := New(cfg, node, node.f, quiet)
			if err != nil {
				t.Fatal(err)
			}
			title := stored(t, "t1", 1000)
			p.CatalogChanged(fsm.Command{Op: fsm.OpPutTitle, Title: title})
			p.Observe(fleet.Beat{ID: "s1", Beat: fillcast.Heartbeat{Site: "isp1", Profile: "storage", URL: "http://s:1", Health: "ok"}})
			stream := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			p.Reset(stream) // folding the stream created then
			usage := served(t, p, "isp1", map[string]int64{"t1": 5000})
			rctx, cancel := context.WithCancel(ctx)
			cancel()
			p.Run(rctx) // saves on the way out
			if tt.corrupt {
				os.WriteFile(path, []byte("{not json"), 0o644)
			}
			p2, err := New(cfg, node, node.f, quiet)
			if err != nil {
				t.Fatalf("New after restart: %v", err)
			}
			p2.Restore()
			f := p2.Tracker().Forecast("eu", now)
			if len(f) != tt.want {
				t.Fatalf("forecast after restart = %+v, want %d titles", f, tt.want)
			}
			if tt.want == 0 {
				return
			}
			if math.Abs(f[0].Views-5) > 1e-6 {
				t.Errorf("restored views %v, want 5", f[0].Views)
			}
			// The stream's position came back with the views: the
			// summary delivered again after the restart counts once.
			if at, seq := p2.Position(); !at.Equal(stream) || seq != 1 {
				t.Errorf("restored position %v %d, want %v 1", at, seq, stream)
			}
			p2.Handle(1, "usage", usage)
			if f := p2.Tracker().Forecast("eu", now); math.Abs(f[0].Views-5) > 1e-6 {
				t.Errorf("views after the summary came again = %v, want 5", f[0].Views)
			}
		})
	}
}
