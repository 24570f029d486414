// Package jsonappend appends JSON strings to a byte slice without
// reflection or allocation, for the hand-written encoders of hot routes
// (the control plane's playback answer, the Content Steering manifest)
// that cannot afford encoding/json's per-call cost. What it writes decodes,
// with encoding/json, to the same string encoding/json's own encoding
// decodes to.
package jsonappend

// String appends s to dst as a JSON string and returns the extended
// slice. Quotes, backslashes and control characters are escaped; every
// other byte, valid UTF-8 or not, is copied as is (a decoder reads invalid
// UTF-8 as U+FFFD, as it does encoding/json's output). It allocates only
// when dst lacks the room.
func String(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
