// Package ingest runs the control plane's transcoding jobs: an upload
// (saved on the node that received it) goes through a bounded queue to a
// small pool of workers, each running the transcoder, publishing the
// packaged title to the origin with authenticated PUTs, and recording the
// renditions and files in the replicated catalog. Job records live in the
// replicated state, so a job interrupted by a restart is found again: it
// is retried while its upload is still on disk, else marked failed, never
// silently lost.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/transcoder"
)

// Transcoder runs one transcoding job.
type Transcoder interface {
	Run(ctx context.Context, job transcoder.Job) (*transcoder.Result, error)
}

// State is what ingest needs of the replicated state: reads and writes.
type State interface {
	Read(fn func(s *fsm.State))
	Apply(ctx context.Context, cmd fsm.Command) error
}

// Errors callers branch on.
var (
	ErrBusy         = errors.New("ingest: the job queue is full, try again later")
	ErrUnknownTitle = errors.New("ingest: unknown title")
)

// Config configures a Manager.
type Config struct {
	// Node is this control-plane node's id; jobs it accepts run here.
	Node string
	// Dir holds uploads and work directories. Required.
	Dir string
	// OriginURL is where packaged titles are published. Required.
	OriginURL string
	// AdminToken authorises PUTs to the origin.
	AdminToken string
	// Workers is how many jobs run at once. Zero means 1: one ffmpeg
	// already uses every core.
	Workers int
	// Queue is how many accepted jobs may wait. Zero means 16.
	Queue int
	// MaxAttempts bounds retries of a job interrupted by a restart. Zero
	// means 2.
	MaxAttempts int
	// Segment is the segment duration. Zero means 4 s.
	Segment time.Duration
	// Client publishes to the origin; nil means a client with no overall
	// timeout (files can be large) but the transport's defaults.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate fills defaults.
func (c *Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("ingest: node id required")
	case c.Dir == "":
		return errors.New("ingest: directory required")
	case c.OriginURL == "":
		return errors.New("ingest: an origin URL is required (--origin)")
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.Queue <= 0 {
		c.Queue = 16
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 2
	}
	if c.Segment <= 0 {
		c.Segment = 4 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Manager accepts and runs ingest jobs.
type Manager struct {
	cfg   Config
	tc    Transcoder
	state State
	log   *slog.Logger
	queue chan string // job ids

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New creates the directories and starts the workers.
func New(cfg Config, tc Transcoder, state State, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{"uploads", "work"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	m := &Manager{cfg: cfg, tc: tc, state: state, log: log, queue: make(chan string, cfg.Queue)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		m.wg.Add(1)
		go m.worker()
	}
	return m, nil
}

// Close cancels running jobs (ffmpeg is killed; the job is retried at the
// next start) and waits for the workers. Safe to call twice.
func (m *Manager) Close() {
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
	})
}

// UploadPath returns a fresh path under the uploads directory for a new
// upload to be written to.
func (m *Manager) UploadPath() string {
	return filepath.Join(m.cfg.Dir, "uploads", newID())
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Submit records a job for title from the file at source (on this node)
// and queues it. perTitle selects the per-title ladder.
func (m *Manager) Submit(ctx context.Context, title, source string, perTitle bool) (*fsm.Job, error) {
	var t *fillcast.Title
	m.state.Read(func(s *fsm.State) { t = s.Titles[title] })
	if t == nil {
		return nil, fmt.Errorf("%w %q: create it with POST /v1/titles first", ErrUnknownTitle, title)
	}
	if len(m.queue) == cap(m.queue) {
		return nil, ErrBusy
	}
	now := m.cfg.Now().UTC()
	job := &fsm.Job{ID: "j-" + newID(), Title: title, Node: m.cfg.Node, Source: source,
		Status: fsm.JobQueued, Created: now, Updated: now}
	if perTitle {
		job.Ladder = "per-title"
	}
	if err := m.put(ctx, job); err != nil {
		return nil, err
	}
	select {
	case m.queue <- job.ID:
		return job, nil
	default:
		job.Status, job.Error = fsm.JobFailed, ErrBusy.Error()
		m.put(ctx, job)
		return nil, ErrBusy
	}
}

// Resume finds this node's jobs left queued or running by a previous
// process and requeues them, or marks them failed when their upload is
// gone or they ran out of attempts.
func (m *Manager) Resume(ctx context.Context) {
	var pending []fsm.Job
	m.state.Read(func(s *fsm.State) {
		for _, j := range s.Jobs {
			if j.Node == m.cfg.Node && (j.Status == fsm.JobQueued || j.Status == fsm.JobRunning) {
				pending = append(pending, *j)
			}
		}
	})
	for _, j := range pending {
		_, statErr := os.Stat(j.Source)
		switch {
		case statErr != nil:
			m.fail(ctx, &j, "the upload was lost in a restart; upload the file again")
		case j.Attempts >= m.cfg.MaxAttempts:
			m.fail(ctx, &j, fmt.Sprintf("interrupted %d times; giving up", j.Attempts))
		default:
			j.Status, j.Updated = fsm.JobQueued, m.cfg.Now().UTC()
			if m.put(ctx, &j) == nil {
				select {
				case m.queue <- j.ID:
					m.log.Info("ingest: resuming job", "job", j.ID, "title", j.Title)
				default:
					m.fail(ctx, &j, ErrBusy.Error())
				}
			}
		}
	}
}

func (m *Manager) put(ctx context.Context, j *fsm.Job) error {
	cp := *j
	return m.state.Apply(ctx, fsm.Command{Op: fsm.OpPutJob, Job: &cp})
}

func (m *Manager) fail(ctx context.Context, j *fsm.Job, reason string) {
	// The title first, as on success: whoever sees the job finished sees
	// its title's final status too.
	m.setTitleStatus(ctx, j.Title, fillcast.StatusFailed, nil)
	j.Status, j.Error, j.Updated = fsm.JobFailed, reason, m.cfg.Now().UTC()
	if err := m.put(ctx, j); err != nil {
		m.log.Error("ingest: record failure", "job", j.ID, "err", err)
	}
	os.Remove(j.Source)
}

// setTitleStatus updates a title's status, and its renditions and files
// when res is given.
func (m *Manager) setTitleStatus(ctx context.Context, id, status string, res *transcoder.Result) {
	var t *fillcast.Title
	m.state.Read(func(s *fsm.State) { t = s.Titles[id] })
	if t == nil {
		return
	}
	cp := *t
	cp.Status = status
	if res != nil {
		cp.Renditions, cp.Files = res.Renditions, res.Files
	}
	if err := m.state.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &cp}); err != nil {
		m.log.Error("ingest: update title", "title", id, "err", err)
	}
}

func (m *Manager) worker() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case id := <-m.queue:
			m.run(id)
		}
	}
}
