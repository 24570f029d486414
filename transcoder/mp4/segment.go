package mp4

import "fmt"

// Fragment summarises one CMAF media segment.
type Fragment struct {
	// Start is the first sample's decode time in timescale ticks (tfdt).
	Start uint64
	// Duration is the sum of the sample durations in ticks.
	Duration uint64
	// Samples is the number of samples.
	Samples int
	// FirstSync reports whether the first sample is a sync sample (a
	// keyframe), so the segment can start playback on its own.
	FirstSync bool
}

// Sample flag bits (ISO/IEC 14496-12 8.8.3.1).
const (
	flagNonSync        = 1 << 16
	flagDependsOnShift = 24
)

// ParseSegment reads a media segment (optional styp/sidx, one or more
// moof+mdat pairs) for the track described by t.
func ParseSegment(data []byte, t Track) (Fragment, error) {
	bs, err := boxes(data)
	if err != nil {
		return Fragment{}, err
	}
	var f Fragment
	seen := false
	for _, b := range bs {
		if b.typ != "moof" {
			continue
		}
		trafs, err := boxes(b.body)
		if err != nil {
			return Fragment{}, err
		}
		for _, traf := range trafs {
			if traf.typ != "traf" {
				continue
			}
			g, ok, err := parseTraf(traf.body, t)
			if err != nil {
				return Fragment{}, err
			}
			if !ok {
				continue
			}
			if !seen {
				f.Start, f.FirstSync = g.Start, g.FirstSync
				seen = true
			}
			f.Duration += g.Duration
			f.Samples += g.Samples
		}
	}
	if !seen {
		return Fragment{}, fmt.Errorf("%w: no fragment for track %d", ErrFormat, t.ID)
	}
	return f, nil
}

func parseTraf(traf []byte, t Track) (Fragment, bool, error) {
	bs, err := boxes(traf)
	if err != nil {
		return Fragment{}, false, err
	}
	defDur, defFlags := t.DefaultDuration, t.DefaultFlags
	var f Fragment
	haveTfhd, first := false, true
	for _, b := range bs {
		r := &reader{b: b.body}
		switch b.typ {
		case "tfhd":
			flags := r.u32() & 0xffffff
			if id := r.u32(); id != t.ID {
				return Fragment{}, false, nil
			}
			haveTfhd = true
			if flags&0x01 != 0 {
				r.take(8)
			}
			if flags&0x02 != 0 {
				r.take(4)
			}
			if flags&0x08 != 0 {
				defDur = r.u32()
			}
			if flags&0x10 != 0 {
				r.take(4)
			}
			if flags&0x20 != 0 {
				defFlags = r.u32()
			}
		case "tfdt":
			if r.u8() == 1 {
				r.take(3)
				f.Start = r.u64()
			} else {
				r.take(3)
				f.Start = uint64(r.u32())
			}
		case "trun":
			if !haveTfhd {
				return Fragment{}, false, fmt.Errorf("%w: trun before tfhd", ErrFormat)
			}
			flags := r.u32() & 0xffffff
			n := r.u32()
			if flags&0x01 != 0 {
				r.take(4)
			}
			firstFlags, haveFirst := uint32(0), flags&0x04 != 0
			if haveFirst {
				firstFlags = r.u32()
			}
			per := 0
			for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
				if flags&bit != 0 {
					per += 4
				}
			}
			if r.bad || uint64(n)*uint64(per) > uint64(len(r.b)) {
				return Fragment{}, false, fmt.Errorf("%w: trun claims %d samples", ErrFormat, n)
			}
			for i := uint32(0); i < n; i++ {
				dur, sflags := defDur, defFlags
				if flags&0x100 != 0 {
					dur = r.u32()
				}
				if flags&0x200 != 0 {
					r.take(4)
				}
				if flags&0x400 != 0 {
					sflags = r.u32()
				}
				if flags&0x800 != 0 {
					r.take(4)
				}
				if i == 0 && haveFirst {
					sflags = firstFlags
				}
				if first {
					f.FirstSync = sflags&flagNonSync == 0 && (sflags>>flagDependsOnShift)&3 != 1
					first = false
				}
				f.Duration += uint64(dur)
			}
			f.Samples += int(n)
		}
		if r.bad {
			return Fragment{}, false, fmt.Errorf("%w: short %s", ErrFormat, b.typ)
		}
	}
	return f, haveTfhd, nil
}
