package cache

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fillcast/fillcast/appliance/evict"
	"golang.org/x/sys/unix"
)

// diskEntry is an object in the disk tier's index.
type diskEntry struct {
	key      string
	meta     Meta
	path     string
	fileSize int64  // body + trailer + footer: what counts against the budget
	crc      uint32 // body checksum from the footer
	verified atomic.Bool
}

// disk is the disk tier: one file per object under dir/objects, an index
// in memory rebuilt from the files at start-up, and an eviction policy that
// keeps the files' total size under max.
type disk struct {
	objDir, tmpDir string
	max            int64
	fsync          bool
	log            *slog.Logger
	// onEvict is told each key the budget pushed out, so the memory tier
	// never holds an object the disk tier no longer does.
	onEvict func(key string)

	mu     sync.Mutex
	index  map[string]*diskEntry
	used   int64
	policy evict.Policy
	// pinned keys are planned by the fill manifest: they stay out of the
	// eviction order, so pull-through traffic cannot push them out.
	pinned map[string]bool

	evictions, corrupt, writeErrors atomic.Int64
	tmpSeq                          atomic.Uint64
}

func openDisk(dir string, max int64, fsync bool, log *slog.Logger) (*disk, error) {
	d := &disk{
		objDir: filepath.Join(dir, "objects"),
		tmpDir: filepath.Join(dir, "tmp"),
		max:    max,
		fsync:  fsync,
		log:    log,
		index:  map[string]*diskEntry{},
		policy: evict.NewS3FIFO(max, 0.1),
	}
	// Temporary files belong to fills in progress: a previous process's
	// are never valid objects, but during a zero-downtime upgrade the old
	// process is still filling, so only the files of dead processes go.
	if err := clearTmp(d.tmpDir, false); err != nil {
		return nil, err
	}
	for _, p := range []string{d.objDir, d.tmpDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	if err := d.rebuild(); err != nil {
		return nil, err
	}
	return d, nil
}

// lookup returns the entry for key and records the access.
func (d *disk) lookup(key string) (*diskEntry, bool) {
	d.mu.Lock()
	e, ok := d.index[key]
	if ok {
		d.policy.Access(e.key)
	}
	d.mu.Unlock()
	return e, ok
}

// open returns a descriptor of the object's file (a raw one: reads are
// pread and sendfile, so it needs neither the runtime's poller nor an
// *os.File), checking the body checksum the first time the object is read
// in this process. A corrupt object is dropped and errCorrupt returned, so
// the caller refetches it.
func (d *disk) open(e *diskEntry) (int, error) {
	fd, err := unix.Open(e.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		d.drop(e, err)
		return -1, fmt.Errorf("cache: open %s: %w", e.key, err)
	}
	if !e.verified.Load() {
		r := &FileRange{fd: fd, end: e.meta.Size}
		if err := d.verify(e, bufio.NewReaderSize(r, 256<<10), nil); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// readAll reads and verifies the whole body.
func (d *disk) readAll(e *diskEntry) ([]byte, error) {
	f, err := os.Open(e.path)
	if err != nil {
		d.drop(e, err)
		return nil, fmt.Errorf("cache: open %s: %w", e.key, err)
	}
	defer f.Close()
	body := make([]byte, e.meta.Size)
	if _, err := f.ReadAt(body, 0); err != nil && !(err == io.EOF && len(body) == 0) {
		d.drop(e, err)
		return nil, fmt.Errorf("cache: read %s: %w", e.key, err)
	}
	if err := d.verify(e, nil, body); err != nil {
		return nil, err
	}
	return body, nil
}

// verify checks the body, read from r or given whole, against its CRC.
func (d *disk) verify(e *diskEntry, r io.Reader, body []byte) error {
	var crc uint32
	if body != nil {
		crc = crc32.Checksum(body, crcTable)
	} else {
		h := crc32.New(crcTable)
		if _, err := io.Copy(h, r); err != nil {
			d.drop(e, err)
			return fmt.Errorf("cache: read %s: %w", e.key, err)
		}
		crc = h.Sum32()
	}
	if crc != e.crc {
		d.drop(e, errCorrupt)
		return fmt.Errorf("%w: %s: body checksum mismatch", errCorrupt, e.key)
	}
	e.verified.Store(true)
	return nil
}

// drop removes a damaged or vanished object from the index and the disk.
func (d *disk) drop(e *diskEntry, why error) {
	d.log.Warn("cache: dropping object", "key", e.key, "err", why)
	d.corrupt.Add(1)
	d.mu.Lock()
	cur, ok := d.index[e.key]
	if ok && cur == e {
		d.removeLocked(e)
	}
	d.mu.Unlock()
	if ok && cur == e {
		os.Remove(e.path)
	}
}

// create starts writing a new object into a temporary file.
func (d *disk) create(key string) (*diskWriter, error) {
	name := filepath.Join(d.tmpDir, fmt.Sprintf("%d-%d", os.Getpid(), d.tmpSeq.Add(1)))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		d.writeErrors.Add(1)
		return nil, fmt.Errorf("cache: create %s: %w", name, err)
	}
	return &diskWriter{d: d, f: f, key: key}, nil
}

// commit finishes w: trailer, optional fsync, rename into place, index,
// evict. meta.Size must equal the bytes written.
//
// Objects are fsynced only with Config.Fsync: a cache may lose what it
// wrote in the seconds before a power cut, but the footer's lengths and
// CRCs guarantee that what survives torn is dropped, never served.
func (w *diskWriter) commit(meta Meta) error {
	d := w.d
	if meta.Size != w.n {
		return fmt.Errorf("cache: commit %s: wrote %d bytes, want %d", w.key, w.n, meta.Size)
	}
	err := writeTrailer(w.f, w.key, meta, w.n, w.crc)
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
		err = os.Rename(w.f.Name(), final)
	}
	if err != nil {
		d.writeErrors.Add(1)
		w.abort()
		return fmt.Errorf("cache: commit %s: %w", w.key, err)
	}
	w.done = true
	e := &diskEntry{key: w.key, meta: meta, path: final, fileSize: fileSize, crc: w.crc}
	e.verified.Store(true)
	d.mu.Lock()
	if old, ok := d.index[w.key]; ok {
		d.removeLocked(old)
	}
	d.insertLocked(e)
	victims := d.evictLocked()
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

func (d *disk) insertLocked(e *diskEntry) {
	d.index[e.key] = e
	d.used += e.fileSize
	if !d.pinned[e.key] {
		d.policy.Insert(e.key, e.fileSize)
	}
}

// setPinned replaces the pinned set: newly pinned objects leave the
// eviction order, unpinned ones join it (as new arrivals, so the ones no
// longer planned and not requested go first).
func (d *disk) setPinned(keys map[string]bool) {
	d.mu.Lock()
	old := d.pinned
	d.pinned = keys
	for k, e := range d.index {
		switch was, is := old[k], keys[k]; {
		case was && !is:
			d.policy.Insert(k, e.fileSize)
		case !was && is:
			d.policy.Remove(k)
		}
	}
	victims := d.evictLocked()
	d.mu.Unlock()
	d.removeFiles(victims)
}

// has reports whether key is stored, without counting an access.
func (d *disk) has(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.index[key]
	return ok
}

func (d *disk) removeLocked(e *diskEntry) {
	delete(d.index, e.key)
	d.used -= e.fileSize
	d.policy.Remove(e.key)
}

// evictLocked removes entries until the tier is within budget and returns
// them; their files are removed outside the lock.
func (d *disk) evictLocked() []*diskEntry {
	var victims []*diskEntry
	for d.used > d.max {
		key, ok := d.policy.Victim()
		if !ok {
			break
		}
		e, ok := d.index[key]
		if !ok {
			continue
		}
		delete(d.index, key)
		d.used -= e.fileSize
		victims = append(victims, e)
	}
	d.evictions.Add(int64(len(victims)))
	return victims
}

func (d *disk) removeFiles(es []*diskEntry) {
	for _, e := range es {
		if d.onEvict != nil {
			d.onEvict(e.key)
		}
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cache: remove evicted object", "key", e.key, "err", err)
		}
	}
}

// removePrefix removes every object whose key starts with prefix and
// returns their keys.
func (d *disk) removePrefix(prefix string) []string {
	d.mu.Lock()
	var gone []*diskEntry
	for k, e := range d.index {
		if strings.HasPrefix(k, prefix) {
			d.removeLocked(e)
			gone = append(gone, e)
		}
	}
	d.mu.Unlock()
	for _, e := range gone {
		os.Remove(e.path)
	}
	keys := make([]string, len(gone))
	for i, e := range gone {
		keys[i] = e.key
	}
	return keys
}

// usage returns the bytes and objects held.
func (d *disk) usage() (used int64, objects int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used, len(d.index)
}
