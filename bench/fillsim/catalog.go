package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
	"github.com/fillcast/fillcast/filelist"
)

// writeCatalog writes every title of tr (new releases included: studios
// deliver them before the catalog lists them) into the origin's directory
// as one rendition of synthetic segments with its file list (package
// filelist), and returns the catalog entries to register: ready, with
// their file lists' summaries, and the release time of the new ones.
func writeCatalog(root string, tr *trace.Trace, workers int) ([]fillcast.Title, error) {
	titles := make([]fillcast.Title, len(tr.Titles))
	errs := make([]error, len(tr.Titles))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			var buf []byte
			for i := range next {
				titles[i], buf, errs[i] = writeTitle(root, tr, i, buf)
			}
		})
	}
	for i := range tr.Titles {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return titles, nil
}

// writeTitle writes title i's segments and file list, reusing buf, and
// returns its catalog entry.
func writeTitle(root string, tr *trace.Trace, i int, buf []byte) (fillcast.Title, []byte, error) {
	ti := tr.Titles[i]
	t := fillcast.Title{
		ID: ti.ID, Name: "Synthetic title " + ti.ID, Status: fillcast.StatusReady,
		Renditions: []fillcast.Rendition{{ID: "720p", Kind: "video", Width: 1280, Height: 720,
			Bandwidth: int(ti.SegmentBytes * 8 / int64(tr.Config.SegmentDuration/time.Second)), Codecs: "avc1.64001f"}},
	}
	if !ti.Release.IsZero() {
		r := ti.Release
		t.Release = &r
	}
	dir := filepath.Join(root, ti.ID, "720p")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return t, buf, fmt.Errorf("fillsim: %w", err)
	}
	r := rand.NewChaCha8(seedOf(ti.ID))
	files := make([]fillcast.File, 0, ti.Segments)
	for s := range ti.Segments {
		n := tr.SegmentSize(i, s)
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		r.Read(b)
		path := tr.Path(s)
		if err := os.WriteFile(filepath.Join(root, ti.ID, path), b, 0o644); err != nil {
			return t, buf, fmt.Errorf("fillsim: write %s/%s: %w", ti.ID, path, err)
		}
		sum := sha256.Sum256(b)
		files = append(files, fillcast.File{Path: path, Size: n, SHA256: hex.EncodeToString(sum[:])})
	}
	// The title's file list, published beside its files as a packager
	// does; the catalog gets its summary.
	list, sum, err := filelist.Encode(files)
	if err != nil {
		return t, buf, fmt.Errorf("fillsim: %s: %w", ti.ID, err)
	}
	path := filepath.Join(root, filepath.FromSlash(filelist.Path(ti.ID, sum.Digest)))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return t, buf, fmt.Errorf("fillsim: %w", err)
	}
	if err := os.WriteFile(path, list, 0o644); err != nil {
		return t, buf, fmt.Errorf("fillsim: write %s's file list: %w", ti.ID, err)
	}
	sum.SetOn(&t)
	return t, buf, nil
}

func seedOf(id string) [32]byte {
	return sha256.Sum256([]byte("fillsim " + id))
}
