package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrPathForbidden: an ingest request named a path it may not, because
// ingest by path is off on this node or the path lies outside its ingest
// directory. The API answers 403.
var ErrPathForbidden = errors.New("ingest: path not allowed")

// OpenSource opens the file at path, named by an ingest request, for
// reading: only a regular file under Config.IngestDir. The path must be
// absolute and have no ".." element; after its symbolic links are
// resolved it must still lie under the ingest directory (also resolved),
// so a link out of it is refused. The file is opened through an os.Root
// of the directory, so a link swapped in after the check cannot lead
// out either. Errors wrap ErrPathForbidden when the path is not allowed;
// others say the file is missing or unreadable.
func (m *Manager) OpenSource(path string) (*os.File, error) {
	dir := m.cfg.IngestDir
	if dir == "" {
		return nil, fmt.Errorf("%w: ingest by path is off on this node (start it with --ingest-dir DIR, and put the file in DIR); or upload the file as multipart/form-data", ErrPathForbidden)
	}
	outside := func() error {
		return fmt.Errorf("%w: %q is outside the ingest directory %s: put the file there, or upload it", ErrPathForbidden, path, dir)
	}
	if !filepath.IsAbs(path) || slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "..") {
		return nil, outside()
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("ingest: ingest directory: %w", err)
	}
	path = filepath.Clean(path)
	realPath, err := filepath.EvalSymlinks(path)
	if err != nil {
		_, in := within(dir, path)
		if _, inReal := within(realDir, path); !in && !inReal {
			// The same answer as for a file outside that exists: no
			// probing of the rest of the file system.
			return nil, outside()
		}
		return nil, fmt.Errorf("ingest: %q: not a readable file on this node: %w", path, err)
	}
	rel, ok := within(realDir, realPath)
	if !ok {
		return nil, outside()
	}
	root, err := os.OpenRoot(realDir)
	if err != nil {
		return nil, fmt.Errorf("ingest: ingest directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("ingest: %q: not a readable file on this node: %w", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("ingest: %q: not a regular file", path)
	}
	return f, nil
}

// within returns path relative to dir, and whether it lies under dir.
func within(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == "." || !filepath.IsLocal(rel) {
		return "", false
	}
	return rel, true
}
