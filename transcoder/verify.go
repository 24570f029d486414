package transcoder

import (
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

// verifyManifests reads back what package wrote, as a player would: the
// master playlist, every media playlist and the MPD must parse, list
// exactly the segments on disk with durations adding up to the title's,
// and HLS and DASH must reference the same files.
func verifyManifests(dir string, pkg *packaged) error {
	want := map[string]*track{}
	for _, t := range pkg.tracks {
		want[t.name] = t
	}
	total := pkg.tracks[0].end()
	tol := 2/pkg.fps + 0.05

	data, err := os.ReadFile(filepath.Join(dir, masterName))
	if err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	master, err := hls.ParseMaster(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrVerify, masterName, err)
	}
	var uris []string
	for _, v := range master.Variants {
		uris = append(uris, v.URI)
		if v.Bandwidth < v.AverageBandwidth || v.Codecs == "" || v.Width == 0 {
			return fmt.Errorf("%w: %s: variant %s lacks BANDWIDTH, CODECS or RESOLUTION", ErrVerify, masterName, v.URI)
		}
	}
	for _, a := range master.Audio {
		uris = append(uris, a.URI)
	}
	if len(master.Variants) != pkg.nVideo || len(uris) != len(pkg.tracks) {
		return fmt.Errorf("%w: %s lists %d variants and %d audio renditions, want %d and %d", ErrVerify,
			masterName, len(master.Variants), len(master.Audio), pkg.nVideo, len(pkg.tracks)-pkg.nVideo)
	}
	hlsFiles := map[string][]string{}
	for _, u := range uris {
		name := path.Dir(u)
		t := want[name]
		if t == nil || path.Base(u) != playlistName {
			return fmt.Errorf("%w: %s references %q", ErrVerify, masterName, u)
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(u)))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrVerify, u, err)
		}
		m, err := hls.ParseMedia(data)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrVerify, u, err)
		}
		if !m.Ended || len(m.Segments) != len(t.frags) {
			return fmt.Errorf("%w: %s: %d segments (ended %v), want %d", ErrVerify, u, len(m.Segments), m.Ended, len(t.frags))
		}
		sum := 0.0
		files := []string{path.Join(name, m.MapURI)}
		for _, s := range m.Segments {
			sum += s.Duration
			if math.Round(s.Duration) > float64(m.TargetDuration) {
				return fmt.Errorf("%w: %s: segment %s exceeds the target duration", ErrVerify, u, s.URI)
			}
			files = append(files, path.Join(name, s.URI))
		}
		if math.Abs(sum-total) > tol {
			return fmt.Errorf("%w: %s: segments add up to %.3fs, want %.3fs", ErrVerify, u, sum, total)
		}
		hlsFiles[name] = files
	}

	data, err = os.ReadFile(filepath.Join(dir, mpdName))
	if err != nil {
		return fmt.Errorf("transcoder: %w", err)
	}
	mpd, err := dash.Parse(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrVerify, mpdName, err)
	}
	d, err := dash.ParseDuration(mpd.MediaPresentationDuration)
	if err != nil || math.Abs(d-total) > tol {
		return fmt.Errorf("%w: %s: duration %q, want %.3fs", ErrVerify, mpdName, mpd.MediaPresentationDuration, total)
	}
	seen := 0
	for _, as := range mpd.Periods[0].AdaptationSets {
		for _, rep := range as.Representations {
			seen++
			hf, ok := hlsFiles[rep.ID]
			st := rep.SegmentTemplate
			if !ok || st == nil || st.Timeline == nil {
				return fmt.Errorf("%w: %s: representation %q has no counterpart in HLS or no SegmentTimeline", ErrVerify, mpdName, rep.ID)
			}
			_, durs, err := st.Timeline.Expand()
			if err != nil {
				return fmt.Errorf("%w: %s: %s: %w", ErrVerify, mpdName, rep.ID, err)
			}
			init, err := dash.ExpandTemplate(st.Initialization, rep.ID, 0)
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrVerify, mpdName, err)
			}
			files := []string{init}
			var sum uint64
			for i, dd := range durs {
				f, err := dash.ExpandTemplate(st.Media, rep.ID, st.StartNumber+i)
				if err != nil {
					return fmt.Errorf("%w: %s: %w", ErrVerify, mpdName, err)
				}
				files = append(files, f)
				sum += dd
			}
			if st.Timescale == 0 || math.Abs(float64(sum)/float64(st.Timescale)-total) > tol {
				return fmt.Errorf("%w: %s: %s timeline lasts %d ticks at %d/s, want %.3fs", ErrVerify, mpdName, rep.ID, sum, st.Timescale, total)
			}
			if !sameFiles(files, hf) {
				return fmt.Errorf("%w: %s: %s references other files than its HLS playlist", ErrVerify, mpdName, rep.ID)
			}
			for _, f := range files {
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
					return fmt.Errorf("%w: %s: %w", ErrVerify, mpdName, err)
				}
			}
		}
	}
	if seen != len(pkg.tracks) {
		return fmt.Errorf("%w: %s has %d representations, want %d", ErrVerify, mpdName, seen, len(pkg.tracks))
	}
	return nil
}

func sameFiles(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
