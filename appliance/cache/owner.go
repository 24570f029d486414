package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Temporary files belong to the fills in progress of the process that
// writes them, and of no other: a process that died leaves its files
// behind, and the next process to open the directory removes them, while
// during a zero-downtime upgrade the old process is still filling and its
// files must stay. Ownership is a lock, not a PID (a PID is reused, and
// a zombie's still answers): each process that writes into a directory
// first creates owners/{owner}.lock and holds an exclusive flock on it
// for as long as it has the directory open; its temporary files are
// tmp/{owner}-{sequence}. The kernel drops the lock when the process
// dies, however it dies, so a lock that can be taken marks the files of
// its owner as leftovers.

// tmpOwner is this process's claim on a directory's temporary files, made
// on the first one it creates.
type tmpOwner struct {
	dir string // the owners directory

	mu     sync.Mutex
	name   string   // "" until claimed
	lock   *os.File // holds the flock
	seq    uint64
	closed bool
}

// tmpName returns the path of a new temporary file in tmpDir.
func (o *tmpOwner) tmpName(tmpDir string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return "", ErrClosed
	}
	if o.lock == nil {
		if err := o.claim(); err != nil {
			return "", err
		}
	}
	o.seq++
	return filepath.Join(tmpDir, o.name+"-"+strconv.FormatUint(o.seq, 10)), nil
}

// claim creates and locks a lock file of a new owner name.
func (o *tmpOwner) claim() error {
	for range 3 {
		var r [6]byte
		rand.Read(r[:])
		name := strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(r[:])
		path := filepath.Join(o.dir, name+".lock")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("cache: claim temporary files: %w", err)
		}
		if err := flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("cache: lock %s: %w", path, err)
		}
		// Another process clearing leftovers may have taken the new file
		// for a dead owner's between its creation and the lock, and
		// removed it: the lock then guards nothing, so start again.
		fi, ferr := f.Stat()
		pi, perr := os.Stat(path)
		if ferr == nil && perr == nil && os.SameFile(fi, pi) {
			o.name, o.lock = name, f
			return nil
		}
		f.Close()
	}
	return errors.New("cache: claim temporary files: the lock file keeps vanishing")
}

// release gives the claim up (the disk closes): from then on another
// process may clear what is left.
func (o *tmpOwner) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

func (o *tmpOwner) is(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return name != "" && name == o.name
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// clearTmp removes the temporary files (and lock files) of owners that no
// longer hold their lock. Files named "{pid}-{sequence}" without a lock
// file, written by processes from before the locks, are kept while their
// PID runs.
func (d *disk) clearTmp() error {
	tmps, err := readDirNames(d.tmpDir)
	if err != nil {
		return err
	}
	locks, err := readDirNames(d.owner.dir)
	if err != nil {
		return err
	}
	files := map[string][]string{} // owner → its temporary files
	for _, n := range tmps {
		owner, _, _ := strings.Cut(n, "-")
		files[owner] = append(files[owner], filepath.Join(d.tmpDir, n))
	}
	for _, n := range locks {
		if owner, ok := strings.CutSuffix(n, ".lock"); ok {
			if _, ok := files[owner]; !ok {
				files[owner] = nil
			}
		}
	}
	for owner, paths := range files {
		if d.owner.is(owner) {
			continue
		}
		lock, live := d.ownerLive(owner)
		if live {
			continue
		}
		for _, p := range paths {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("cache: clear %s: %w", d.tmpDir, err)
			}
		}
		if lock != nil {
			os.Remove(lock.Name())
			lock.Close()
		}
	}
	return nil
}

// ownerLive reports whether owner still runs. When it does not and has a
// lock file, that file is returned open and locked: the caller removes it
// after the owner's temporary files, then closes it.
func (d *disk) ownerLive(owner string) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(d.owner.dir, owner+".lock"), os.O_RDWR, 0)
	if err != nil {
		pid, perr := strconv.Atoi(owner)
		return nil, errors.Is(err, fs.ErrNotExist) && perr == nil && pid != os.Getpid() && unix.Kill(pid, 0) == nil
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, true // held (EWOULDBLOCK), or unknowable: keep
	}
	return f, false
}

func readDirNames(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: read %s: %w", dir, err)
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name()
	}
	return names, nil
}
