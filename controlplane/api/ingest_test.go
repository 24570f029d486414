package api

import (
	"bytes"
	"context"
	"errors"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/ingest"
	"github.com/fillcast/fillcast/transcoder"
)

// idleTranscoder is never run: the tests' managers only queue jobs.
type idleTranscoder struct{}

func (idleTranscoder) Run(context.Context, transcoder.Job) (*transcoder.Result, error) {
	return nil, errors.New("api test: no transcoder")
}

// nodeState is the node's state as ingest reads and writes it.
type nodeState struct{ Node }

func (s nodeState) Read(fn func(*fsm.State)) { s.FSM().Read(fn) }

func (s nodeState) AppliedIndex() uint64 { return s.FSM().AppliedIndex() }

// newIngestAPI returns the test API with ingest on, files named by path
// taken from ingestDir ("" for none).
func newIngestAPI(t testing.TB, ingestDir string) *API {
	t.Helper()
	return newTestAPIWith(t, func(d *Deps) {
		m, err := ingest.New(ingest.Config{Node: "n1", Dir: t.TempDir(), OriginURL: "http://origin:9000", IngestDir: ingestDir},
			ingest.Deps{Transcoder: idleTranscoder{}, State: nodeState{d.Node}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		d.Ingest = m
	})
}

// TestIngestByPath: POST /v1/titles/{id}/ingest with {"path": ...} reads
// only files in the node's ingest directory; uploads work either way.
func TestIngestByPath(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	media, outside := filepath.Join(base, "media"), filepath.Join(base, "outside")
	for _, p := range []string{filepath.Join(media, "in.mp4"), filepath.Join(outside, "secret")} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("not really a video"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(media, "out.mp4")); err != nil {
		t.Fatal(err)
	}
	withDir, withoutDir := newIngestAPI(t, media), newIngestAPI(t, "")
	jsonPath := func(p string) (string, []byte) {
		return "application/json", []byte(`{"path":` + strconv.Quote(p) + `}`)
	}
	upload := func() (string, []byte) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "movie.mp4")
		fw.Write([]byte("not really a video"))
		mw.Close()
		return mw.FormDataContentType(), b.Bytes()
	}
	tests := []struct {
		name     string
		api      *API
		body     func() (string, []byte)
		want     int
		wantText string
	}{
		{"/etc/passwd", withDir, func() (string, []byte) { return jsonPath("/etc/passwd") }, 403, `"error":"forbidden"`},
		{"escape with ..", withDir, func() (string, []byte) { return jsonPath(media + "/../outside/secret") }, 403, `"error":"forbidden"`},
		{"a link out of the directory", withDir, func() (string, []byte) { return jsonPath(filepath.Join(media, "out.mp4")) }, 403, `"error":"forbidden"`},
		{"a missing file inside", withDir, func() (string, []byte) { return jsonPath(filepath.Join(media, "missing.mp4")) }, 400, "not a readable file"},
		{"a file inside", withDir, func() (string, []byte) { return jsonPath(filepath.Join(media, "in.mp4")) }, 202, `"status":"queued"`},
		{"an upload", withDir, upload, 202, `"status":"queued"`},
		{"by path without an ingest directory", withoutDir, func() (string, []byte) { return jsonPath(filepath.Join(media, "in.mp4")) }, 403, `"error":"forbidden"`},
		{"an upload without an ingest directory", withoutDir, upload, 202, `"status":"queued"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := tt.body()
			req := httptest.NewRequest("POST", "/v1/titles/t1/ingest", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", "Bearer adm")
			w := httptest.NewRecorder()
			tt.api.ServeHTTP(w, req)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.wantText) {
				t.Errorf("status %d %s, want %d containing %q", w.Code, w.Body, tt.want, tt.wantText)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(media, "in.mp4")); err != nil || len(b) == 0 {
		t.Errorf("the ingested file was moved or changed: %v", err)
	}
}
