package ingest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/internal/poll"
	"github.com/fillcast/fillcast/origin"
	"github.com/fillcast/fillcast/transcoder"
	"github.com/hashicorp/raft"
)

// localState is a single-node state: commands go straight into a real FSM
// in log order, as raft would apply them on one node.
type localState struct {
	f     *fsm.FSM
	index atomic.Uint64
}

func (l *localState) Read(fn func(*fsm.State)) { l.f.Read(fn) }

func (l *localState) AppliedIndex() uint64 { return l.f.AppliedIndex() }

func (l *localState) Apply(_ context.Context, c fsm.Command) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if r := l.f.Apply(&raft.Log{Index: l.index.Add(1), Data: b}); r != nil {
		return r.(error)
	}
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	state      *localState
	originRoot string
	originURL  string
	dir        string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (make test installs it)")
	}
	ocfg := origin.DefaultConfig()
	ocfg.Root = t.TempDir()
	o, err := origin.New(ocfg, origin.Deps{AdminToken: "adm", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	e := &env{state: &localState{f: fsm.New(nil)}, originRoot: ocfg.Root, originURL: srv.URL, dir: t.TempDir()}
	e.state.Apply(context.Background(), fsm.Command{Op: fsm.OpPutTitle, Title: &fillcast.Title{ID: "t1", Name: "One", Status: fillcast.StatusNew}})
	return e
}

func (e *env) manager(t *testing.T) *Manager {
	t.Helper()
	tc, err := transcoder.New(transcoder.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Node: "n1", Dir: e.dir, OriginURL: e.originURL, Segment: time.Second},
		Deps{Transcoder: tc, State: e.state, AdminToken: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// source writes a small real video (2 s, 320x180, with audio).
func source(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", "-f", "mp4", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make source: %v: %s", err, out)
	}
}

func (e *env) job(id string) (j fsm.Job) {
	e.state.Read(func(s *fsm.State) {
		if p := s.Jobs[id]; p != nil {
			j = *p
		}
	})
	return j
}

func (e *env) title(id string) (t fillcast.Title) {
	e.state.Read(func(s *fsm.State) { t = *s.Titles[id] })
	return t
}

func TestIngestPublishesAndRecords(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	up := m.UploadPath()
	source(t, up)
	job, err := m.Submit(context.Background(), "t1", up, false)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 3*time.Minute, "the job to finish", func() bool {
		s := e.job(job.ID).Status
		return s == fsm.JobDone || s == fsm.JobFailed
	})
	j := e.job(job.ID)
	if j.Status != fsm.JobDone || j.Attempts != 1 {
		t.Fatalf("job = %+v", j)
	}
	// The title keeps its list's summary; the list is at the origin,
	// and every file it names.
	title := e.title("t1")
	if title.Status != fillcast.StatusReady || len(title.Renditions) == 0 || len(title.Files) != 0 || title.FileCount == 0 || title.Bytes == 0 {
		t.Fatalf("title = %+v, want ready with renditions and a file list's summary, no files", title)
	}
	body, err := os.ReadFile(filepath.Join(e.originRoot, filepath.FromSlash(filelist.Path("t1", title.FilesDigest))))
	if err != nil {
		t.Fatalf("the file list at the origin: %v", err)
	}
	files, sum, err := filelist.DecodeAll(body)
	if err != nil || sum.Digest != title.FilesDigest || sum.Bytes != title.Bytes || sum.Count != title.FileCount {
		t.Fatalf("the file list at the origin: %v, summary %+v, want the title's", err, sum)
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(e.originRoot, "t1", f.Path))
		if err != nil || fi.Size() != f.Size {
			t.Errorf("origin lacks %s (%v)", f.Path, err)
		}
	}
	e.state.Read(func(s *fsm.State) {
		if n := len(s.PendingLists()); n != 0 {
			t.Errorf("%d file lists pending after an ingest, want none: the job published its own", n)
		}
	})
	// The upload goes once the job is recorded done.
	poll.Until(t, 5*time.Second, "the upload removed after success", func() bool {
		_, err := os.Stat(up)
		return os.IsNotExist(err)
	})
	if _, err := m.Submit(context.Background(), "nope", up, false); err == nil || !strings.Contains(err.Error(), "unknown title") {
		t.Errorf("submit for an unknown title: %v", err)
	}
}

func TestBadUploadFailsWithReason(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	up := m.UploadPath()
	os.WriteFile(up, []byte("this is not a video\n"), 0o644)
	job, err := m.Submit(context.Background(), "t1", up, false)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the job to fail", func() bool { return e.job(job.ID).Status == fsm.JobFailed })
	if j := e.job(job.ID); j.Error == "" || strings.Contains(j.Error, "\n") {
		t.Errorf("failure reason %q: want one line", j.Error)
	}
	if e.title("t1").Status != fillcast.StatusFailed {
		t.Errorf("title status %q, want failed", e.title("t1").Status)
	}
	if entries, _ := os.ReadDir(e.originRoot); len(entries) != 0 {
		t.Errorf("a failed job published %d entries", len(entries))
	}
}

func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t)
	up := filepath.Join(e.dir, "uploads-kept.mp4")
	source(t, up)
	// A previous process left one job running with its upload on disk and
	// one whose upload is gone.
	now := time.Now().UTC()
	e.state.Apply(context.Background(), fsm.Command{Op: fsm.OpPutJob, Job: &fsm.Job{ID: "j-kept", Title: "t1", Node: "n1", Source: up, Status: fsm.JobRunning, Attempts: 1, Created: now}})
	e.state.Apply(context.Background(), fsm.Command{Op: fsm.OpPutJob, Job: &fsm.Job{ID: "j-lost", Title: "t1", Node: "n1", Source: filepath.Join(e.dir, "gone"), Status: fsm.JobQueued, Created: now}})
	e.state.Apply(context.Background(), fsm.Command{Op: fsm.OpPutJob, Job: &fsm.Job{ID: "j-other", Title: "t1", Node: "n2", Source: up, Status: fsm.JobRunning, Created: now}})
	e.manager(t) // resumes what the previous process left
	poll.Until(t, 10*time.Second, "the job without its upload to fail", func() bool { return e.job("j-lost").Status == fsm.JobFailed })
	if j := e.job("j-lost"); !strings.Contains(j.Error, "lost") {
		t.Errorf("job without upload = %+v, want failed naming the lost upload", j)
	}
	poll.Until(t, 3*time.Minute, "the resumed job to finish", func() bool { return e.job("j-kept").Status == fsm.JobDone })
	if j := e.job("j-kept"); j.Attempts != 2 {
		t.Errorf("resumed job attempts = %d, want 2", j.Attempts)
	}
	if j := e.job("j-other"); j.Status != fsm.JobRunning {
		t.Errorf("another node's job was touched: %+v", j)
	}
}
