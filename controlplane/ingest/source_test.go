package ingest

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/transcoder"
)

// noTranscoder fails every job: for tests that never run one.
type noTranscoder struct{}

func (noTranscoder) Run(context.Context, transcoder.Job) (*transcoder.Result, error) {
	return nil, errors.New("ingest test: no transcoder")
}

// pathManager returns a Manager whose ingest directory is ingestDir.
func pathManager(t *testing.T, ingestDir string) *Manager {
	t.Helper()
	m, err := New(Config{Node: "n1", Dir: t.TempDir(), OriginURL: "http://origin:9000", IngestDir: ingestDir},
		Deps{Transcoder: noTranscoder{}, State: &localState{f: fsm.New(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSource: ingest by path reads only regular files under the
// ingest directory, however the path is spelled.
func TestOpenSource(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	media, outside := filepath.Join(base, "media"), filepath.Join(base, "outside")
	writeFile(t, filepath.Join(media, "in.mp4"), "inside")
	writeFile(t, filepath.Join(media, "sub", "deep.mp4"), "deep")
	writeFile(t, filepath.Join(outside, "secret"), "secret")
	symlink(t, "in.mp4", filepath.Join(media, "link-in.mp4"))
	symlink(t, filepath.Join(media, "in.mp4"), filepath.Join(media, "abs-link-in.mp4"))
	symlink(t, "../outside/secret", filepath.Join(media, "link-out.mp4"))
	symlink(t, "/etc/passwd", filepath.Join(media, "passwd.mp4"))
	symlink(t, outside, filepath.Join(media, "dir-out"))
	symlink(t, media, filepath.Join(base, "media-link")) // the directory by another name

	tests := []struct {
		name      string
		ingestDir string
		path      string
		want      string // the file's content, or "" for an error
		forbidden bool
	}{
		{"a file inside", media, filepath.Join(media, "in.mp4"), "inside", false},
		{"a file in a subdirectory", media, filepath.Join(media, "sub", "deep.mp4"), "deep", false},
		{"a link to a file inside", media, filepath.Join(media, "link-in.mp4"), "inside", false},
		{"an absolute link to a file inside", media, filepath.Join(media, "abs-link-in.mp4"), "inside", false},
		{"the directory spelled through a link", media, filepath.Join(base, "media-link", "in.mp4"), "inside", false},
		{"the ingest directory is a link", filepath.Join(base, "media-link"), filepath.Join(media, "in.mp4"), "inside", false},
		{"/etc/passwd", media, "/etc/passwd", "", true},
		{"escape with ..", media, filepath.Join(media, "..", "outside", "secret"), "", true},
		{"escape with .. unresolved", media, media + "/sub/../../outside/secret", "", true},
		{".. that stays inside", media, media + "/sub/../in.mp4", "", true},
		{"a link to a file outside", media, filepath.Join(media, "link-out.mp4"), "", true},
		{"a link to /etc/passwd", media, filepath.Join(media, "passwd.mp4"), "", true},
		{"through a link to a directory outside", media, filepath.Join(media, "dir-out", "secret"), "", true},
		{"a relative path", media, "in.mp4", "", true},
		{"the ingest directory itself", media, media, "", true},
		{"a sibling with the directory's name as prefix", media, media + "-other/x.mp4", "", true},
		{"ingest by path is off", "", filepath.Join(media, "in.mp4"), "", true},
		{"a missing file inside", media, filepath.Join(media, "missing.mp4"), "", false},
		{"a directory inside", media, filepath.Join(media, "sub"), "", false},
		{"a missing file outside", media, filepath.Join(outside, "missing"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := pathManager(t, tt.ingestDir).OpenSource(tt.path)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("OpenSource(%s) = %v, want the file", tt.path, err)
				}
				defer f.Close()
				if b, _ := io.ReadAll(f); string(b) != tt.want {
					t.Errorf("OpenSource(%s) read %q, want %q", tt.path, b, tt.want)
				}
				return
			}
			if err == nil {
				f.Close()
				t.Fatalf("OpenSource(%s) opened it, want an error", tt.path)
			}
			if got := errors.Is(err, ErrPathForbidden); got != tt.forbidden {
				t.Errorf("OpenSource(%s) = %v; forbidden %v, want %v", tt.path, err, got, tt.forbidden)
			}
			if tt.forbidden && tt.ingestDir == "" && !strings.Contains(err.Error(), "--ingest-dir") {
				t.Errorf("error %q does not say how to turn ingest by path on", err)
			}
		})
	}
}

// TestIngestDirConfig: the ingest directory must be absolute, and Open
// checks that it is a directory.
func TestIngestDirConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "x")
	tests := []struct {
		dir         string
		wantInvalid bool
		wantOpenErr bool
	}{
		{"", false, false},
		{t.TempDir(), false, false},
		{"media", true, false},
		{filepath.Join(t.TempDir(), "missing"), false, true},
		{file, false, true},
	}
	for _, tt := range tests {
		cfg := Config{Node: "n1", Dir: t.TempDir(), OriginURL: "http://origin:9000", IngestDir: tt.dir}
		if err := cfg.Validate(); (err != nil) != tt.wantInvalid {
			t.Errorf("Validate with IngestDir %q = %v, want invalid %v", tt.dir, err, tt.wantInvalid)
			continue
		}
		if tt.wantInvalid {
			continue
		}
		err := pathManager(t, tt.dir).Open(context.Background())
		if (err != nil) != tt.wantOpenErr {
			t.Errorf("Open with IngestDir %q = %v, want an error %v", tt.dir, err, tt.wantOpenErr)
		}
	}
}
