package events

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"time"
)

// On the stream a batch is one message, encoded compactly so that every
// node's consumers decode it cheaply:
//
//	byte       version (1)
//	uvarint    event count, then per event:
//	byte       type code (1 + its index in Types)
//	varint     ts in Unix nanoseconds
//	strings    id, user
//	uvarint    field mask (the bits below), then the fields set, in
//	           the order of the bits: strings uvarint-length-prefixed,
//	           floats float64 LE, counts uvarint, fatal as its bit alone
//
// The stream's message id de-duplicates a batch sent again.

const recordVersion = 1

// Field bits of the mask, in encoding order.
const (
	fTitle = 1 << iota
	fSite
	fAppliance
	fPosition
	fDuration
	fRow
	fRank
	fQuery
	fResults
	fCode
	fMessage
	fFatal
	fStartup
	fPlayed
	fRebuffers
	fRebufferMS
	fBitrate
	fSwitches
	fDropped
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadRecord is what DecodeRecord returns for bytes that are not a
// batch it encoded.
var ErrBadRecord = errors.New("events: malformed batch record")

var typeCodes = func() map[string]byte {
	m := make(map[string]byte, len(Types))
	for i, t := range Types {
		m[t] = byte(i + 1)
	}
	return m
}()

// AppendRecord appends the stream encoding of batch to dst. The events
// must be valid.
func AppendRecord(dst []byte, batch []Event) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(batch)))
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	f64 := func(b []byte, f float64) []byte { return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)) }
	for i := range batch {
		e := &batch[i]
		dst = append(dst, typeCodes[e.Type])
		var ts int64 // 0: no time (1970 is refused by Validate)
		if !e.TS.IsZero() {
			ts = e.TS.UnixNano()
		}
		dst = binary.AppendVarint(dst, ts)
		dst = str(str(dst, e.ID), e.User)
		dst = binary.AppendUvarint(dst, mask(e))
		for _, s := range []string{e.Title, e.Site, e.Appliance} {
			if s != "" {
				dst = str(dst, s)
			}
		}
		dst = appendFloats(dst, f64, e.PositionS, e.DurationS)
		if e.Row != "" {
			dst = str(dst, e.Row)
		}
		dst = appendCounts(dst, e.Rank)
		if e.Query != "" {
			dst = str(dst, e.Query)
		}
		dst = appendCounts(dst, e.Results)
		for _, s := range []string{e.Code, e.Message} {
			if s != "" {
				dst = str(dst, s)
			}
		}
		dst = appendFloats(dst, f64, e.StartupMS, e.PlayedS)
		dst = appendCounts(dst, e.Rebuffers)
		dst = appendFloats(dst, f64, e.RebufferMS, e.BitrateKbps)
		dst = appendCounts(dst, e.Switches, e.DroppedFrames)
	}
	return dst
}

func appendFloats(dst []byte, f64 func([]byte, float64) []byte, fs ...float64) []byte {
	for _, f := range fs {
		if f != 0 {
			dst = f64(dst, f)
		}
	}
	return dst
}

func appendCounts(dst []byte, ns ...int) []byte {
	for _, n := range ns {
		if n != 0 {
			dst = binary.AppendUvarint(dst, uint64(n))
		}
	}
	return dst
}

// mask returns the bits of e's fields that are set.
func mask(e *Event) uint64 {
	var m uint64
	set := func(bit uint64, on bool) {
		if on {
			m |= bit
		}
	}
	set(fTitle, e.Title != "")
	set(fSite, e.Site != "")
	set(fAppliance, e.Appliance != "")
	set(fPosition, e.PositionS != 0)
	set(fDuration, e.DurationS != 0)
	set(fRow, e.Row != "")
	set(fRank, e.Rank != 0)
	set(fQuery, e.Query != "")
	set(fResults, e.Results != 0)
	set(fCode, e.Code != "")
	set(fMessage, e.Message != "")
	set(fFatal, e.Fatal)
	set(fStartup, e.StartupMS != 0)
	set(fPlayed, e.PlayedS != 0)
	set(fRebuffers, e.Rebuffers != 0)
	set(fRebufferMS, e.RebufferMS != 0)
	set(fBitrate, e.BitrateKbps != 0)
	set(fSwitches, e.Switches != 0)
	set(fDropped, e.DroppedFrames != 0)
	return m
}

// DecodeRecord decodes a batch AppendRecord encoded; it never panics,
// whatever the bytes.
func DecodeRecord(p []byte) ([]Event, error) {
	if len(p) < 1 || p[0] != recordVersion {
		return nil, ErrBadRecord
	}
	d := decoder{p: p[1:]}
	// Each event takes at least 5 bytes, which bounds the allocation.
	out := make([]Event, d.count(5))
	for i := range out {
		e := &out[i]
		code := d.byte()
		if code == 0 || int(code) > len(Types) {
			return nil, ErrBadRecord
		}
		e.Type = Types[code-1]
		if ns := d.varint(); ns != 0 {
			e.TS = time.Unix(0, ns).UTC()
		}
		e.ID, e.User = d.str(), d.str()
		m := d.uvarint()
		if m >= fDropped<<1 {
			return nil, ErrBadRecord // a field this version does not know
		}
		// A field whose bit is set is never zero: AppendRecord leaves
		// zero fields out.
		str := func(bit uint64) string {
			if m&bit == 0 {
				return ""
			}
			v := d.str()
			if v == "" {
				d.fail()
			}
			return v
		}
		f64 := func(bit uint64) float64 {
			if m&bit == 0 {
				return 0
			}
			v := d.f64()
			if v == 0 { // -0 too: AppendRecord leaves it out
				d.fail()
			}
			return v
		}
		cnt := func(bit uint64) int {
			if m&bit == 0 {
				return 0
			}
			n := d.uvarint()
			if n == 0 || n > MaxCount {
				d.fail()
			}
			return int(n)
		}
		e.Title, e.Site, e.Appliance = str(fTitle), str(fSite), str(fAppliance)
		e.PositionS, e.DurationS = f64(fPosition), f64(fDuration)
		e.Row, e.Rank = str(fRow), cnt(fRank)
		e.Query, e.Results = str(fQuery), cnt(fResults)
		e.Code, e.Message, e.Fatal = str(fCode), str(fMessage), m&fFatal != 0
		e.StartupMS, e.PlayedS = f64(fStartup), f64(fPlayed)
		e.Rebuffers, e.RebufferMS, e.BitrateKbps = cnt(fRebuffers), f64(fRebufferMS), f64(fBitrate)
		e.Switches, e.DroppedFrames = cnt(fSwitches), cnt(fDropped)
		if d.bad {
			return nil, ErrBadRecord
		}
	}
	if d.bad || len(d.p) != 0 {
		return nil, ErrBadRecord
	}
	return out, nil
}

func readString(p []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(p)
	k = minimal(p, k) // an overlong length is no record of ours either
	if k <= 0 || n > uint64(len(p)-k) {
		return "", nil, false
	}
	p = p[k:]
	return string(p[:n]), p[n:], true
}
