package mp4

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Movie summarises a progressive MP4 file.
type Movie struct {
	// Faststart reports whether the index (moov) precedes the media
	// data (mdat), so a player can start before the download ends.
	Faststart bool
	// Tracks lists every track's description and length.
	Tracks []MovieTrack
}

// MovieTrack is one track of a progressive MP4.
type MovieTrack struct {
	Track
	// Duration is the media duration in seconds (mdhd).
	Duration float64
}

// maxMoov bounds the index read into memory.
const maxMoov = 64 << 20

// ParseMovie reads the top-level boxes of a progressive MP4 of the given
// size through r, loading only the moov box.
func ParseMovie(r io.ReaderAt, size int64) (Movie, error) {
	var m Movie
	var off int64
	seenMdat := false
	var hdr [16]byte
	for off < size {
		if size-off < 8 {
			return Movie{}, fmt.Errorf("%w: %d stray bytes at the end", ErrFormat, size-off)
		}
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return Movie{}, fmt.Errorf("mp4: read: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		head := int64(8)
		switch n {
		case 0:
			n = size - off
		case 1:
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return Movie{}, fmt.Errorf("mp4: read: %w", err)
			}
			n, head = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
		}
		if n < head || n > size-off {
			return Movie{}, fmt.Errorf("%w: box %q at %d claims %d bytes", ErrFormat, typ, off, n)
		}
		switch typ {
		case "mdat":
			seenMdat = true
		case "moov":
			if n > maxMoov {
				return Movie{}, fmt.Errorf("%w: moov of %d bytes", ErrFormat, n)
			}
			body := make([]byte, n-head)
			if _, err := r.ReadAt(body, off+head); err != nil {
				return Movie{}, fmt.Errorf("mp4: read: %w", err)
			}
			tracks, err := parseMoov(body)
			if err != nil {
				return Movie{}, err
			}
			m.Tracks, m.Faststart = tracks, !seenMdat
		}
		off += n
	}
	if m.Tracks == nil {
		return Movie{}, fmt.Errorf("%w: no moov box", ErrFormat)
	}
	return m, nil
}

func parseMoov(moov []byte) ([]MovieTrack, error) {
	bs, err := boxes(moov)
	if err != nil {
		return nil, err
	}
	out := []MovieTrack{}
	for _, b := range bs {
		if b.typ != "trak" {
			continue
		}
		// ParseInit reads one trak inside a moov; wrap this one.
		t, err := ParseInit(wrap("moov", wrap("trak", b.body)))
		if err != nil {
			return nil, err
		}
		mdhd, err := path(b.body, "mdia", "mdhd")
		if err != nil {
			return nil, err
		}
		r := &reader{b: mdhd}
		var dur uint64
		if r.u8() == 1 {
			r.take(3 + 8 + 8 + 4)
			dur = r.u64()
		} else {
			r.take(3 + 4 + 4 + 4)
			dur = uint64(r.u32())
		}
		if r.bad {
			return nil, fmt.Errorf("%w: short mdhd", ErrFormat)
		}
		out = append(out, MovieTrack{Track: t, Duration: float64(dur) / float64(t.Timescale)})
	}
	return out, nil
}

// wrap makes a box of type typ around body.
func wrap(typ string, body []byte) []byte {
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(b, uint32(8+len(body)))
	copy(b[4:], typ)
	return append(b, body...)
}
