package cache

import (
	"context"
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
	"syscall"
	"time"
	"unsafe"

	"github.com/fillcast/fillcast/appliance/evict"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// diskEntry is an object in the disk tier's index.
type diskEntry struct {
	key      string
	meta     Meta
	path     string
	cpath    []byte // path and a NUL: the hit path opens it without allocating
	fileSize int64  // body + trailer + footer: what counts against the budget
	crc      uint32 // body checksum from the footer
	// verifiedAt is when (Unix ns) the body last matched crc; 0: never in
	// this process.
	verifiedAt atomic.Int64
	// moving marks a victim of the eviction being demoted to the disk
	// class: it is still served from here until the move ends. Guarded
	// by its directory's mu.
	moving bool
	// promoting marks an object queued to move to flash, so that its
	// hits queue it once.
	promoting atomic.Bool
}

// diskOptions are what every directory of the disk tier shares.
type diskOptions struct {
	fsync     bool
	verifyAge int64 // ns
	now       func() time.Time
	log       *slog.Logger
	// onEvict is told each key the budget pushed out, so the memory tier
	// never holds an object the disk tier no longer does.
	onEvict func(key string)
	// newPolicy returns the eviction policy of a directory of the bytes
	// given; nil means S3-FIFO.
	newPolicy func(bytes int64) evict.Policy
}

// disk is one directory of the disk tier: one file per object under
// dir/objects, an index in memory rebuilt from the files at start-up, and
// an eviction policy that keeps the files' total size under max. A disk
// whose I/O fails is marked failed (see fail) and holds nothing from then
// on.
type disk struct {
	diskOptions
	dir            string
	objDir, tmpDir string
	max            int64
	seed           uint64 // its identity in placement: hash of dir
	class          int    // flashIdx or diskIdx
	owner          tmpOwner
	// demote, when set (a flash directory beside a disk class), is
	// offered each victim of the budget: it reports whether it queued
	// the victim's move to the disk class.
	demote func(from *disk, e *diskEntry) bool

	failed atomic.Bool

	mu      sync.Mutex
	failErr string // why it failed
	index   map[string]*diskEntry
	used    int64
	// transit are the bytes of victims still here while being demoted:
	// the budget no longer counts them.
	transit int64
	// lastVictim is the key the budget pushed out last: what an object
	// must be more popular than to be admitted when the directory is
	// full.
	lastVictim string
	policy     evict.Policy
	// pinned keys are planned by the fill manifest: they stay out of the
	// eviction order, so pull-through traffic cannot push them out.
	pinned map[string]bool
	// pinnedBytes are the indexed pinned objects' bytes: what eviction
	// cannot free.
	pinnedBytes int64
	// gen counts the changes of the index, pinGen those of pinned keys
	// (and failures): see Cache.Generations.
	gen, pinGen atomic.Uint64

	evictions, corrupt, writeErrors       atomic.Int64
	scrubbed, scrubbedBytes, scrubCorrupt atomic.Int64
}

// openDisk opens the directory dc, clearing the temporary files of dead
// processes and rebuilding the index. On error it returns the disk marked
// failed, with the error.
func openDisk(dc DirConfig, o diskOptions) (*disk, error) {
	d := &disk{
		diskOptions: o,
		dir:         dc.Path,
		objDir:      filepath.Join(dc.Path, "objects"),
		tmpDir:      filepath.Join(dc.Path, "tmp"),
		max:         dc.Bytes,
		seed:        hashString(dc.Path),
		class:       classIndex(dc.Class),
		index:       map[string]*diskEntry{},
	}
	d.policy = d.policyFor(dc.Bytes)
	d.owner.dir = filepath.Join(dc.Path, "owners")
	err := d.load()
	if err != nil {
		d.fail(err)
	}
	return d, err
}

func (d *disk) load() error {
	for _, p := range []string{d.objDir, d.tmpDir, d.owner.dir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
	}
	// Temporary files belong to fills in progress: a previous process's
	// are never valid objects, but during a zero-downtime upgrade the old
	// process is still filling, so only the files of processes that no
	// longer hold their owner lock go.
	if err := d.clearTmp(); err != nil {
		return err
	}
	return d.rebuild()
}

// policyFor returns a new eviction policy for bytes.
func (d *disk) policyFor(bytes int64) evict.Policy {
	if d.newPolicy == nil {
		return evict.NewTinyLFU(bytes, nil)
	}
	return d.newPolicy(bytes)
}

// close releases the disk's owner lock: from then on another process
// clears its temporary files.
func (d *disk) close() { d.owner.release() }

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
// *os.File), checking the body checksum first when it was not verified
// within verifyAge (always on its first read in this process). A corrupt
// object is dropped and errCorrupt returned, so the caller refetches it.
func (d *disk) open(e *diskEntry) (int, error) {
	fd, err := openEntry(e)
	if err != nil {
		if !d.ioError(err) {
			d.drop(e, err)
		}
		return -1, fmt.Errorf("cache: open %s: %w", e.key, err)
	}
	if d.now().UnixNano()-e.verifiedAt.Load() >= d.verifyAge {
		buf := verifyBufs.Get().(*[]byte)
		crc, err := crcFD(context.Background(), fd, e.meta.Size, *buf, nil, nil)
		verifyBufs.Put(buf)
		if err := d.settle(e, crc, err); err != nil {
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
		if !d.ioError(err) {
			d.drop(e, err)
		}
		return nil, fmt.Errorf("cache: open %s: %w", e.key, err)
	}
	defer f.Close()
	body := make([]byte, e.meta.Size)
	if _, err := f.ReadAt(body, 0); err != nil && !(err == io.EOF && len(body) == 0) {
		return nil, d.settle(e, 0, err)
	}
	if err := d.settle(e, crc32.Checksum(body, crcTable), nil); err != nil {
		return nil, err
	}
	return body, nil
}

// settle ends a verification of e: readErr is why its body could not be
// read, else crc is the body's checksum. A body that cannot be read or
// does not match is dropped (and a read error may take the disk out of
// service); a matching one counts as verified now.
func (d *disk) settle(e *diskEntry, crc uint32, readErr error) error {
	if readErr != nil {
		if !d.ioError(readErr) {
			d.drop(e, readErr)
		}
		return fmt.Errorf("cache: read %s: %w", e.key, readErr)
	}
	if crc != e.crc {
		d.drop(e, errCorrupt)
		return fmt.Errorf("%w: %s: body checksum mismatch", errCorrupt, e.key)
	}
	e.verifiedAt.Store(d.now().UnixNano())
	return nil
}

// newEntry returns the index entry of an object file.
func newEntry(key string, meta Meta, path string, fileSize int64, crc uint32) *diskEntry {
	return &diskEntry{key: key, meta: meta, path: path, cpath: append([]byte(path), 0), fileSize: fileSize, crc: crc}
}

// openEntry opens e's file for reading as a raw descriptor. It calls
// openat itself because unix.Open allocates a copy of the path to end it
// with a NUL, and a disk hit allocates nothing.
func openEntry(e *diskEntry) (int, error) {
	cwd := unix.AT_FDCWD // a variable: the constant is negative
	for {
		fd, _, errno := syscall.Syscall6(unix.SYS_OPENAT, uintptr(cwd), uintptr(unsafe.Pointer(&e.cpath[0])),
			uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, &fs.PathError{Op: "open", Path: e.path, Err: errno}
	}
}

// verifyBufs are the buffers of verifications on the read path.
var verifyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// crcFD returns the checksum of the first size bytes of fd, read into buf
// with pread, each read first waiting for lim when it is not nil, and
// written to w as well when it is not nil (a write error is returned as
// it is).
func crcFD(ctx context.Context, fd int, size int64, buf []byte, lim *rate.Limiter, w io.Writer) (uint32, error) {
	var crc uint32
	for off := int64(0); off < size; {
		p := buf[:min(int64(len(buf)), size-off)]
		if lim != nil {
			if err := lim.WaitN(ctx, len(p)); err != nil {
				return 0, err
			}
		}
		n, err := unix.Pread(fd, p, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &fs.PathError{Op: "read", Path: "object", Err: err}
		case n == 0:
			return 0, io.ErrUnexpectedEOF
		}
		if w != nil {
			if _, err := w.Write(p[:n]); err != nil {
				return 0, err
			}
		}
		crc = crc32.Update(crc, crcTable, p[:n])
		off += int64(n)
	}
	return crc, nil
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

// create starts writing a new object of size bytes (-1: unknown) into a
// temporary file this process owns.
func (d *disk) create(key string, size int64) (*diskWriter, error) {
	name, err := d.owner.tmpName(d.tmpDir)
	var f *os.File
	if err == nil {
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		d.writeErrors.Add(1)
		d.ioError(err)
		return nil, fmt.Errorf("cache: create %s: %w", name, err)
	}
	return &diskWriter{d: d, f: f, key: key, size: size}, nil
}

func (d *disk) insertLocked(e *diskEntry) {
	d.index[e.key] = e
	d.used += e.fileSize
	d.changedLocked(e.key)
	if d.pinned[e.key] {
		d.pinnedBytes += e.fileSize
	} else {
		d.policy.Insert(e.key, e.fileSize)
	}
}

// changedLocked counts a change of key in the index.
func (d *disk) changedLocked(key string) {
	d.gen.Add(1)
	if d.pinned[key] {
		d.pinGen.Add(1)
	}
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
	d.changedLocked(e.key)
	if d.pinned[e.key] {
		d.pinnedBytes -= e.fileSize
	}
	if e.moving {
		e.moving = false
		d.transit -= e.fileSize
	}
	d.policy.Remove(e.key)
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
