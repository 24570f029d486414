package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// The disk tier's index lives in memory and is built from the object
// files: all of them at start-up (rebuild), and the ones another process
// added meanwhile after a zero-downtime upgrade (adopt). Both go through
// scan.

// rebuild builds the index from the object files at start-up.
func (d *disk) rebuild() error {
	_, err := d.scan(context.Background())
	return err
}

// adopt brings the index in line with the directory once the process
// upgraded from has exited: both processes wrote, evicted and purged in it
// while they ran together. Entries whose file that process removed or
// replaced are forgotten (a replaced one is then loaded again by the
// scan), the object files the index does not hold are indexed, and the
// temporary files it left are cleared. It returns how many objects it
// added.
func (d *disk) adopt(ctx context.Context) (int, error) {
	if err := d.clearTmp(); err != nil {
		return 0, err
	}
	d.mu.Lock()
	entries := make([]*diskEntry, 0, len(d.index))
	for _, e := range d.index {
		entries = append(entries, e)
	}
	d.mu.Unlock()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		fi, err := os.Stat(e.path)
		if err == nil && fi.Size() == e.fileSize {
			continue
		}
		d.mu.Lock()
		gone := d.index[e.key] == e
		if gone {
			d.removeLocked(e)
		}
		d.mu.Unlock()
		if gone && d.onEvict != nil {
			d.onEvict(e.key) // the memory tier may hold it as well
		}
	}
	return d.scan(ctx)
}

// scan walks the object files, drops the ones that are torn or do not
// belong where they are, and indexes the rest that the index does not
// hold, oldest first so that the eviction order roughly survives a
// restart. Bodies are checked lazily, on their first read.
func (d *disk) scan(ctx context.Context) (int, error) {
	type found struct {
		e     *diskEntry
		mtime int64
	}
	d.mu.Lock()
	known := make(map[string]bool, len(d.index))
	for _, e := range d.index {
		known[e.path] = true
	}
	d.mu.Unlock()
	var all []found
	err := filepath.WalkDir(d.objDir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || known[path] {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		e, mtime, err := d.loadEntry(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // evicted or purged meanwhile
		}
		if err != nil && !errors.Is(err, errCorrupt) {
			if d.ioError(err) {
				return err
			}
		}
		if err != nil {
			d.log.Warn("cache: dropping object file", "path", path, "err", err)
			d.corrupt.Add(1)
			os.Remove(path)
			return nil
		}
		all = append(all, found{e, mtime})
		return nil
	})
	if err != nil {
		d.ioError(err)
		return 0, fmt.Errorf("cache: scan %s: %w", d.objDir, err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime < all[j].mtime })
	added := 0
	d.mu.Lock()
	for _, f := range all {
		if d.failed.Load() {
			break
		}
		if _, ok := d.index[f.e.key]; ok {
			continue // committed by this process while the scan ran
		}
		d.insertLocked(f.e)
		added++
	}
	victims := d.evictLocked(0)
	d.mu.Unlock()
	d.removeFiles(victims)
	return added, nil
}

func (d *disk) loadEntry(path string) (*diskEntry, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	t, crc, err := readTrailer(f, fi.Size())
	if err != nil {
		return nil, 0, err
	}
	if want := filepath.Join(d.objDir, objectName(t.Key)); want != path {
		return nil, 0, fmt.Errorf("%w: key %q belongs at %s", errCorrupt, t.Key, want)
	}
	return newEntry(t.Key, t.Meta, path, fi.Size(), crc), fi.ModTime().UnixNano(), nil
}
