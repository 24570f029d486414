package events

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"time"
)

// On disk the log is a sequence of records, one per appended batch:
//
//	uint32 LE  payload length
//	uint32 LE  CRC-32C (Castagnoli) of the payload
//	payload    uvarint event count, then per event:
//	           type byte (1 play, 2 progress, 3 stop, 4 complete),
//	           varint ts in Unix nanoseconds, float64 LE position_s,
//	           float64 LE duration_s, uvarint-length-prefixed user and title
//
// A batch is one record, so a crash loses or keeps a batch whole.

const headerLen = 8

// maxRecordLen bounds a record's payload: a length above it can only be
// garbage (a torn or corrupt header), never a batch the log wrote.
const maxRecordLen = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadPayload = errors.New("events: malformed record payload")

var typeCodes = map[string]byte{TypePlay: 1, TypeProgress: 2, TypeStop: 3, TypeComplete: 4}

var typeNames = [...]string{1: TypePlay, 2: TypeProgress, 3: TypeStop, 4: TypeComplete}

// appendRecord appends the framed record of batch to dst.
func appendRecord(dst []byte, batch []Event) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerLen)...)
	dst = binary.AppendUvarint(dst, uint64(len(batch)))
	for i := range batch {
		e := &batch[i]
		dst = append(dst, typeCodes[e.Type])
		dst = binary.AppendVarint(dst, e.TS.UnixNano())
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(e.PositionS))
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(e.DurationS))
		dst = binary.AppendUvarint(dst, uint64(len(e.User)))
		dst = append(dst, e.User...)
		dst = binary.AppendUvarint(dst, uint64(len(e.Title)))
		dst = append(dst, e.Title...)
	}
	payload := dst[start+headerLen:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, castagnoli))
	return dst
}

// decodePayload decodes a record's payload; it never panics, whatever
// the bytes.
func decodePayload(p []byte) ([]Event, error) {
	n, k := binary.Uvarint(p)
	// Each event takes at least 20 bytes, which bounds the allocation.
	if k <= 0 || n > uint64(len(p)/20+1) {
		return nil, errBadPayload
	}
	p = p[k:]
	out := make([]Event, 0, n)
	for range n {
		if len(p) < 1 {
			return nil, errBadPayload
		}
		code := p[0]
		if code == 0 || int(code) >= len(typeNames) {
			return nil, errBadPayload
		}
		p = p[1:]
		ts, k := binary.Varint(p)
		if k <= 0 || len(p[k:]) < 16 {
			return nil, errBadPayload
		}
		p = p[k:]
		e := Event{Type: typeNames[code], TS: time.Unix(0, ts).UTC()}
		e.PositionS = math.Float64frombits(binary.LittleEndian.Uint64(p))
		e.DurationS = math.Float64frombits(binary.LittleEndian.Uint64(p[8:]))
		p = p[16:]
		var ok bool
		if e.User, p, ok = readString(p); !ok {
			return nil, errBadPayload
		}
		if e.Title, p, ok = readString(p); !ok {
			return nil, errBadPayload
		}
		out = append(out, e)
	}
	if len(p) != 0 {
		return nil, errBadPayload
	}
	return out, nil
}

func readString(p []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, false
	}
	p = p[k:]
	return string(p[:n]), p[n:], true
}
