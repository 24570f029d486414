package pertitle

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestParseSSIMStats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    float64
		frames  int
		wantErr bool
	}{
		{"two frames", "n:1 Y:0.99 U:0.99 V:0.99 All:0.990000 (20.0)\nn:2 Y:0.98 U:0.98 V:0.98 All:0.980000 (17.0)\n", 0.985, 2, false},
		{"empty", "", 0, 0, true},
		{"no All", "n:1 Y:0.99\n", 0, 0, true},
		{"out of range", "n:1 All:7\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, frames, err := ParseSSIMStats([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrNoSSIM) {
					t.Fatalf("got %v, want ErrNoSSIM", err)
				}
				return
			}
			if err != nil || math.Abs(got-tt.want) > 1e-9 || frames != tt.frames {
				t.Errorf("got %v over %d frames (%v), want %v over %d", got, frames, err, tt.want, tt.frames)
			}
		})
	}
}

func TestClips(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    float64
		n    int
		secs float64
		want string
	}{
		{20, 3, 2, "[[2.333 2] [9 2] [15.667 2]]"},
		{5, 3, 2, "[[0 5]]"},
		{6.5, 3, 2, "[[0.083 2] [2.25 2] [4.417 2]]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(Clips(tt.d, tt.n, tt.secs)); got != tt.want {
			t.Errorf("Clips(%v, %d, %v) = %s, want %s", tt.d, tt.n, tt.secs, got, tt.want)
		}
	}
}

func TestGrid(t *testing.T) {
	t.Parallel()
	got := fmt.Sprint(DefaultConfig().grid())
	if want := "[0.3 0.4 0.5 0.6 0.7 0.8 0.9 1]"; got != want {
		t.Errorf("grid = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero is defaults", Config{}, true},
		{"too many clips", Config{Clips: 50}, false},
		{"factor one", Config{MinFactor: 1}, false},
		{"huge tolerance", Config{Tolerance: 0.5}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func FuzzParseSSIMStats(f *testing.F) {
	f.Add([]byte("n:1 Y:0.99 U:0.99 V:0.99 All:0.990000 (20.0)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, n, err := ParseSSIMStats(data)
		if err == nil && (n == 0 || m < -1 || m > 1) {
			t.Fatalf("got mean %v over %d frames", m, n)
		}
	})
}

func TestSearchUpdate(t *testing.T) {
	t.Parallel()
	const top = 7
	tests := []struct {
		name           string
		ssim           map[int]float64
		wantLo, wantHi int
	}{
		{"middle passes", map[int]float64{top: 0.99, 3: 0.989}, -1, 3},
		{"middle fails", map[int]float64{top: 0.99, 3: 0.95}, 3, top},
		{"converged", map[int]float64{top: 0.99, 3: 0.989, 1: 0.98, 2: 0.9885}, 1, 2},
		{"not monotonic settles on the safe side", map[int]float64{top: 0.99, 3: 0.989, 5: 0.95}, top - 1, top},
		{"not monotonic with a pass above", map[int]float64{top: 0.99, 1: 0.989, 3: 0.95, 5: 0.9895}, 4, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := search{lo: -1, hi: top, ssim: tt.ssim}
			s.update(top, 0.002)
			if s.lo != tt.wantLo || s.hi != tt.wantHi {
				t.Errorf("got lo %d hi %d, want lo %d hi %d", s.lo, s.hi, tt.wantLo, tt.wantHi)
			}
		})
	}
}
