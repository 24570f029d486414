package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// On disk an object is one file: the body, then a JSON trailer with the
// key and metadata, then a fixed footer. The body starts at offset 0 so a
// hit can be sent with sendfile straight from the file.
//
//	footer: magic[8] bodyLen[8] metaLen[4] bodyCRC[4] metaCRC[4] reserved[4]
//
// Checksums are CRC-32C (hardware accelerated): they guard against torn
// writes and media corruption, not against an adversary with write access.
const (
	footerLen = 32
	magic     = "FCOBJv1\x00"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks an object file whose structure or checksum is wrong.
var errCorrupt = errors.New("cache: corrupt object")

// trailer is the JSON stored after the body.
type trailer struct {
	Key  string `json:"key"`
	Meta Meta   `json:"meta"`
}

// objectName returns the file name for key, relative to the objects
// directory: two levels keep directories small.
func objectName(key string) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:16])
	return h[:2] + "/" + h
}

// writeTrailer appends the trailer and footer after a body of bodyLen bytes
// with checksum bodyCRC.
func writeTrailer(w io.Writer, key string, meta Meta, bodyLen int64, bodyCRC uint32) error {
	tj, err := json.Marshal(trailer{Key: key, Meta: meta})
	if err != nil {
		return fmt.Errorf("cache: encode trailer: %w", err)
	}
	var foot [footerLen]byte
	copy(foot[:8], magic)
	binary.LittleEndian.PutUint64(foot[8:], uint64(bodyLen))
	binary.LittleEndian.PutUint32(foot[16:], uint32(len(tj)))
	binary.LittleEndian.PutUint32(foot[20:], bodyCRC)
	binary.LittleEndian.PutUint32(foot[24:], crc32.Checksum(tj, crcTable))
	if _, err := w.Write(append(tj, foot[:]...)); err != nil {
		return fmt.Errorf("cache: write trailer: %w", err)
	}
	return nil
}

// readTrailer checks the structure of an object file of fileSize bytes and
// returns its trailer and body checksum. It reads only the trailer.
func readTrailer(f *os.File, fileSize int64) (trailer, uint32, error) {
	var t trailer
	if fileSize < footerLen {
		return t, 0, fmt.Errorf("%w: %d bytes is shorter than a footer", errCorrupt, fileSize)
	}
	var foot [footerLen]byte
	if _, err := f.ReadAt(foot[:], fileSize-footerLen); err != nil {
		return t, 0, fmt.Errorf("cache: read footer: %w", err)
	}
	if string(foot[:8]) != magic {
		return t, 0, fmt.Errorf("%w: bad magic", errCorrupt)
	}
	bodyLen := int64(binary.LittleEndian.Uint64(foot[8:]))
	metaLen := int64(binary.LittleEndian.Uint32(foot[16:]))
	if metaLen > 64<<10 || bodyLen < 0 || bodyLen+metaLen+footerLen != fileSize {
		return t, 0, fmt.Errorf("%w: lengths do not add up to the file size (torn write?)", errCorrupt)
	}
	tj := make([]byte, metaLen)
	if _, err := f.ReadAt(tj, bodyLen); err != nil {
		return t, 0, fmt.Errorf("cache: read trailer: %w", err)
	}
	if crc32.Checksum(tj, crcTable) != binary.LittleEndian.Uint32(foot[24:]) {
		return t, 0, fmt.Errorf("%w: trailer checksum mismatch", errCorrupt)
	}
	if err := json.Unmarshal(tj, &t); err != nil {
		return t, 0, fmt.Errorf("%w: trailer: %v", errCorrupt, err)
	}
	if t.Meta.Size != bodyLen {
		return t, 0, fmt.Errorf("%w: trailer size %d, body %d", errCorrupt, t.Meta.Size, bodyLen)
	}
	return t, binary.LittleEndian.Uint32(foot[20:]), nil
}

// diskWriter writes one object into a temporary file. It doubles as the
// spool that clients read while the object is still arriving (ReadAt).
type diskWriter struct {
	d    *disk
	f    *os.File
	key  string
	n    int64
	crc  uint32
	done bool
}

func (w *diskWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.crc = crc32.Update(w.crc, crcTable, p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("cache: write %s: %w", w.f.Name(), err)
	}
	return n, nil
}

// ReadAt reads bytes already written; it is safe alongside Write.
func (w *diskWriter) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }
