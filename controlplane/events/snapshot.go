package events

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"time"
)

// A Viewing is saved as its checkpoint, the state folded from the
// stream up to a sequence:
//
//	8 bytes    magic "FCEVSNP1"
//	uint64 LE  payload length
//	uint32 LE  CRC-32C (Castagnoli) of the payload
//	payload    uvarint stream sequence of the last batch folded in,
//	           varint the stream's creation in Unix nanoseconds (0: none);
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

// MarshalBinary encodes the state and the sequence it was folded to.
func (s *Viewing) MarshalBinary() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := make([]byte, snapHeaderLen, 1<<16)
	copy(b, snapMagic)
	b = binary.AppendUvarint(b, s.seq)
	var stream int64
	if !s.stream.IsZero() {
		stream = s.stream.UnixNano()
	}
	b = binary.AppendVarint(b, stream)
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
	return b, nil
}

// UnmarshalBinary replaces the state with the one b encodes, checking it
// first; it never panics, whatever the bytes, and leaves the state alone
// when they are not a checkpoint.
func (s *Viewing) UnmarshalBinary(b []byte) error {
	if len(b) < snapHeaderLen || string(b[:len(snapMagic)]) != snapMagic {
		return errBadCheckpoint
	}
	size := binary.LittleEndian.Uint64(b[len(snapMagic):])
	p := b[snapHeaderLen:]
	if size != uint64(len(p)) || crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[len(snapMagic)+8:]) {
		return errBadCheckpoint
	}
	d := decoder{p: p}
	n := NewViewing()
	n.seq = d.uvarint()
	if ns := d.varint(); ns != 0 {
		n.stream = time.Unix(0, ns).UTC()
	}
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
		n.users[user] = titles
	}
	for range d.count(10) {
		title := d.str()
		n.watch[title] = d.f64()
	}
	if d.bad || len(d.p) != 0 {
		return errBadCheckpoint
	}
	s.mu.Lock()
	s.stream, s.seq, s.users, s.watch = n.stream, n.seq, n.users, n.watch
	s.mu.Unlock()
	return nil
}

var errBadCheckpoint = errors.New("events: malformed viewing checkpoint")

// decoder reads a payload, remembering the first error as bad (after
// which every read returns zero values).
type decoder struct {
	p   []byte
	bad bool
}

func (d *decoder) fail() { d.bad, d.p = true, nil }

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.p)
	return advance(d, v, minimal(d.p, k))
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.p)
	return advance(d, v, minimal(d.p, k))
}

// minimal returns k, the length of the varint at the start of p, or 0
// when it is longer than it need be (a last byte of zero), which no
// encoder here writes.
func minimal(p []byte, k int) int {
	if k > 1 && p[k-1] == 0 {
		return 0
	}
	return k
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
