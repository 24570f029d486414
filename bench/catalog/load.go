package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/internal/apicall"
	"github.com/fillcast/fillcast/filelist"
)

// shape is the generated catalog: how many titles, and the files of each.
type shape struct {
	titles, segments int
}

// ladder is every title's renditions: four video rungs and audio, each
// with its segments' mean size.
var ladder = []struct {
	r       fillcast.Rendition
	segment int64
}{
	{fillcast.Rendition{ID: "2160p", Kind: "video", Width: 3840, Height: 2160, Bandwidth: 15_000_000, Codecs: "hvc1.2.4.L153.B0"}, 7_500_000},
	{fillcast.Rendition{ID: "1080p", Kind: "video", Width: 1920, Height: 1080, Bandwidth: 5_000_000, Codecs: "avc1.640028"}, 2_500_000},
	{fillcast.Rendition{ID: "720p", Kind: "video", Width: 1280, Height: 720, Bandwidth: 3_000_000, Codecs: "avc1.64001f"}, 1_500_000},
	{fillcast.Rendition{ID: "480p", Kind: "video", Width: 854, Height: 480, Bandwidth: 1_200_000, Codecs: "avc1.64001e"}, 600_000},
	{fillcast.Rendition{ID: "audio", Kind: "audio", Bandwidth: 128_000, Codecs: "mp4a.40.2", Language: "en"}, 64_000},
}

var genres = []string{"drama", "comedy", "documentary", "thriller", "animation", "romance", "science fiction", "crime"}

var words = strings.Fields(`river night glass harbor winter signal orchard lantern paper
	mountain echo velvet summer archive falcon meridian copper garden static horizon`)

// titleID is the id of title i.
func titleID(i int) string { return fmt.Sprintf("c%05d", i) }

// title is generated title i's record, without files.
func (sh shape) title(i int) fillcast.Title {
	r := rand.New(rand.NewPCG(uint64(i), 0xca7a))
	name := make([]string, 2+r.IntN(3))
	for k := range name {
		name[k] = words[r.IntN(len(words))]
	}
	t := fillcast.Title{
		ID:          titleID(i),
		Name:        strings.Join(name, " "),
		Description: "A generated title of the catalog benchmark, number " + strconv.Itoa(i) + ".",
		Genres:      []string{genres[i%len(genres)], genres[(i/len(genres)+3)%len(genres)]},
		Year:        1960 + r.IntN(66),
		Cast:        []string{"Actor " + strconv.Itoa(r.IntN(5000)), "Actor " + strconv.Itoa(r.IntN(5000))},
		Status:      fillcast.StatusReady,
		Maturity:    fillcast.Maturity13,
	}
	for _, l := range ladder {
		t.Renditions = append(t.Renditions, l.r)
	}
	return t
}

// files are title i's packaged files: playlists, a poster, each
// rendition's init segment, playlist and segments, and a download, with
// sizes near the rendition's and random checksums (nothing is read back).
func (sh shape) files(i int) []fillcast.File {
	r := rand.New(rand.NewPCG(uint64(i), 0xf11e))
	var sum [32]byte
	file := func(path string, size int64) fillcast.File {
		for k := 0; k < len(sum); k += 8 {
			v := r.Uint64()
			for b := range 8 {
				sum[k+b] = byte(v >> (8 * b))
			}
		}
		return fillcast.File{Path: path, Size: size, SHA256: hex.EncodeToString(sum[:])}
	}
	out := make([]fillcast.File, 0, 4+len(ladder)*(2+sh.segments))
	out = append(out, file("master.m3u8", 1200), file("manifest.mpd", 4000), file(filelist.PosterPath, 180_000))
	for _, l := range ladder {
		out = append(out, file(l.r.ID+"/init.mp4", 900), file(l.r.ID+"/playlist.m3u8", int64(60*sh.segments)))
		for s := 1; s <= sh.segments; s++ {
			out = append(out, file(fmt.Sprintf("%s/seg-%05d.m4s", l.r.ID, s), l.segment*int64(90+r.IntN(20))/100))
		}
	}
	return append(out, file(filelist.DownloadDir+"1080p.mp4", 2_500_000*int64(sh.segments)/4))
}

// loader registers titles with one system.
type loader struct {
	sys    *system
	shape  shape
	legacy bool // the previous release: titles carry their files
	client *http.Client
	done   atomic.Int64
}

// load registers titles [from, to) on workers goroutines. The current
// release gets each title's list written into the origin's directory,
// as a packager publishes it, and the title with its summary; the
// previous release gets the files in the title.
func (l *loader) load(ctx context.Context, from, to, workers int) error {
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		node := l.sys.nodes[w%len(l.sys.nodes)] // writes are forwarded to the leader
		wg.Go(func() {
			for i := range next {
				if err := l.one(ctx, node, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				l.done.Add(1)
			}
		})
	}
	for i := from; i < to; i++ {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(append(errs, ctx.Err())...)
}

func (l *loader) one(ctx context.Context, node *proc, i int) error {
	t := l.shape.title(i)
	files := l.shape.files(i)
	if l.legacy {
		t.Files = files
	} else {
		body, s, err := filelist.Encode(files)
		if err != nil {
			return err
		}
		p := filepath.Join(l.sys.root, filepath.FromSlash(filelist.Path(t.ID, s.Digest)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			return fmt.Errorf("publish %s's list: %w", t.ID, err)
		}
		s.SetOn(&t)
	}
	return apicall.Retry(ctx, 2*time.Minute, func() (int, error) {
		code, err := apicall.Call(ctx, l.client, "POST", node.url+"/v1/titles", t, adminToken, http.StatusCreated, nil)
		if code == http.StatusConflict { // an earlier try went through
			return code, nil
		}
		return code, err
	})
}
