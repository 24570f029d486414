package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// readFile writes b to path and reads its trailer as a restart's scan does.
func readFile(t *testing.T, path string, b []byte) (trailer, uint32, error) {
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTrailer(f, int64(len(b)))
}

// FuzzReadTrailer: the disk tier's object files after a restart. An
// object file as written (body, trailer, footer) reads back with the key,
// metadata and body checksum it was written with; any one byte of its
// trailer or footer changed, it is refused as corrupt (errCorrupt), but
// for the body checksum, which comes back changed (the body check then
// fails), and the reserved bytes. Whatever else a file holds, it is
// refused as corrupt, or read as a trailer that, written again after the
// same body, reads back the same.
func FuzzReadTrailer(f *testing.F) {
	path := filepath.Join(f.TempDir(), "object") // rewritten by each input
	f.Add([]byte("body bytes"), "t1/720p/seg-00001.m4s", "video/mp4", `"abc-123"`, "Fri, 05 Dec 2025 00:00:00 GMT", uint16(0), byte(1), []byte(nil))
	f.Add([]byte{}, "t1/master.m3u8", "", "", "", uint16(40), byte(0x80), []byte(magic))
	f.Add(bytes.Repeat([]byte{0}, 100), "k", "a\"b\\c", "W/\"x\"", "x", uint16(9), byte(0xff), []byte("not an object file at all, but long enough for a footer"))
	f.Fuzz(func(t *testing.T, body []byte, key, ctype, etag, lastMod string, at uint16, flip byte, raw []byte) {
		if len(raw) > 0 {
			tr, crc, err := readFile(t, path, raw)
			if err != nil {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("readTrailer(%q) = %v, not errCorrupt", raw, err)
				}
				return
			}
			bodyLen := tr.Meta.Size
			if bodyLen < 0 || bodyLen > int64(len(raw)) {
				t.Fatalf("readTrailer(%q) = size %d of a %d-byte file", raw, bodyLen, len(raw))
			}
			var b bytes.Buffer
			b.Write(raw[:bodyLen])
			if err := writeTrailer(&b, tr.Key, tr.Meta, bodyLen, crc); err != nil {
				t.Fatal(err)
			}
			tr2, crc2, err := readFile(t, path, b.Bytes())
			if err != nil || tr2 != tr || crc2 != crc {
				t.Fatalf("readTrailer(%q) = %+v %x; written again it reads %+v %x, %v", raw, tr, crc, tr2, crc2, err)
			}
			return
		}
		for _, s := range []string{key, ctype, etag, lastMod} {
			if !utf8.ValidString(s) {
				return // JSON keeps valid UTF-8 only; keys are object paths
			}
		}
		meta := Meta{Size: int64(len(body)), ContentType: ctype, ETag: etag, LastModified: lastMod}
		crc := crc32.Checksum(body, crcTable)
		var b bytes.Buffer
		b.Write(body)
		if err := writeTrailer(&b, key, meta, int64(len(body)), crc); err != nil {
			t.Fatal(err)
		}
		file := b.Bytes()
		tr, gotCRC, err := readFile(t, path, file)
		if err != nil || tr.Key != key || tr.Meta != meta || gotCRC != crc {
			t.Fatalf("object written with %q %+v %x reads back %+v %x, %v", key, meta, crc, tr, gotCRC, err)
		}
		if flip == 0 {
			return
		}
		tail := len(file) - len(body)
		i := len(body) + int(at)%tail
		file[i] ^= flip
		tr, gotCRC, err = readFile(t, path, file)
		foot := i - (len(file) - footerLen) // offset in the footer, negative in the trailer
		switch {
		case foot >= 20 && foot < 24: // the body checksum
			if err != nil || gotCRC == crc || gotCRC != binary.LittleEndian.Uint32(file[len(file)-footerLen+20:]) {
				t.Fatalf("body checksum changed: read %x, %v; written %x", gotCRC, err, crc)
			}
		case foot >= 28: // reserved
			if err != nil || tr.Key != key || tr.Meta != meta || gotCRC != crc {
				t.Fatalf("a reserved byte changed: read %+v %x, %v", tr, gotCRC, err)
			}
		case !errors.Is(err, errCorrupt):
			t.Fatalf("byte %d of %d (footer offset %d) flipped by %#x: read %+v %x, %v; want errCorrupt", i, len(file), foot, flip, tr, gotCRC, err)
		}
	})
}
