package transcoder

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fillcast/fillcast/transcoder/ffmpeg"
	"github.com/fillcast/fillcast/transcoder/mp4"
)

// download is one progressive MP4 made from a video track.
type download struct {
	height int
	path   string // relative to the title directory
}

// downloadHeights picks the heights to offer: the job's list, or the top
// and lowest renditions.
func (r *run) downloadHeights(pkg *packaged) []*track {
	var want []int
	if len(r.job.Downloads) > 0 {
		want = r.job.Downloads
	} else {
		want = []int{pkg.tracks[0].height, pkg.tracks[pkg.nVideo-1].height}
	}
	var out []*track
	seen := map[int]bool{}
	for _, h := range want {
		for _, t := range pkg.tracks[:pkg.nVideo] {
			if t.height == h && !seen[h] {
				seen[h] = true
				out = append(out, t)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].height > out[j].height })
	return out
}

// downloads remuxes video renditions, with the default audio, into
// progressive MP4 files with the index first (faststart), all in one
// ffmpeg run. ffmpeg reads each rendition as the byte concatenation of
// its init and media segments (the concatf protocol), which is itself a
// valid fragmented MP4, so nothing is encoded again.
func (r *run) downloads(ctx context.Context, pkg *packaged) ([]download, error) {
	tracks := r.downloadHeights(pkg)
	if len(tracks) == 0 {
		return nil, nil
	}
	if err := os.Mkdir(filepath.Join(r.title, downloadDir), 0o755); err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	inputs := tracks
	audio := pkg.defaultAudio()
	if audio != nil {
		inputs = append(inputs[:len(inputs):len(inputs)], audio)
	}
	var args []string
	for _, t := range inputs {
		if err := r.writeConcatList(t); err != nil {
			return nil, err
		}
		args = append(args, "-i", "concatf:"+concatList(r.work, t))
	}
	var out []download
	for i, t := range tracks {
		rel := filepath.Join(downloadDir, strconv.Itoa(t.height)+"p.mp4")
		args = append(args, "-map", strconv.Itoa(i)+":v:0")
		if audio != nil {
			args = append(args, "-map", strconv.Itoa(len(tracks))+":a:0")
		}
		args = append(args, "-c", "copy", "-movflags", "+faststart", "-f", "mp4", rel)
		out = append(out, download{height: t.height, path: rel})
	}
	runner := r.t.ffmpeg
	runner.Dir = r.title
	total := pkg.tracks[0].end()
	if err := runner.Run(ctx, args, func(p ffmpeg.Progress) { r.progress(p.OutTime.Seconds()/total, p.Speed) }); err != nil {
		return nil, fmt.Errorf("transcoder: downloads: %w", err)
	}
	return out, nil
}

// concatList is the scratch file listing a track's init and segments.
func concatList(work string, t *track) string {
	return filepath.Join(work, "concat-"+t.name+".txt")
}

// writeConcatList writes the track's files, one absolute path a line,
// for ffmpeg's concatf protocol; a list file keeps the command line short
// for long titles.
func (r *run) writeConcatList(t *track) error {
	dir := filepath.Join(r.title, t.name)
	var b strings.Builder
	b.WriteString(filepath.Join(dir, initName) + "\n")
	for i := range t.frags {
		b.WriteString(filepath.Join(dir, segmentName(i+1)) + "\n")
	}
	if err := os.WriteFile(concatList(r.work, t), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	return nil
}

// verifyDownloads reads each download's index: it must come before the
// media (faststart), hold the video at the right height (and the audio
// when the title has some) and last as long as the packaged title.
func verifyDownloads(dir string, downloads []download, pkg *packaged) error {
	want := pkg.tracks[0].end()
	for _, d := range downloads {
		m, err := readMovie(filepath.Join(dir, d.path))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrVerify, d.path, err)
		}
		var video, audio int
		for _, t := range m.Tracks {
			switch t.Handler {
			case "vide":
				video++
				if t.Height != d.height {
					return fmt.Errorf("%w: %s is %dp", ErrVerify, d.path, t.Height)
				}
				if math.Abs(t.Duration-want) > 2/pkg.fps+0.05 {
					return fmt.Errorf("%w: %s lasts %.3fs, want %.3fs", ErrVerify, d.path, t.Duration, want)
				}
			case "soun":
				audio++
			}
		}
		wantAudio := 0
		if pkg.defaultAudio() != nil {
			wantAudio = 1
		}
		switch {
		case !m.Faststart:
			return fmt.Errorf("%w: %s: index after the media (no faststart)", ErrVerify, d.path)
		case video != 1 || audio != wantAudio:
			return fmt.Errorf("%w: %s has %d video and %d audio tracks, want 1 and %d", ErrVerify, d.path, video, audio, wantAudio)
		}
	}
	return nil
}

func readMovie(path string) (mp4.Movie, error) {
	f, err := os.Open(path)
	if err != nil {
		return mp4.Movie{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return mp4.Movie{}, err
	}
	return mp4.ParseMovie(f, fi.Size())
}
