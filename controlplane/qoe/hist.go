package qoe

import (
	"math"
	"slices"
)

// Startup times are counted in a fixed log-bucket histogram: bin 0
// holds the times under 1 ms, and bin i ≥ 1 the times in
// [2^((i-1)/binsPerOctave), 2^(i/binsPerOctave)) ms, up to
// events.MaxStartupMS (ten minutes, bin 154). A quantile is reported as
// the geometric middle of the bin holding the sample of its rank, so it
// is within a factor 2^(1/16) of that sample: StartupErrorBound, 4.4 %.
// A histogram keeps only its non-empty bins, sorted, so a key that saw
// three startups in a minute costs three bins, never a sample list.
const (
	binsPerOctave = 8
	maxBin        = 155 // past 2^(154/8) ms, 10.6 minutes
)

// StartupErrorBound is the largest relative error of a reported startup
// quantile against the startup time of the rank it names (for times of
// 1 ms and more): half a bin of the histogram, 2^(1/16) - 1.
const StartupErrorBound = 0.04427378242741384

type binCount struct {
	bin uint8
	n   uint32
}

// hist is a sparse histogram of startup times: its non-empty bins in
// increasing order.
type hist []binCount

// binOf returns the bin of a startup time in ms.
func binOf(ms float64) uint8 {
	if !(ms >= 1) { // and NaN
		return 0
	}
	b := int(math.Floor(binsPerOctave*math.Log2(ms))) + 1
	return uint8(min(b, maxBin-1))
}

// binValue is the startup time a bin stands for: the geometric middle of
// its bounds, and 0.5 ms for bin 0.
func binValue(bin uint8) float64 {
	if bin == 0 {
		return 0.5
	}
	return math.Exp2((float64(bin) - 0.5) / binsPerOctave)
}

// add counts n samples in bin.
func (h *hist) add(bin uint8, n uint32) {
	i, found := slices.BinarySearchFunc(*h, bin, func(c binCount, b uint8) int { return int(c.bin) - int(b) })
	if found {
		(*h)[i].n += n
		return
	}
	*h = slices.Insert(*h, i, binCount{bin, n})
}

// sub takes o's counts off h, which holds them, and drops the bins it
// empties.
func (h *hist) sub(o hist) {
	for _, c := range o {
		i, found := slices.BinarySearchFunc(*h, c.bin, func(c binCount, b uint8) int { return int(c.bin) - int(b) })
		if !found {
			continue
		}
		if (*h)[i].n <= c.n {
			*h = slices.Delete(*h, i, i+1)
		} else {
			(*h)[i].n -= c.n
		}
	}
}

// quantile returns the q-quantile (0 < q ≤ 1) of the samples, the value
// of the bin holding the sample of rank ceil(q·n); 0 when it is empty.
func (h hist) quantile(q float64) float64 {
	var n uint64
	for _, c := range h {
		n += uint64(c.n)
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for _, c := range h {
		seen += uint64(c.n)
		if seen >= rank {
			return binValue(c.bin)
		}
	}
	return binValue(h[len(h)-1].bin)
}
