package transcoder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/fillcast/fillcast"
)

// hashTree lists every regular file under dir with its size and SHA-256,
// paths relative to dir with forward slashes, sorted.
func hashTree(ctx context.Context, dir string) ([]fillcast.File, error) {
	var files []fillcast.File
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.CopyBuffer(h, f, buf)
		if err != nil {
			return err
		}
		files = append(files, fillcast.File{Path: filepath.ToSlash(rel), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transcoder: hash: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// publish moves the finished title directory to out with renames only, so
// a reader sees either the old title or the new one. An existing out is
// moved aside first (only when overwrite is set) and removed afterwards;
// an empty existing directory is simply replaced.
func publish(title, out string, overwrite bool) error {
	err := os.Rename(title, out)
	if err == nil {
		return nil
	}
	entries, rerr := os.ReadDir(out)
	if rerr != nil {
		return fmt.Errorf("transcoder: publish: %w", err)
	}
	if len(entries) == 0 {
		if err := os.Remove(out); err != nil {
			return fmt.Errorf("transcoder: publish: %w", err)
		}
		if err := os.Rename(title, out); err != nil {
			return fmt.Errorf("transcoder: publish: %w", err)
		}
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%w: %s appeared while transcoding", ErrOutputExists, out)
	}
	old := filepath.Join(filepath.Dir(title), "old")
	if err := os.Rename(out, old); err != nil {
		return fmt.Errorf("transcoder: publish: move old title aside: %w", err)
	}
	if err := os.Rename(title, out); err != nil {
		// Put the old title back so a failed publish changes nothing.
		return errors.Join(fmt.Errorf("transcoder: publish: %w", err), os.Rename(old, out))
	}
	return nil
}
