package evict

import (
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"
)

const (
	// sketchDepth is the number of count-min rows: the estimate is the
	// least of this many counters, each hashed differently.
	sketchDepth = 4
	// sketchMinWidth is the smallest row, for tiny or unsized sketches.
	sketchMinWidth = 1 << 10
	// sketchMaxWidth bounds a row (64 MiB of key counters in all).
	sketchMaxWidth = 1 << 24
	// counterMax is where an 8-bit counter saturates.
	counterMax = 0xff
	// roomPerKey is how many counters a row has per key the sketch is
	// sized for.
	roomPerKey = 4
	// windowPerKey is the sample window, in requests per key the sketch
	// is sized for: after that many Touches every counter is halved, so
	// that a count is dominated by the last one or two windows (TinyLFU's
	// reset; Caffeine uses ten, but its keys do not come in titles). A
	// segment's own count needs no long memory: its title's counts carry
	// the long-term popularity.
	windowPerKey = 5
	// keysPerTitle sizes the title rows: a title has hundreds of segments
	// (times its renditions), so a sixteenth of the key rows leaves room
	// to spare.
	keysPerTitle = 16
	// titleWindows is how many sample windows pass between halvings of
	// the title counters: a title's popularity is estimated from far more
	// requests than a segment's and drifts slowly (a new release is
	// helped by TitleMean's scaling of young titles), so it can afford a
	// longer memory, of days on a busy appliance.
	titleWindows = 8
	// youngBoost bounds how much a young title's mean is scaled up.
	youngBoost = 16
)

// Sketch estimates how often keys are requested: a count-min sketch of
// 8-bit saturating counters with conservative update and periodic
// halving, so that old popularity fades. After five requests per key it
// was sized for every counter is halved; an estimate is therefore a decayed
// request count over the last windows, never less than the key's requests
// since the last halving (count-min only over-counts, through hash
// collisions), up to 255.
//
// Beside the keys it counts their titles (the part of a key before its
// first slash; the disk tier's keys are "titleID/path"), for Popularity.
//
// Safe for concurrent use: counters are updated with atomic
// compare-and-swap, so the disk tier shares one Sketch across all its
// directories. Touch, Estimate and Popularity allocate nothing. Two
// concurrent Touches of one key may count once (conservative update
// raises a counter to the estimate seen plus one).
type Sketch struct {
	seed    maphash.Seed // random: clients choose keys, so collisions must not be plannable
	mask    uint64       // width-1; width is a power of two
	window  uint64       // Touches between halvings
	touches atomic.Uint64
	// rows are sketchDepth rows of width 8-bit counters, eight to a word.
	rows [sketchDepth][]atomic.Uint64
	// titles are sketchDepth rows of per-title counter pairs, one to a
	// word: requests of the title's keys (high half) and how many of them
	// were of a key not requested since the last halving (low half), so
	// that their ratio is the title's mean requests per key.
	titles [sketchDepth][]atomic.Uint64
	// born holds, for each title counter, the Touch count when it last
	// rose from zero: the title's age, as far as the counters know.
	born      [sketchDepth][]atomic.Uint64
	titleMask uint64
}

// SketchKeys is the keys to size a Sketch for a cache of capacity bytes:
// the objects it holds if they are video segments of about 2 MiB.
func SketchKeys(capacity int64) int {
	return int(min(max(capacity>>21, 0), sketchMaxWidth/roomPerKey))
}

// NewSketch returns a sketch for a cache that holds about keys objects
// (see SketchKeys; at least 256, at most 2^22). Its rows have the next
// power of two at or above four times keys counters: a pull-through cache
// sees several times more distinct keys than it holds, and a row narrower
// than the keys requested in a window blurs the rarely requested ones
// together. That is 16 bytes a key, plus a sixteenth of that for titles.
// The counters are halved every five requests per key (the sample
// window), the title counters every eighth time.
func NewSketch(keys int) *Sketch {
	keys = min(max(keys, sketchMinWidth/roomPerKey), sketchMaxWidth/roomPerKey)
	width := min(uint64(1)<<bits.Len64(uint64(roomPerKey*keys-1)), sketchMaxWidth)
	s := &Sketch{
		seed:   maphash.MakeSeed(),
		mask:   width - 1,
		window: uint64(keys) * windowPerKey,
	}
	titleWidth := max(sketchMinWidth, width/keysPerTitle)
	s.titleMask = titleWidth - 1
	for i := range s.rows {
		s.rows[i] = make([]atomic.Uint64, width/8)
		s.titles[i] = make([]atomic.Uint64, titleWidth)
		s.born[i] = make([]atomic.Uint64, titleWidth)
	}
	return s
}

// index returns the counter position of hash h in row i of a row of
// mask+1 counters: double hashing from one 64-bit hash (Kirsch and
// Mitzenmacher).
func index(h uint64, i int, mask uint64) uint64 {
	lo, hi := h&0xffffffff, h>>32|1
	return (lo + uint64(i)*hi) & mask
}

// title returns the title part of key: what precedes its first slash, or
// the whole key.
func title(key string) string {
	if i := strings.IndexByte(key, '/'); i > 0 {
		return key[:i]
	}
	return key
}

// Touch records one request of key, and of its title (the part of key
// before the first slash; the disk tier's keys are "titleID/path").
func (s *Sketch) Touch(key string) {
	h := maphash.String(s.seed, key)
	est := s.count(h)
	// Conservative update: raise only the counters at the minimum, which
	// keeps the over-count of hash collisions much smaller.
	if est < counterMax {
		for i := range s.rows {
			at := index(h, i, s.mask)
			w, shift := &s.rows[i][at>>3], (at&7)*8
			for {
				old := w.Load()
				if (old>>shift)&counterMax > est || w.CompareAndSwap(old, old&^(counterMax<<shift)|(est+1)<<shift) {
					break
				}
			}
		}
	}
	fresh := est == 0
	inc := uint64(1) << 32
	if fresh {
		inc |= 1
	}
	th := maphash.String(s.seed, title(key))
	for i := range s.titles {
		// No saturation check: the title counters are halved every
		// titleWindows*window Touches, at most 40 * 2^22, so they stay
		// under 2^29.
		at := index(th, i, s.titleMask)
		if s.titles[i][at].Add(inc)>>32 == 1 {
			s.born[i][at].Store(s.touches.Load())
		}
	}
	if n := s.touches.Add(1); n%s.window == 0 {
		s.halve(n/s.window%titleWindows == 0)
	}
}

// count is the count-min estimate of the key of hash h.
func (s *Sketch) count(h uint64) uint64 {
	est := uint64(counterMax)
	for i := range s.rows {
		at := index(h, i, s.mask)
		est = min(est, (s.rows[i][at>>3].Load()>>((at&7)*8))&counterMax)
	}
	return est
}

// Estimate returns key's recent request count estimate: at least its
// requests since the last halving, plus half those of the window before,
// and so on, up to 255.
func (s *Sketch) Estimate(key string) uint32 {
	return uint32(s.count(maphash.String(s.seed, key)))
}

// TitleMean returns the mean recent requests per requested key of key's
// title (see Touch): how popular a segment of the title is, on the
// evidence of all its segments. It is 0 for a title not requested
// recently.
//
// A young title, first requested less than the title counters' memory
// (eight sample windows) ago, has had less time to gather requests than
// the others: the part of its mean above one request per key (viewers
// beyond the first) is scaled up to the full memory, by at most 16, so
// that a new release that draws several viewers in its first hour
// competes at once with the titles whose counts were gathered over days.
// A title watched by one viewer at a time is never scaled: each of its
// keys was requested once.
func (s *Sketch) TitleMean(key string) float64 {
	th := maphash.String(s.seed, title(key))
	best, row, at := uint64(0), 0, uint64(0)
	for i := range s.titles {
		// The least-collided row has the fewest requests.
		j := index(th, i, s.titleMask)
		if w := s.titles[i][j].Load(); i == 0 || w>>32 < best>>32 {
			best, row, at = w, i, j
		}
	}
	if best>>32 == 0 {
		return 0
	}
	// Halving rounds down, so a title whose keys all stay counted can be
	// left with requests but no fresh ones: count it as one key.
	mean := float64(best>>32) / float64(max(best&0xffffffff, 1))
	if mean > 1 {
		now, born := s.touches.Load(), s.born[row][at].Load()
		memory, age := float64(s.window*titleWindows), float64(now-min(born, now))
		if age < memory {
			mean = 1 + (mean-1)*memory/max(age, memory/youngBoost)
		}
	}
	return mean
}

// Popularity is key's expected requests in a sample window: its own
// recent count plus its title's mean per key. The title's share makes a
// segment of a title many viewers watch valuable from its first request
// (a new release), and sets apart the rarely requested segments, whose own
// counts are too small to tell a title watched twice a day from one
// watched twice a month.
func (s *Sketch) Popularity(key string) float64 {
	return float64(s.Estimate(key)) + s.TitleMean(key)
}

// halve divides every key counter by two, and the title counters too when
// titles is set. Concurrent Touches are not lost: each word is replaced by
// compare-and-swap.
func (s *Sketch) halve(titles bool) {
	halveRows(&s.rows, 0x7f7f7f7f7f7f7f7f) // the low 7 bits of each byte
	if titles {
		halveRows(&s.titles, 0x7fffffff7fffffff)
	}
}

func halveRows(rows *[sketchDepth][]atomic.Uint64, keep uint64) {
	for i := range rows {
		row := rows[i]
		for j := range row {
			for {
				old := row[j].Load()
				if old == 0 || row[j].CompareAndSwap(old, old>>1&keep) {
					break
				}
			}
		}
	}
}
