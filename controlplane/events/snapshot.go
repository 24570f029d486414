package events

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"time"
)

// A history snapshot is the viewing state folded from every segment
// before it, so that those segments can be deleted:
//
//	8 bytes    magic "FCEVSNP1"
//	uint64 LE  payload length
//	uint32 LE  CRC-32C (Castagnoli) of the payload
//	payload    uvarint records, uvarint events (the counts folded in);
//	           uvarint users, then per user: string user, uvarint titles,
//	           then per title: string title, float64 LE position,
//	           duration and furthest, flags byte (1 done, 2 finished),
//	           varint updated in Unix nanoseconds;
//	           uvarint titles, then per title: string title, float64 LE
//	           seconds watched by all users
//
// Strings are uvarint-length-prefixed. Floats are stored bit for bit, so
// a restart from a snapshot gives the state a full replay would.

const snapMagic = "FCEVSNP1"

const snapHeaderLen = len(snapMagic) + 8 + 4

// encodeSnapshot encodes s with the record and event counts folded in.
// The caller keeps s from changing.
func encodeSnapshot(s *state, records, events int64) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := make([]byte, snapHeaderLen, 1<<16)
	copy(b, snapMagic)
	b = binary.AppendUvarint(b, uint64(records))
	b = binary.AppendUvarint(b, uint64(events))
	b = binary.AppendUvarint(b, uint64(len(s.users)))
	f64 := func(b []byte, f float64) []byte { return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)) }
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	for user, titles := range s.users {
		b = str(b, user)
		b = binary.AppendUvarint(b, uint64(len(titles)))
		for title, p := range titles {
			b = str(b, title)
			b = f64(f64(f64(b, p.position), p.duration), p.furthest)
			var flags byte
			if p.done {
				flags |= 1
			}
			if p.finished {
				flags |= 2
			}
			b = append(b, flags)
			b = binary.AppendVarint(b, p.updated.UnixNano())
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.watch)))
	for title, sec := range s.watch {
		b = f64(str(b, title), sec)
	}
	payload := b[snapHeaderLen:]
	binary.LittleEndian.PutUint64(b[len(snapMagic):], uint64(len(payload)))
	binary.LittleEndian.PutUint32(b[len(snapMagic)+8:], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeSnapshot checks and decodes a snapshot file's bytes; it never
// panics, whatever the bytes.
func decodeSnapshot(b []byte) (s *state, records, events int64, err error) {
	if len(b) < snapHeaderLen || string(b[:len(snapMagic)]) != snapMagic {
		return nil, 0, 0, errBadPayload
	}
	n := binary.LittleEndian.Uint64(b[len(snapMagic):])
	p := b[snapHeaderLen:]
	if n != uint64(len(p)) || crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[len(snapMagic)+8:]) {
		return nil, 0, 0, errBadPayload
	}
	d := decoder{p: p}
	records, events = int64(d.uvarint()), int64(d.uvarint())
	s = newState()
	for range d.count(2) {
		user := d.str()
		titles := map[string]*progress{}
		for range d.count(28) {
			title := d.str()
			pr := &progress{position: d.f64(), duration: d.f64(), furthest: d.f64()}
			flags := d.byte()
			pr.done, pr.finished = flags&1 != 0, flags&2 != 0
			pr.updated = time.Unix(0, d.varint()).UTC()
			titles[title] = pr
		}
		s.users[user] = titles
	}
	for range d.count(10) {
		title := d.str()
		s.watch[title] = d.f64()
	}
	if d.bad || len(d.p) != 0 {
		return nil, 0, 0, errBadPayload
	}
	return s, records, events, nil
}

// decoder reads a payload, remembering the first error as bad (after
// which every read returns zero values).
type decoder struct {
	p   []byte
	bad bool
}

func (d *decoder) fail() { d.bad, d.p = true, nil }

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.p)
	return advance(d, v, k)
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.p)
	return advance(d, v, k)
}

// advance consumes the k bytes v was read from, or fails the decoder
// when the read did (k ≤ 0).
func advance[T any](d *decoder, v T, k int) T {
	if k <= 0 || k > len(d.p) {
		d.fail()
		var zero T
		return zero
	}
	d.p = d.p[k:]
	return v
}

// count reads an element count, each element taking at least size
// bytes, which bounds what a corrupt count makes the caller allocate.
func (d *decoder) count(size int) int {
	n := d.uvarint()
	if n > uint64(len(d.p)/size) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) f64() float64 {
	if len(d.p) < 8 {
		return advance(d, 0.0, 0)
	}
	return advance(d, math.Float64frombits(binary.LittleEndian.Uint64(d.p)), 8)
}

func (d *decoder) byte() byte {
	if len(d.p) < 1 {
		return advance(d, byte(0), 0)
	}
	return advance(d, d.p[0], 1)
}

func (d *decoder) str() string {
	s, rest, ok := readString(d.p)
	if !ok {
		return advance(d, "", 0)
	}
	return advance(d, s, len(d.p)-len(rest))
}
