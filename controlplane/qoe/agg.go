package qoe

// sums are what a key adds up over a minute or the window. They are
// integers, so that taking a minute off the window's totals when it
// expires leaves no rounding behind, except bitrateKbpsMS, whose only
// use is to be divided by the exact bitratePlayedMS.
type sums struct {
	plays, starts, fatal int64
	// playedMS and rebufferMS sum the qoe events' intervals, to the
	// millisecond; bitratePlayedMS sums the played ms of the events that
	// gave a bitrate, and bitrateKbpsMS their bitrate_kbps·played ms.
	playedMS, rebufferMS, bitratePlayedMS int64
	bitrateKbpsMS                         float64
	// The CMCD sums of usage summaries, each count clamped to maxCount.
	cmcdRequests, cmcdBitrateRequests, cmcdBitrateKbps, cmcdStarved int64
}

// maxCount bounds each count a usage summary adds (a trillion requests
// in ten seconds), so that no sum of the window can overflow.
const maxCount = 1 << 40

func clampCount(n int64) int64 { return min(max(n, 0), maxCount) }

func (s *sums) add(o *sums) {
	s.plays += o.plays
	s.starts += o.starts
	s.fatal += o.fatal
	s.playedMS += o.playedMS
	s.rebufferMS += o.rebufferMS
	s.bitratePlayedMS += o.bitratePlayedMS
	s.bitrateKbpsMS += o.bitrateKbpsMS
	s.cmcdRequests += o.cmcdRequests
	s.cmcdBitrateRequests += o.cmcdBitrateRequests
	s.cmcdBitrateKbps += o.cmcdBitrateKbps
	s.cmcdStarved += o.cmcdStarved
}

func (s *sums) sub(o *sums) {
	s.plays -= o.plays
	s.starts -= o.starts
	s.fatal -= o.fatal
	s.playedMS -= o.playedMS
	s.rebufferMS -= o.rebufferMS
	s.bitratePlayedMS -= o.bitratePlayedMS
	s.bitrateKbpsMS -= o.bitrateKbpsMS
	if s.bitratePlayedMS == 0 {
		s.bitrateKbpsMS = 0 // what rounding left
	}
	s.cmcdRequests -= o.cmcdRequests
	s.cmcdBitrateRequests -= o.cmcdBitrateRequests
	s.cmcdBitrateKbps -= o.cmcdBitrateKbps
	s.cmcdStarved -= o.cmcdStarved
}

// agg is a key's sums and startup histogram, over a minute or, in the
// totals, over the window.
type agg struct {
	sums
	startup hist
	// slots counts the window's minutes that hold the key (totals only):
	// the key is forgotten when the last one expires.
	slots int
}

// playCount is the key's plays: play events, or the playbacks that
// started where play events do not name the key.
func (a *agg) playCount() int64 { return max(a.plays, a.starts) }

// add counts s and, when bin ≥ 0, a startup time in bin.
func (a *agg) add(s *sums, bin int) {
	a.sums.add(s)
	if bin >= 0 {
		a.startup.add(uint8(bin), 1)
	}
}

// sub takes o, a minute's, off a.
func (a *agg) sub(o *agg) {
	a.sums.sub(&o.sums)
	a.startup.sub(o.startup)
}
