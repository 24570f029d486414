package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunTranscode(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install ffmpeg)", bin)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mp4")
	gen := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", src)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make source: %v\n%s", err, out)
	}
	ladderFile := filepath.Join(dir, "ladder.json")
	if err := os.WriteFile(ladderFile, []byte(`{"rungs":[{"height":360,"bitrate":"600k"},{"height":180,"bitrate":"200k"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantErr    error
		wantStdout []string
		wantStderr []string
	}{
		{"ladder file", []string{"--in", src, "--out", filepath.Join(dir, "t1"), "--ladder", ladderFile, "--segment", "1s", "--preset", "superfast"}, nil,
			[]string{"published ", "360p", "180p", "audio-und", "avc1.64", "mp4a.40.2", "stages:"}, []string{"encode", "%", "elapsed"}},
		{"missing flags", []string{"--in", src}, errUsage, nil, []string{"Usage: fillcast transcode"}},
		{"bad ladder file", []string{"--in", src, "--out", filepath.Join(dir, "t2"), "--ladder", src}, errUsage, nil, nil},
		{"bad input", []string{"--in", ladderFile, "--out", filepath.Join(dir, "t3")}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := runTranscode(context.Background(), tt.args, &stdout, &stderr)
			switch {
			case tt.name == "bad input":
				if err == nil || !strings.HasPrefix(err.Error(), "transcoder: bad input: ") || strings.Contains(err.Error(), "\n") {
					t.Errorf("got %v, want a one-line bad input error", err)
				}
				if _, serr := os.Stat(filepath.Join(dir, "t3")); !os.IsNotExist(serr) {
					t.Errorf("--out exists after bad input")
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("got %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("runTranscode: %v\nstderr:\n%s", err, stderr.String())
			}
			for _, s := range tt.wantStdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}
