package transcoder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/transcoder/dash"
	"github.com/fillcast/fillcast/transcoder/hls"
)

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install ffmpeg); skipping tests that run it", bin)
		}
	}
}

// source describes a generated test input.
type source struct {
	width, height, fps int
	seconds            float64
	// languages adds one sine audio track per entry ("" for untagged).
	languages []string
	// pattern is the lavfi video source; default testsrc2.
	pattern string
	// ext is the container; default mp4.
	ext string
}

// makeSource generates a small source file with ffmpeg and returns its
// path.
func makeSource(t testing.TB, dir, name string, s source) string {
	t.Helper()
	if s.pattern == "" {
		s.pattern = "testsrc2"
	}
	if s.ext == "" {
		s.ext = "mp4"
	}
	path := filepath.Join(dir, name+"."+s.ext)
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("%s=size=%dx%d:rate=%d:duration=%g", s.pattern, s.width, s.height, s.fps, s.seconds)}
	for i := range s.languages {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=44100:duration=%g", 300+200*i, s.seconds))
	}
	args = append(args, "-map", "0:v")
	for i, lang := range s.languages {
		args = append(args, "-map", fmt.Sprintf("%d:a", i+1))
		if lang != "" {
			args = append(args, fmt.Sprintf("-metadata:s:a:%d", i), "language="+lang)
		}
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make source %s: %v\n%s", name, err, out)
	}
	return path
}

// testConfig is the default config with a faster x264 preset, so the
// suite stays quick; the pipeline is the same. (ultrafast would turn off
// CABAC and 8x8 transforms and so signal Constrained Baseline, not High.)
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Preset = "superfast"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func newTranscoder(t testing.TB) *Transcoder {
	t.Helper()
	tc, err := New(testConfig())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tc
}

// checkNoLeftovers fails if anything but want remains in dir (temporary
// siblings included).
func checkNoLeftovers(t testing.TB, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}

var codecRE = regexp.MustCompile(`^avc1\.64[0-9a-f]{4}$`)

// checkTitle checks a published title: the docs/design.md §6.3 layout, the
// result's files against the disk, the renditions, and that ffmpeg plays
// both the HLS and the DASH presentation from start to end.
func checkTitle(t *testing.T, res *Result, wantHeights []int, wantAudio []string) {
	t.Helper()
	out := res.Output
	var heights []int
	var audio []string
	for _, r := range res.Renditions {
		switch r.Kind {
		case "video":
			heights = append(heights, r.Height)
			if r.Width%2 != 0 || r.Height%2 != 0 {
				t.Errorf("%s: odd size %dx%d", r.ID, r.Width, r.Height)
			}
			if !codecRE.MatchString(r.Codecs) {
				t.Errorf("%s: codecs %q, want avc1.64xxxx (High)", r.ID, r.Codecs)
			}
		case "audio":
			audio = append(audio, r.ID+":"+r.Language)
			if r.Codecs != "mp4a.40.2" {
				t.Errorf("%s: codecs %q, want mp4a.40.2", r.ID, r.Codecs)
			}
		default:
			t.Errorf("%s: kind %q", r.ID, r.Kind)
		}
		if r.Bandwidth <= 0 {
			t.Errorf("%s: bandwidth %d", r.ID, r.Bandwidth)
		}
		for _, f := range []string{"init.mp4", "playlist.m3u8", "seg-00001.m4s"} {
			if _, err := os.Stat(filepath.Join(out, r.ID, f)); err != nil {
				t.Errorf("missing %s/%s", r.ID, f)
			}
		}
	}
	if fmt.Sprint(heights) != fmt.Sprint(wantHeights) {
		t.Errorf("video heights %v, want %v", heights, wantHeights)
	}
	if fmt.Sprint(audio) != fmt.Sprint(wantAudio) {
		t.Errorf("audio renditions %v, want %v", audio, wantAudio)
	}
	for _, f := range []string{"master.m3u8", "manifest.mpd",
		fmt.Sprintf("download/%dp.mp4", wantHeights[0]), fmt.Sprintf("download/%dp.mp4", wantHeights[len(wantHeights)-1])} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}

	// Files: exactly what is on disk, with the right sizes and hashes.
	onDisk := map[string]bool{}
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(out, p)
			onDisk[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if len(onDisk) != len(res.Files) {
		t.Errorf("result lists %d files, disk holds %d", len(res.Files), len(onDisk))
	}
	for i, f := range res.Files {
		if !onDisk[f.Path] {
			t.Errorf("result lists %s, not on disk", f.Path)
			continue
		}
		if i%7 != 0 && !strings.HasSuffix(f.Path, ".m3u8") {
			continue // hash a sample; sizes below cover the rest
		}
		data, _ := os.ReadFile(filepath.Join(out, f.Path))
		sum := sha256.Sum256(data)
		if int64(len(data)) != f.Size || hex.EncodeToString(sum[:]) != f.SHA256 {
			t.Errorf("%s: size/hash mismatch", f.Path)
		}
	}

	// Manifests parse with our readers and play with ffmpeg's.
	data, _ := os.ReadFile(filepath.Join(out, "master.m3u8"))
	m, err := hls.ParseMaster(data)
	if err != nil {
		t.Fatalf("master.m3u8: %v", err)
	}
	for _, v := range m.Variants {
		if v.AverageBandwidth > v.Bandwidth || v.FrameRate <= 0 || v.Width == 0 {
			t.Errorf("variant %+v", v)
		}
		if len(wantAudio) > 0 && (v.Audio != "aac" || !strings.HasSuffix(v.Codecs, ",mp4a.40.2")) {
			t.Errorf("variant %s: audio %q codecs %q", v.URI, v.Audio, v.Codecs)
		}
	}
	if len(m.Audio) != len(wantAudio) {
		t.Errorf("master has %d audio renditions, want %d", len(m.Audio), len(wantAudio))
	}
	data, _ = os.ReadFile(filepath.Join(out, "manifest.mpd"))
	if _, err := dash.Parse(data); err != nil {
		t.Fatalf("manifest.mpd: %v", err)
	}
	for _, manifest := range []string{"master.m3u8", "manifest.mpd"} {
		playWithFFmpeg(t, filepath.Join(out, manifest))
	}
}

// playWithFFmpeg decodes every stream of a manifest and checks it played
// without errors.
func playWithFFmpeg(t *testing.T, manifest string) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-i", manifest, "-map", "0", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("ffmpeg -i %s: %v\n%s", filepath.Base(manifest), err, out)
	}
}
