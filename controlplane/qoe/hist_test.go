package qoe

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fillcast/fillcast/controlplane/events"
)

func TestStartupErrorBound(t *testing.T) {
	if got, want := StartupErrorBound, math.Exp2(1.0/(2*binsPerOctave))-1; math.Abs(got-want) > 1e-15 {
		t.Errorf("StartupErrorBound = %v, want 2^(1/16)-1 = %v", got, want)
	}
	if got := binOf(events.MaxStartupMS); got >= maxBin {
		t.Errorf("binOf(MaxStartupMS) = %d, want < %d", got, maxBin)
	}
	for ms := 1.0; ms <= events.MaxStartupMS; ms *= 1.003 {
		if v := binValue(binOf(ms)); math.Abs(v-ms)/ms > StartupErrorBound+1e-12 {
			t.Fatalf("%g ms is reported as %g: error %.4f past the bound %.4f", ms, v, math.Abs(v-ms)/ms, StartupErrorBound)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
	}{
		{"one", []float64{812}},
		{"two", []float64{800, 2100}},
		{"uniform", func() []float64 {
			var s []float64
			for i := 1; i <= 1000; i++ {
				s = append(s, float64(i))
			}
			return s
		}()},
		{"lognormal", func() []float64 {
			r := rand.New(rand.NewPCG(1, 2))
			var s []float64
			for range 5000 {
				s = append(s, min(math.Exp(7+0.8*r.NormFloat64()), events.MaxStartupMS))
			}
			return s
		}()},
		{"sub-millisecond", []float64{0.2, 0.3, 0.4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hist
			for _, s := range tt.samples {
				h.add(binOf(s), 1)
			}
			sorted := slices.Sorted(slices.Values(tt.samples))
			for _, q := range []float64{0.5, 0.95, 1} {
				rank := int(math.Ceil(q * float64(len(sorted))))
				want := sorted[rank-1]
				got := h.quantile(q)
				if want < 1 {
					if got != 0.5 {
						t.Errorf("q%g = %g, want 0.5 for times under 1 ms", q, got)
					}
					continue
				}
				if math.Abs(got-want)/want > StartupErrorBound+1e-12 {
					t.Errorf("q%g = %g, want %g within %.1f%%", q, got, want, 100*StartupErrorBound)
				}
			}
		})
	}
	var h hist
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %g, want 0", got)
	}
	for _, b := range []uint8{20, 7, 14, 0, 7, 20, 20} {
		h.add(b, 1)
	}
	if want := (hist{{0, 1}, {7, 2}, {14, 1}, {20, 3}}); !slices.Equal(h, want) {
		t.Errorf("hist %v, want %v", h, want)
	}
	h.sub(hist{{7, 2}, {20, 1}, {0, 1}})
	if want := (hist{{14, 1}, {20, 2}}); !slices.Equal(h, want) {
		t.Errorf("after sub: %v, want %v", h, want)
	}
}
