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
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
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
	size int64 // expected, -1 when unknown
	n    int64
	crc  uint32
	done bool
}

// errWrite marks the error of a write the file system refused.
var errWrite = errors.New("cache: write")

// maxRoomTries bounds the evictions one write makes to get room.
const maxRoomTries = 4

func (w *diskWriter) Write(p []byte) (int, error) {
	n, err := w.write(p)
	w.crc = crc32.Update(w.crc, crcTable, p[:n])
	w.n += int64(n)
	return n, err
}

// write writes all of p. A full file system makes room by evicting (as
// much as the rest of the object needs) and is tried again; every failed
// write counts, and one that means the disk is broken takes it out of
// service.
func (w *diskWriter) write(p []byte) (int, error) {
	done := 0
	for tries := 0; ; tries++ {
		n, err := w.f.Write(p[done:])
		done += n
		if err == nil {
			return done, nil
		}
		w.d.writeErrors.Add(1)
		if !errors.Is(err, unix.ENOSPC) || tries == maxRoomTries || !w.d.makeRoom(w.roomFor(len(p)-done)) {
			w.d.ioError(err)
			return done, fmt.Errorf("%w %s: %w", errWrite, w.f.Name(), err)
		}
	}
}

// roomFor is what to evict for a write of n bytes refused as full: the
// rest of the object with its trailer, or a megabyte when its size is
// unknown.
func (w *diskWriter) roomFor(n int) int64 {
	need := int64(n) + 4<<10
	if w.size >= 0 {
		need = max(need, w.size-w.n+4<<10)
	}
	return max(need, 1<<20)
}

// rawWriter writes the trailer: it makes room as Write does, without
// counting the bytes as body.
type rawWriter struct{ w *diskWriter }

func (r rawWriter) Write(p []byte) (int, error) { return r.w.write(p) }

// ReadAt reads bytes already written; it is safe alongside Write.
func (w *diskWriter) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

// commit finishes w: trailer, optional fsync, rename into place, index,
// evict. meta.Size must equal the bytes written.
//
// Objects are fsynced only with Config.Fsync: a cache may lose what it
// wrote in the seconds before a power cut, but the footer's lengths and
// CRCs guarantee that what survives torn is dropped, never served.
func (w *diskWriter) commit(meta Meta) error {
	e, err := w.finish(meta, os.Rename)
	if err != nil {
		return err
	}
	return w.d.add(e)
}

// finish seals the file (trailer, optional fsync) and gives it its name
// with name(temporary, final): a rename replaces an older object, a link
// fails with EEXIST when there is one. It returns the object's entry,
// verified now; on error the file is gone.
func (w *diskWriter) finish(meta Meta, name func(tmp, final string) error) (*diskEntry, error) {
	d := w.d
	if meta.Size != w.n {
		w.abort()
		return nil, fmt.Errorf("cache: commit %s: wrote %d bytes, want %d", w.key, w.n, meta.Size)
	}
	err := writeTrailer(rawWriter{w}, w.key, meta, w.n, w.crc)
	if err == nil && d.fsync {
		err = w.f.Sync()
	}
	fileSize := w.n + footerLen
	if err == nil {
		var fi os.FileInfo
		if fi, err = w.f.Stat(); err == nil {
			fileSize = fi.Size()
		}
	}
	final := filepath.Join(d.objDir, objectName(w.key))
	if err == nil {
		err = os.MkdirAll(filepath.Dir(final), 0o755)
	}
	if err == nil {
		err = name(w.f.Name(), final)
	}
	if err != nil {
		// A failed write counted itself; a link finding an object there
		// is no fault.
		if !errors.Is(err, errWrite) && !errors.Is(err, fs.ErrExist) {
			d.writeErrors.Add(1)
			d.ioError(err)
		}
		w.abort()
		return nil, fmt.Errorf("cache: commit %s: %w", w.key, err)
	}
	w.done = true
	e := newEntry(w.key, meta, final, fileSize, w.crc)
	e.verifiedAt.Store(d.now().UnixNano())
	return e, nil
}

// add indexes e, replacing an older entry for its key, and evicts what
// the budget no longer holds.
func (d *disk) add(e *diskEntry) error {
	d.mu.Lock()
	if d.failed.Load() {
		d.mu.Unlock()
		return fmt.Errorf("cache: commit %s: %s failed", e.key, d.dir)
	}
	if old, ok := d.index[e.key]; ok {
		d.removeLocked(old)
	}
	d.insertLocked(e)
	victims := d.evictLocked(0)
	d.mu.Unlock()
	d.removeFiles(victims)
	return nil
}

// abort discards an unfinished object.
func (w *diskWriter) abort() {
	if !w.done {
		w.done = true
		os.Remove(w.f.Name())
	}
}

// close releases the file; readers of the spool must be done with it.
func (w *diskWriter) close() { w.f.Close() }
