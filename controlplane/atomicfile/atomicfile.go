// Package atomicfile writes the small files a control-plane node keeps
// beside its raft log (event-log snapshots, popularity) so that a crash
// or a power cut leaves either the old file or the whole new one: write
// to a temporary name, fsync, rename over the old file, fsync the
// directory so that the rename itself is durable.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// TmpSuffix is added to the path for the temporary file; a crash can
// leave one behind, which the next WriteFile of the same path replaces.
const TmpSuffix = ".tmp"

// WriteFile writes b to path atomically and durably, readable by all
// (0644).
func WriteFile(path string, b []byte) error { return WriteFileMode(path, b, 0o644) }

// WriteFileMode is WriteFile with the file's permissions: a secret
// written 0600 is never readable by others, not even as the temporary
// file (a crash's leftover, whatever its mode, is removed first).
func WriteFileMode(path string, b []byte, perm os.FileMode) error {
	tmp := path + TmpSuffix
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making the creations, renames and removals
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: fsync %s: %w", dir, err)
	}
	return nil
}
