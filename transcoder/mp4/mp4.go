// Package mp4 reads the few ISO BMFF (MP4) boxes the transcoder needs to
// check and describe its CMAF output: the codec string, timescale and
// picture size from an init segment, and the decode time, duration and
// first-sample sync flag of each media segment. It parses untrusted bytes
// without panicking and never reads past a box.
package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrFormat marks bytes that are not the MP4 structure expected.
var ErrFormat = errors.New("mp4: malformed")

// box is one parsed box header and its payload.
type box struct {
	typ  string
	body []byte
}

// boxes splits data into its top-level boxes.
func boxes(data []byte) ([]box, error) {
	var out []box
	for len(data) > 0 {
		if len(data) < 8 {
			return nil, fmt.Errorf("%w: %d stray bytes", ErrFormat, len(data))
		}
		size := uint64(binary.BigEndian.Uint32(data))
		typ := string(data[4:8])
		hdr := uint64(8)
		switch size {
		case 0: // to the end of the data
			size = uint64(len(data))
		case 1:
			if len(data) < 16 {
				return nil, fmt.Errorf("%w: short largesize box %q", ErrFormat, typ)
			}
			size = binary.BigEndian.Uint64(data[8:])
			hdr = 16
		}
		if size < hdr || size > uint64(len(data)) {
			return nil, fmt.Errorf("%w: box %q claims %d bytes, %d left", ErrFormat, typ, size, len(data))
		}
		out = append(out, box{typ: typ, body: data[hdr:size]})
		data = data[size:]
	}
	return out, nil
}

// child returns the first child of type typ inside data, skipping skip
// bytes of the parent's own fields first.
func child(data []byte, skip int, typ string) ([]byte, bool, error) {
	if skip > len(data) {
		return nil, false, fmt.Errorf("%w: box shorter than its fields", ErrFormat)
	}
	bs, err := boxes(data[skip:])
	if err != nil {
		return nil, false, err
	}
	for _, b := range bs {
		if b.typ == typ {
			return b.body, true, nil
		}
	}
	return nil, false, nil
}

// path follows a chain of container box types from data.
func path(data []byte, types ...string) ([]byte, error) {
	for _, t := range types {
		b, ok, err := child(data, 0, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: no %q box", ErrFormat, t)
		}
		data = b
	}
	return data, nil
}

// reader reads big-endian fields and remembers the first short read.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n > len(r.b) || n < 0 {
		r.bad = true
		return make([]byte, max(n, 0))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8   { return r.take(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
