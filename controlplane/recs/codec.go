package recs

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"
)

// A model's encoding, all integers little-endian:
//
//	magic    "FCRM"
//	version  u8, modelVersion
//	width    u8, 4 (float32 factors) or 8 (float64)
//	reserved u16, 0
//	factors  u32, k
//	users    u32, nᵤ
//	titles   u32, nₜ
//	ids      nᵤ user ids then nₜ title ids, each a uvarint length
//	         (1..maxIDLen) and its bytes
//	X        nᵤ·k factors, row by row
//	Y        nₜ·k factors, row by row
//	crc      u32, CRC-32C (Castagnoli) of every byte before it
//
// Train keeps factors at float32 precision, so its models encode with
// width 4 and decode to the very same answers.
const (
	modelMagic   = "FCRM"
	modelVersion = 1
	headerLen    = 20
	trailerLen   = 4
	// maxIDLen bounds a user or title id in an encoding.
	maxIDLen = 4096
	// maxFactors is ALSConfig.Validate's bound on Factors.
	maxFactors = 512
)

// ErrBadModel is returned by Model.UnmarshalBinary for an encoding that
// is corrupt, truncated or of another version.
var ErrBadModel = errors.New("recs: bad model encoding")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	_ encoding.BinaryMarshaler   = (*Model)(nil)
	_ encoding.BinaryUnmarshaler = (*Model)(nil)
)

// MarshalBinary encodes the model compactly, for Model.UnmarshalBinary
// on another node. It fails for a model with a non-finite factor.
func (m *Model) MarshalBinary() ([]byte, error) {
	if m.x == nil || m.y == nil {
		return nil, errors.New("recs: encode model: empty model")
	}
	users := make([]string, len(m.users))
	for u, i := range m.users {
		users[i] = u
	}
	_, k := m.y.Dims()
	width := 4
	size := headerLen + trailerLen
	for _, ids := range [][]string{users, m.titles} {
		for _, id := range ids {
			if len(id) == 0 || len(id) > maxIDLen {
				return nil, fmt.Errorf("recs: encode model: id of %d bytes outside 1..%d", len(id), maxIDLen)
			}
			size += uvarintLen(uint64(len(id))) + len(id)
		}
	}
	for _, f := range []*mat.Dense{m.x, m.y} {
		rows, _ := f.Dims()
		for r := range rows {
			for _, v := range f.RawRowView(r) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, errors.New("recs: encode model: non-finite factor")
				}
				if float64(float32(v)) != v {
					width = 8
				}
			}
		}
	}
	size += (len(users) + len(m.titles)) * k * width
	b := make([]byte, headerLen, size)
	copy(b, modelMagic)
	b[4], b[5] = modelVersion, byte(width)
	binary.LittleEndian.PutUint32(b[8:], uint32(k))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(users)))
	binary.LittleEndian.PutUint32(b[16:], uint32(len(m.titles)))
	for _, ids := range [][]string{users, m.titles} {
		for _, id := range ids {
			b = binary.AppendUvarint(b, uint64(len(id)))
			b = append(b, id...)
		}
	}
	for _, f := range []*mat.Dense{m.x, m.y} {
		rows, _ := f.Dims()
		for r := range rows {
			for _, v := range f.RawRowView(r) {
				if width == 4 {
					b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
				} else {
					b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
				}
			}
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// UnmarshalBinary replaces m with the model MarshalBinary encoded in
// data. It fails with ErrBadModel, and leaves m as it was, for data that
// is not such an encoding; whatever data holds, it allocates memory in
// proportion to len(data) at most and does not panic. m must not be in
// use by other goroutines.
func (m *Model) UnmarshalBinary(data []byte) error {
	n, err := decodeModel(data)
	if err != nil {
		return err
	}
	m.users, m.titles, m.tix, m.x, m.y, m.unit = n.users, n.titles, n.tix, n.x, n.y, n.unit
	m.scratch = sync.Pool{} // its vectors may have another length
	return nil
}

func decodeModel(data []byte) (*Model, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadModel}, args...)...)
	}
	if len(data) < headerLen+trailerLen {
		return nil, bad("%d bytes is shorter than a header", len(data))
	}
	if string(data[:4]) != modelMagic {
		return nil, bad("no model magic; is this a model?")
	}
	if data[4] != modelVersion {
		return nil, bad("version %d; this node reads version %d", data[4], modelVersion)
	}
	body := data[:len(data)-trailerLen]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, bad("checksum %#08x, want %#08x: corrupt or truncated", got, want)
	}
	width := int(data[5])
	k := uint64(binary.LittleEndian.Uint32(data[8:]))
	nu := uint64(binary.LittleEndian.Uint32(data[12:]))
	nt := uint64(binary.LittleEndian.Uint32(data[16:]))
	switch {
	case width != 4 && width != 8:
		return nil, bad("factor width %d, want 4 or 8", width)
	case data[6] != 0 || data[7] != 0:
		return nil, bad("reserved bytes set")
	case k < 1 || k > maxFactors:
		return nil, bad("%d factors outside 1..%d", k, maxFactors)
	case nu == 0 || nt == 0:
		return nil, bad("%d users and %d titles; a model has both", nu, nt)
	}
	rest := body[headerLen:]
	// Each id takes two bytes or more, and each factor row k·width:
	// bound the counts by the bytes there are before allocating.
	if (nu+nt)*(2+k*uint64(width)) > uint64(len(rest)) {
		return nil, bad("%d users and %d titles do not fit in %d bytes", nu, nt, len(rest))
	}
	ids, rest, err := decodeIDs(rest, int(nu+nt))
	if err != nil {
		return nil, bad("%v", err)
	}
	if want := (nu + nt) * k * uint64(width); uint64(len(rest)) != want {
		return nil, bad("%d bytes of factors, want %d", len(rest), want)
	}
	split := int(nu * k * uint64(width))
	x, err := decodeFactors(rest[:split], int(nu), int(k), width)
	if err != nil {
		return nil, bad("user factors: %v", err)
	}
	y, err := decodeFactors(rest[split:], int(nt), int(k), width)
	if err != nil {
		return nil, bad("title factors: %v", err)
	}
	m := newModel(ids[:nu], ids[nu:], x, y)
	if len(m.users) != int(nu) || len(m.tix) != int(nt) {
		return nil, bad("duplicate user or title id")
	}
	return m, nil
}

// decodeIDs reads n length-prefixed ids from b and returns what
// follows them. The ids share one string, one allocation for all.
func decodeIDs(b []byte, n int) (ids []string, rest []byte, err error) {
	end := 0
	for i := range n {
		l, w := binary.Uvarint(b[end:])
		if w <= 0 || l < 1 || l > maxIDLen || l > uint64(len(b)-end-w) {
			return nil, nil, fmt.Errorf("id %d: bad length", i)
		}
		end += w + int(l)
	}
	all := string(b[:end])
	ids = make([]string, n)
	for i, p := 0, 0; i < n; i++ {
		l, w := binary.Uvarint(b[p:])
		p += w
		ids[i] = all[p : p+int(l)]
		p += int(l)
	}
	return ids, b[end:], nil
}

// decodeFactors reads a rows×k matrix of width-byte floats.
func decodeFactors(b []byte, rows, k, width int) (*mat.Dense, error) {
	raw := make([]float64, rows*k)
	for i := range raw {
		var v float64
		if width == 4 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:])))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b[i*8:]))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("non-finite factor at %d", i)
		}
		raw[i] = v
	}
	return mat.NewDense(rows, k, raw), nil
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
