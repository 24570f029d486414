package fsm

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/filelist"
)

// catalogTitle is a title as a streaming catalog has them: metadata, a
// ladder of 5 renditions and its file list's summary, or its files.
func catalogTitle(i, files int) *fillcast.Title {
	t := &fillcast.Title{
		ID: fmt.Sprintf("title-%05d", i), Name: fmt.Sprintf("The Long Title Number %d", i),
		Description: strings.Repeat("A film about a catalog that grew too large for memory. ", 4),
		Genres:      []string{"drama", "thriller"}, Year: 2000 + i%25, Cast: []string{"Ann Actor", "Bob Player", "Cy Lead"},
		Status: fillcast.StatusReady, Maturity: fillcast.MaturityAll,
	}
	for _, h := range []int{240, 360, 480, 720, 1080} {
		t.Renditions = append(t.Renditions, fillcast.Rendition{ID: fmt.Sprintf("%dp", h), Kind: "video", Width: h * 16 / 9, Height: h,
			Bandwidth: h * 4000, Codecs: "avc1.64001f"})
	}
	if files == 0 {
		t.FilesDigest, t.Bytes, t.FileCount = filelist.Digest([]byte(t.ID)), 12_000_000_000, 10_000
		t.Poster, t.Downloads = filelist.PosterPath, []string{"download/1080p.mp4"}
		return t
	}
	t.Files = append(t.Files, fillcast.File{Path: filelist.PosterPath, Size: 40_000}, fillcast.File{Path: "download/1080p.mp4", Size: 1 << 30})
	for j := range files - 2 {
		t.Files = append(t.Files, fillcast.File{Path: fmt.Sprintf("%s/seg-%05d.m4s", t.Renditions[j%5].ID, j), Size: 1_500_000,
			SHA256: fmt.Sprintf("%064x", i<<16|j)})
	}
	return t
}

// heapPerTitle applies n titles (with files files each, then published)
// to a new FSM and returns its heap bytes per title.
func heapPerTitle(t *testing.T, n, files int) float64 {
	var before, after runtime.MemStats
	// Twice: what sync.Pools hold survives one collection.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	f := New(nil)
	index := uint64(0)
	for i := range n {
		tt := catalogTitle(i, files)
		index++
		if r := f.Apply(logOf(t, index, Command{Op: OpPutTitle, Title: tt})); r != nil {
			t.Fatal(r)
		}
		if files > 0 {
			index++
			digest := f.titleDigest(tt.ID)
			if r := f.Apply(logOf(t, index, Command{Op: OpFilesPublished, ID: tt.ID, Digest: digest, ListIndex: index - 1})); r != nil {
				t.Fatal(r)
			}
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(f)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

func (f *FSM) titleDigest(id string) (d string) {
	f.Read(func(s *State) { d = s.Titles[id].FilesDigest })
	return d
}

// TestStateBytesPerTitle measures the FSM's heap a title: 5,000 titles
// with metadata, 5 renditions and a file list's summary. A title given
// with 2,000 files takes no more once its list is published: the state
// keeps none of them. (Not parallel: it reads the process's heap.)
func TestStateBytesPerTitle(t *testing.T) {
	perTitle := heapPerTitle(t, 5000, 0)
	// 20 titles each way: a new FSM's own heap, spread over them, is the
	// same in both, and 2,000 files kept would be 100 times a summary's.
	without, with := heapPerTitle(t, 20, 0), heapPerTitle(t, 20, 2000)
	t.Logf("FSM heap: %.0f bytes a title (5,000 titles with metadata, 5 renditions and a file list's summary); "+
		"of 20 titles, %.0f bytes a title given with a summary, %.0f given with 2,000 files, once published", perTitle, without, with)
	if perTitle > 8<<10 {
		t.Errorf("%.0f bytes a title, want at most 8 KiB", perTitle)
	}
	if with > 1.25*without {
		t.Errorf("a title given with 2,000 files takes %.0f bytes once published, %.0f given their summary: the state keeps files", with, without)
	}
}
