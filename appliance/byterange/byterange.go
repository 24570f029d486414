// Package byterange parses the HTTP Range header (RFC 9110 §14) for the
// appliance, which serves single byte ranges of cached segments. It works
// on the raw header bytes and allocates nothing.
package byterange

import (
	"errors"

	"github.com/fillcast/fillcast/internal/decimal"
)

// Errors returned by Parse.
var (
	// ErrUnsatisfiable means the header is well formed but selects no byte
	// of the representation: answer 416 with "Content-Range: bytes */size".
	ErrUnsatisfiable = errors.New("byterange: range not satisfiable")
	// ErrMalformed means the header cannot be parsed as a bytes range;
	// the appliance answers 416 as Go's net/http does.
	ErrMalformed = errors.New("byterange: malformed range")
)

// Range is a satisfiable byte range of a representation.
type Range struct {
	Start  int64 // first byte, 0-based
	Length int64 // number of bytes, > 0
}

// End returns the last byte's offset, as written in Content-Range.
func (r Range) End() int64 { return r.Start + r.Length - 1 }

// Parse parses a Range header value for a representation of size bytes.
// ok is false when the whole representation should be sent instead: no
// header, a unit other than bytes, or several ranges (which the appliance
// answers with a plain 200, as RFC 9110 allows, rather than multipart).
func Parse(h []byte, size int64) (r Range, ok bool, err error) {
	if len(h) == 0 {
		return Range{}, false, nil
	}
	const unit = "bytes="
	if len(h) < len(unit) || !equalFoldASCII(h[:len(unit)], unit) {
		return Range{}, false, nil
	}
	spec := trimOWS(h[len(unit):])
	for _, c := range spec {
		if c == ',' {
			return Range{}, false, nil
		}
	}
	dash := -1
	for i, c := range spec {
		if c == '-' {
			dash = i
			break
		}
	}
	if dash < 0 {
		return Range{}, false, ErrMalformed
	}
	first, last := trimOWS(spec[:dash]), trimOWS(spec[dash+1:])
	if len(first) == 0 {
		// Suffix range: the last n bytes.
		n, ok := decimal.ParseUint(last)
		if !ok {
			return Range{}, false, ErrMalformed
		}
		if n == 0 || size == 0 {
			return Range{}, false, ErrUnsatisfiable
		}
		n = min(n, size)
		return Range{Start: size - n, Length: n}, true, nil
	}
	start, ok := decimal.ParseUint(first)
	if !ok {
		return Range{}, false, ErrMalformed
	}
	end := size - 1
	if len(last) > 0 {
		e, ok := decimal.ParseUint(last)
		if !ok || e < start {
			return Range{}, false, ErrMalformed
		}
		end = min(e, size-1)
	}
	if start >= size {
		return Range{}, false, ErrUnsatisfiable
	}
	return Range{Start: start, Length: end - start + 1}, true, nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
