package transcoder

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/transcoder/ladder"
	"github.com/fillcast/fillcast/transcoder/pertitle"
)

func TestTranscode(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	tests := []struct {
		name        string
		src         source
		segment     time.Duration
		wantHeights []int
		wantAudio   []string
	}{
		{"1080p", source{width: 1920, height: 1080, fps: 30, seconds: 2, languages: []string{"eng"}}, time.Second,
			[]int{1080, 720, 480, 360, 240}, []string{"audio-en:en"}},
		{"720p", source{width: 1280, height: 720, fps: 25, seconds: 2.4, languages: []string{"spa"}}, time.Second,
			[]int{720, 480, 360, 240}, []string{"audio-es:es"}},
		{"360p", source{width: 640, height: 360, fps: 24, seconds: 5}, 2 * time.Second,
			[]int{360, 240}, nil},
		{"odd 1000x562", source{width: 1000, height: 562, fps: 30, seconds: 2, languages: []string{""}}, time.Second,
			[]int{562, 480, 360, 240}, []string{"audio-und:und"}},
		{"two audio tracks", source{width: 480, height: 270, fps: 30, seconds: 3, languages: []string{"eng", "fra"}}, time.Second,
			[]int{240}, []string{"audio-en:en", "audio-fr:fr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in := makeSource(t, dir, "src", tt.src)
			out := filepath.Join(dir, "title")
			var events []Event
			res, err := newTranscoder(t).Run(context.Background(), Job{
				Input: in, Output: out, Segment: tt.segment,
				Progress: func(e Event) { events = append(events, e) },
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			checkTitle(t, res, tt.wantHeights, tt.wantAudio)
			checkNoLeftovers(t, dir, "src.mp4", "title")
			wantSegs := int((time.Duration(tt.src.seconds*float64(time.Second)) + tt.segment - 1) / tt.segment)
			if res.Segments != wantSegs {
				t.Errorf("%d segments, want %d", res.Segments, wantSegs)
			}
			if d := res.Duration.Seconds() - tt.src.seconds; d > 0.07 || d < -0.07 {
				t.Errorf("duration %v, want %gs", res.Duration, tt.src.seconds)
			}
			checkEvents(t, events)
		})
	}
}

// checkEvents checks that the encode stage reported progress up to 100 %
// and that stages came in order.
func checkEvents(t *testing.T, events []Event) {
	t.Helper()
	order := map[string]int{StageProbe: 0, StageAnalyze: 1, StageEncode: 2, StagePackage: 3, StageDownload: 4, StageVerify: 5, StagePublish: 6}
	last, maxEncode := -1, 0.0
	for _, e := range events {
		if order[e.Stage] < last {
			t.Errorf("stage %s after a later one", e.Stage)
		}
		last = order[e.Stage]
		if e.Stage == StageEncode {
			maxEncode = max(maxEncode, e.Percent)
		}
		if e.Percent < 0 || e.Percent > 100 {
			t.Errorf("event %+v out of range", e)
		}
	}
	if maxEncode != 100 {
		t.Errorf("encode progress reached %v%%, want 100", maxEncode)
	}
}

func TestLadderFileAndOverwrite(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	dir := t.TempDir()
	in := makeSource(t, dir, "src", source{width: 640, height: 360, fps: 30, seconds: 2, languages: []string{"deu"}})
	out := filepath.Join(dir, "title")
	l, err := ladder.Parse([]byte(`{"rungs":[{"name":"sd","height":360,"bitrate":"500k"},{"name":"low","height":180,"bitrate":"150k"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tc := newTranscoder(t)
	if _, err := tc.Run(context.Background(), Job{Input: in, Output: out, Ladder: l, Segment: time.Second}); err != nil {
		t.Fatalf("first run: %v", err)
	}
	_, err = tc.Run(context.Background(), Job{Input: in, Output: out, Segment: time.Second})
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("second run without Overwrite: got %v, want ErrOutputExists", err)
	}
	res, err := tc.Run(context.Background(), Job{Input: in, Output: out, Ladder: l, Segment: time.Second, Overwrite: true, Downloads: []int{180}})
	if err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if res.Renditions[0].ID != "sd" || res.Renditions[1].ID != "low" || res.Renditions[1].Width != 320 {
		t.Errorf("renditions %+v, want sd and low (320x180)", res.Renditions)
	}
	if _, err := os.Stat(filepath.Join(out, "download", "180p.mp4")); err != nil {
		t.Errorf("download/180p.mp4: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "download", "360p.mp4")); err == nil {
		t.Errorf("download/360p.mp4 made though not asked for")
	}
	if b, err := os.ReadFile(filepath.Join(out, PosterName)); err != nil || len(b) < 3 || b[0] != 0xff || b[1] != 0xd8 {
		t.Errorf("poster: want a JPEG picture, got %d bytes, %v", len(b), err)
	}
	checkNoLeftovers(t, dir, "src.mp4", "title")
}

func TestPerTitle(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	dir := t.TempDir()
	// Bars barely change from frame to frame: an easy title.
	in := makeSource(t, dir, "src", source{width: 640, height: 360, fps: 25, seconds: 3, pattern: "smptehdbars"})
	cfg := testConfig()
	cfg.PerTitle.Clips, cfg.PerTitle.ClipSeconds = 1, 1
	tc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var analyzed bool
	res, err := tc.Run(context.Background(), Job{Input: in, Output: filepath.Join(dir, "title"), PerTitle: true, Segment: time.Second,
		Progress: func(e Event) { analyzed = analyzed || e.Stage == StageAnalyze }})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	pt := res.PerTitle
	if pt == nil || !analyzed {
		t.Fatal("no per-title report or analyze events")
	}
	if pt.Saving() < 0.15 {
		t.Errorf("saving %.1f%% on static bars, want at least 15%%: %+v", 100*pt.Saving(), pt)
	}
	for _, r := range pt.Rungs {
		if r.Bitrate > r.LadderBitrate || r.SSIM < r.LadderSSIM-pertitle.DefaultConfig().Tolerance {
			t.Errorf("rung %+v breaks the rules", r)
		}
	}
	checkNoLeftovers(t, dir, "src.mp4", "title")
}

func TestCancel(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	dir := t.TempDir()
	in := makeSource(t, dir, "src", source{width: 1280, height: 720, fps: 30, seconds: 30})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := newTranscoder(t).Run(ctx, Job{Input: in, Output: filepath.Join(dir, "title"),
		Progress: func(e Event) {
			if e.Stage == StageEncode && e.Percent > 0 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("got %v, %v; want context.Canceled", res, err)
	}
	checkNoLeftovers(t, dir, "src.mp4")
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	dir := t.TempDir()
	good := makeSource(t, dir, "good", source{width: 320, height: 240, fps: 10, seconds: 2, languages: []string{"en"}})
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ff := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		args = append([]string{"-hide_banner", "-loglevel", "error", "-y"}, append(args, p)...)
		if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v\n%s", name, err, out)
		}
		return p
	}
	faststart := ff("faststart.mp4", "-i", good, "-c", "copy", "-movflags", "+faststart")
	fsData, _ := os.ReadFile(faststart)
	mkv := ff("good.mkv", "-i", good, "-c", "copy")
	mkvData, _ := os.ReadFile(mkv)

	tests := []struct {
		name, in, want string
	}{
		{"missing file", filepath.Join(dir, "nope.mp4"), "no such file"},
		{"directory", dir, "is a directory"},
		{"empty file", write("empty.mp4", nil), "empty file"},
		{"text file", write("notes.txt", []byte("this is not a video\n")), "not a media file"},
		{"truncated mp4 (index at the end)", write("cut.mp4", data[:len(data)/2]), "not a media file"},
		{"truncated mp4 (faststart)", write("cut-fs.mp4", fsData[:len(fsData)/2]), "truncated"},
		{"truncated mkv", write("cut.mkv", mkvData[:len(mkvData)/2]), "truncated"},
		{"audio only", ff("audio.m4a", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"), "audio only"},
		{"zero duration", ff("still.png", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1"), "zero duration"},
		{"tiny picture", ff("tiny.nut", "-f", "lavfi", "-i", "testsrc2=size=8x8:rate=10:duration=1", "-c:v", "rawvideo"), "too small"},
		{"absurd picture", ff("wide.nut", "-f", "lavfi", "-i", "color=size=10000x16:rate=5:duration=1", "-c:v", "rawvideo"), "too large"},
	}
	tc := newTranscoder(t)
	// The cases run one at a time: each checks that no temporary directory
	// of any run is left in dir.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(tt.name, " ", "-"))
			_, err := tc.Run(context.Background(), Job{Input: tt.in, Output: out, Segment: time.Second})
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("got %v, want ErrBadInput", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "transcoder: bad input: ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting \"transcoder: bad input: \" and containing %q", msg, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output %s exists after a bad input", out)
			}
			matches, _ := filepath.Glob(filepath.Join(dir, ".out-*"))
			if len(matches) > 0 {
				t.Errorf("temporary directories left: %v", matches)
			}
		})
	}
}
