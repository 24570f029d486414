package ffmpeg

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestReadProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []Progress
	}{
		{"two blocks", "frame=10\nfps=5.00\nout_time_us=333333\nspeed=0.5x\nprogress=continue\nframe=20\nout_time_us=666666\nspeed=N/A\nprogress=end\n",
			[]Progress{{Frame: 10, FPS: 5, OutTime: 333333 * time.Microsecond, Speed: 0.5}, {Frame: 20, FPS: 5, OutTime: 666666 * time.Microsecond, Speed: 0.5, End: true}}},
		{"garbage ignored", "hello\nframe=x\nout_time_us=-5\n=\nprogress=continue\n", []Progress{{}}},
		{"no terminator", "frame=1\n", nil},
		{"crlf", "frame=3\r\nprogress=end\r\n", []Progress{{Frame: 3, End: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Progress
			if err := ReadProgress(strings.NewReader(tt.in), func(p Progress) { got = append(got, p) }); err != nil {
				t.Fatalf("ReadProgress: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d blocks %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("block %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzReadProgress(f *testing.F) {
	f.Add("frame=10\nfps=5.00\nout_time_us=333333\nspeed=0.5x\nprogress=continue\n")
	f.Add("out_time_ms=99999999999999999\nspeed=1e308x\nprogress=end\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = ReadProgress(strings.NewReader(in), func(p Progress) {
			if p.Frame < 0 || p.OutTime < 0 || p.Speed < 0 || p.FPS < 0 {
				t.Fatalf("negative progress %+v", p)
			}
		})
	})
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed: apt-get install ffmpeg")
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	var last Progress
	err := Runner{}.Run(context.Background(), []string{"-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=1", "-f", "null", "-"}, func(p Progress) { last = p })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !last.End || last.Frame != 10 {
		t.Errorf("last progress %+v, want End with 10 frames", last)
	}
}

func TestRunError(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	err := Runner{}.Run(context.Background(), []string{"-i", "/nonexistent/input.mp4", "-f", "null", "-"}, nil)
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want *Error", err)
	}
	if !strings.Contains(fe.Stderr, "No such file") {
		t.Errorf("stderr tail %q lacks the reason", fe.Stderr)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	needFFmpeg(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		once := false
		done <- Runner{}.Run(ctx, []string{"-re", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10", "-f", "null", "-"}, func(Progress) {
			if !once {
				once = true
				close(started)
			}
		})
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no progress from ffmpeg")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
