package popularity

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	for seed := range uint64(10) {
		r := rand.New(rand.NewPCG(seed, 5))
		src := newTracker(t, Config{})
		for i := range 40 {
			ti := Title{ID: fmt.Sprintf("t%d", i), Size: gib + r.Int64N(gib)}
			if i%7 == 0 {
				ti.Release = t0.Add(time.Duration(r.IntN(48)) * time.Hour)
			}
			if err := src.AddTitle(ti); err != nil {
				t.Fatal(err)
			}
		}
		for _, o := range randomObservations(r, 300, 45) {
			o.At = o.At.Add(-7 * 24 * time.Hour) // all in the clock's past
			if err := src.Observe(o); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := src.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		dst := newTracker(t, Config{})
		if err := dst.Restore(snap); err != nil {
			t.Fatalf("seed %d: Restore: %v", seed, err)
		}
		for _, region := range []string{"eu", "us"} {
			at := t0.Add(12 * time.Hour)
			want, got := src.Forecast(region, at), dst.Forecast(region, at)
			if len(got) != len(want) {
				t.Fatalf("seed %d %s: %d scores after restore, want %d", seed, region, len(got), len(want))
			}
			for i := range want {
				if got[i].Title != want[i].Title || got[i].Boosted != want[i].Boosted ||
					math.Abs(got[i].Views-want[i].Views) > 1e-9*want[i].Views {
					t.Errorf("seed %d %s rank %d: got %+v, want %+v", seed, region, i, got[i], want[i])
				}
			}
		}
		again, err := dst.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, snap) {
			t.Errorf("seed %d: snapshot of the restored tracker differs", seed)
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
	}{
		{"not json", `{`},
		{"wrong version", `{"version":2,"at":"2026-11-20T00:00:00Z"}`},
		{"title without size", `{"version":1,"at":"2026-11-20T00:00:00Z","titles":[{"id":"a"}]}`},
		{"title twice", `{"version":1,"at":"2026-11-20T00:00:00Z","titles":[{"id":"a","size":1},{"id":"a","size":1}]}`},
		{"region without name", `{"version":1,"at":"2026-11-20T00:00:00Z","regions":[{"region":"","views":[]}]}`},
		{"negative bytes", `{"version":1,"at":"2026-11-20T00:00:00Z","regions":[{"region":"eu","views":[{"title":"a","bytes":-1}]}]}`},
		{"entry twice", `{"version":1,"at":"2026-11-20T00:00:00Z","regions":[{"region":"eu","views":[{"title":"a","bytes":1},{"title":"a","bytes":1}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(t, Config{}, Title{ID: "keep", Size: 1})
			if err := tr.Observe(Observation{Region: "eu", Title: "keep", Bytes: 1, At: t0}); err != nil {
				t.Fatal(err)
			}
			err := tr.Restore([]byte(tt.in))
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("Restore = %v, want ErrBadInput", err)
			}
			if got := views(tr.Forecast("eu", t0), "keep"); got != 1 {
				t.Errorf("state changed by a refused restore: views of keep = %v", got)
			}
		})
	}
}

// FuzzRestore: any input is refused or restores a state whose snapshot
// restores to the same snapshot.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"version":1,"at":"2026-11-20T00:00:00Z","titles":[{"id":"a","size":10,"release":"2026-11-21T00:00:00Z"}],"regions":[{"region":"eu","views":[{"title":"a","bytes":5,"starts":1}]}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := newTracker(t, Config{})
		if err := tr.Restore(data); err != nil {
			return
		}
		for _, r := range tr.Regions() {
			for _, s := range tr.Forecast(r, t0) {
				if math.IsNaN(s.Views) || s.Views < 0 {
					t.Fatalf("forecast %+v from restored %q", s, data)
				}
			}
		}
		snap, err := tr.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		tr2 := newTracker(t, Config{})
		if err := tr2.Restore(snap); err != nil {
			t.Fatalf("own snapshot refused: %v\n%s", err, snap)
		}
	})
}
