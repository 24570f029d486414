// Package ingest runs the control plane's transcoding jobs: an upload
// (saved on the node that received it) goes through a bounded queue to a
// small pool of workers, each running the transcoder, publishing the
// packaged title to the origin with authenticated PUTs, its file list as
// one content-addressed object (package filelist), and recording the
// renditions and the list's summary in the replicated catalog. Job records live in the
// replicated state, so a job interrupted by a restart is found again: it
// is retried while its upload is still on disk, else marked failed, never
// silently lost. The leader's Manager also deletes taken-down titles from
// the origin (takedown.go) and publishes the file lists the replicated
// state keeps until they are at the origin (lists.go).
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
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/transcoder"
)

// Transcoder runs one transcoding job.
type Transcoder interface {
	Run(ctx context.Context, job transcoder.Job) (*transcoder.Result, error)
}

// State is what ingest needs of the replicated state: reads, writes,
// and the log index applied so far (a published list names the state it
// was read from, fsm.Command.ListIndex).
type State interface {
	Read(fn func(s *fsm.State))
	Apply(ctx context.Context, cmd fsm.Command) error
	AppliedIndex() uint64
}

// Errors callers branch on.
var (
	ErrBusy         = errors.New("ingest: the job queue is full, try again later")
	ErrUnknownTitle = errors.New("ingest: unknown title")
)

// Config configures a Manager. Zero values mean the defaults named.
type Config struct {
	// Node is this control-plane node's id; jobs it accepts run here.
	// Required.
	Node string
	// Dir holds uploads and work directories. Required.
	Dir string
	// OriginURL is where packaged titles are published. Required.
	OriginURL string
	// Workers is how many jobs run at once. Zero means 1: one ffmpeg
	// already uses every core.
	Workers int
	// Queue bounds the jobs waiting for a worker. Zero means 16.
	Queue int
	// MaxAttempts bounds retries of a job interrupted by a restart. Zero
	// means 2.
	MaxAttempts int
	// Segment is the segment duration. Zero means 4 s.
	Segment time.Duration
	// IngestDir is the one directory of this node whose files an ingest
	// request may name by path (see OpenSource), an absolute path. Empty
	// refuses every ingest by path: the API would otherwise read any file
	// the process can, /etc/passwd and the raft log included. Uploads
	// are accepted either way.
	IngestDir string
	// PurgeEvery is how often the leader deletes the files of taken-down
	// titles from the origin (takedown.go). Zero means 2 s.
	PurgeEvery time.Duration
	// PublishEvery is how often the leader publishes the file lists kept
	// in the replicated state to the origin (lists.go); after a failure
	// it waits twice as long each time, up to a minute. Zero means 2 s.
	PublishEvery time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return fillcast.ConfigErrorf("ingest", "Node", "required: this control-plane node's id")
	case c.Dir == "":
		return fillcast.ConfigErrorf("ingest", "Dir", "required: the directory of uploads and work")
	case c.OriginURL == "":
		return fillcast.ConfigErrorf("ingest", "OriginURL", "required: where packaged titles are published")
	case c.Workers < 0:
		return fillcast.ConfigErrorf("ingest", "Workers", "%d is negative", c.Workers)
	case c.Queue < 0:
		return fillcast.ConfigErrorf("ingest", "Queue", "%d is negative", c.Queue)
	case c.PurgeEvery < 0:
		return fillcast.ConfigErrorf("ingest", "PurgeEvery", "%v is negative", c.PurgeEvery)
	case c.PublishEvery < 0:
		return fillcast.ConfigErrorf("ingest", "PublishEvery", "%v is negative", c.PublishEvery)
	case c.IngestDir != "" && !filepath.IsAbs(c.IngestDir):
		return fillcast.ConfigErrorf("ingest", "IngestDir", "%q: want an absolute directory, such as /srv/media", c.IngestDir)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Queue == 0 {
		c.Queue = 16
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 2
	}
	if c.Segment <= 0 {
		c.Segment = 4 * time.Second
	}
	if c.PurgeEvery == 0 {
		c.PurgeEvery = 2 * time.Second
	}
	if c.PublishEvery == 0 {
		c.PublishEvery = 2 * time.Second
	}
	return c
}

// Deps are what a Manager works with.
type Deps struct {
	// Transcoder runs the jobs. Required.
	Transcoder Transcoder
	// State is the replicated state. Required. If it also has
	// WaitCaughtUp(ctx) error, Run waits for it before resuming the
	// jobs a previous process left.
	State State
	// AdminToken authorises PUTs to the origin.
	AdminToken string
	// Client publishes to the origin; nil means a client with no overall
	// timeout (files can be large) but the transport's defaults.
	Client *http.Client
	// Log receives the jobs' progress; nil discards it.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TranscoderBreaker and OriginBreaker, when set, guard the transcoder
	// and the origin: while one is open a job waits, queued, instead of
	// failing and losing its upload. Nil calls them unguarded.
	TranscoderBreaker *protect.Breaker
	OriginBreaker     *protect.Breaker
	// Retries is the retry budget of the origin's PUTs (idempotent, so
	// retried); nil means a budget of the package defaults.
	Retries *protect.Budget
	// Leader reports whether this node leads: only the leader deletes
	// taken-down titles from the origin and publishes pending file lists.
	// Nil means it always does (a single node).
	Leader func() bool
}

// caughtUp is the optional part of State that Run waits on.
type caughtUp interface {
	WaitCaughtUp(ctx context.Context) error
}

// Manager accepts and runs ingest jobs.
type Manager struct {
	cfg   Config
	d     Deps
	tc    Transcoder
	state State
	log   *slog.Logger
	queue chan string // job ids
	// retries is the origin PUTs' retry budget.
	retries *protect.Budget
	metrics *metrics
	// originMu makes the leader's purges of taken-down titles and its
	// publishing of pending file lists take turns (lists.go).
	originMu sync.Mutex
}

// New returns a Manager that accepts jobs; Open prepares its directories
// and Run runs them.
func New(cfg Config, d Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Transcoder == nil || d.State == nil {
		return nil, errors.New("ingest: Deps.Transcoder and Deps.State are required")
	}
	if d.Client == nil {
		d.Client = &http.Client{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg = cfg.withDefaults()
	retries := d.Retries
	if retries == nil {
		var err error
		if retries, err = protect.NewBudget(protect.DefaultBudgetConfig()); err != nil {
			return nil, err
		}
	}
	queue := make(chan string, cfg.Queue)
	return &Manager{cfg: cfg, d: d, tc: d.Transcoder, state: d.State, log: d.Log, queue: queue, retries: retries, metrics: newMetrics(queue, d.State)}, nil
}

// Open creates the upload and work directories, and checks that the
// ingest directory, if any, is one.
func (m *Manager) Open(context.Context) error {
	for _, d := range []string{"uploads", "work"} {
		if err := os.MkdirAll(filepath.Join(m.cfg.Dir, d), 0o755); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
	}
	if d := m.cfg.IngestDir; d != "" {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("ingest: ingest directory: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("ingest: ingest directory %s is not a directory", d)
		}
	}
	return nil
}

// Run runs queued jobs until ctx is done, which cancels the running ones
// (ffmpeg is killed; the job is retried at the next start). Once the
// state has caught up it resumes this node's jobs a previous process
// left.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Go(func() { m.worker(ctx) })
	}
	wg.Go(func() { m.purgeLoop(ctx) })
	wg.Go(func() { m.publishLoop(ctx) })
	if c, ok := m.state.(caughtUp); !ok || c.WaitCaughtUp(ctx) == nil {
		m.resume(ctx)
	}
	<-ctx.Done()
	wg.Wait()
	return nil
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
		m.metrics.failures.WithLabelValues(causeQueueFull).Inc()
		return nil, ErrBusy
	}
	now := m.d.Now().UTC()
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
		m.metrics.failures.WithLabelValues(causeQueueFull).Inc()
		return nil, ErrBusy
	}
}

// resume finds this node's jobs left queued or running by a previous
// process and requeues them, or marks them failed when their upload is
// gone or they ran out of attempts.
func (m *Manager) resume(ctx context.Context) {
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
			m.fail(ctx, &j, causeUploadLost, "the upload was lost in a restart; upload the file again")
		case j.Attempts >= m.cfg.MaxAttempts:
			m.fail(ctx, &j, causeAttempts, fmt.Sprintf("interrupted %d times; giving up", j.Attempts))
		default:
			j.Status, j.Updated = fsm.JobQueued, m.d.Now().UTC()
			if m.put(ctx, &j) == nil {
				select {
				case m.queue <- j.ID:
					m.log.Info("ingest: resuming job", "job", j.ID, "title", j.Title)
				default:
					m.fail(ctx, &j, causeQueueFull, ErrBusy.Error())
				}
			}
		}
	}
}

func (m *Manager) put(ctx context.Context, j *fsm.Job) error {
	cp := *j
	return m.state.Apply(ctx, fsm.Command{Op: fsm.OpPutJob, Job: &cp})
}

func (m *Manager) fail(ctx context.Context, j *fsm.Job, cause, reason string) {
	m.metrics.failures.WithLabelValues(cause).Inc()
	// The title first, as on success: whoever sees the job finished sees
	// its title's final status too.
	m.setTitleStatus(ctx, j.Title, fillcast.StatusFailed, nil)
	j.Status, j.Error, j.Updated = fsm.JobFailed, reason, m.d.Now().UTC()
	if err := m.put(ctx, j); err != nil {
		m.log.Error("ingest: record failure", "job", j.ID, "err", err)
	}
	os.Remove(j.Source)
}

// packaged is what a finished job records in its title.
type packaged struct {
	renditions []fillcast.Rendition
	files      filelist.Summary // of the list published at the origin
}

// setTitleStatus updates a title's status, and when done is given its
// renditions and its file list's summary (the catalog keeps no files).
func (m *Manager) setTitleStatus(ctx context.Context, id, status string, done *packaged) {
	var t *fillcast.Title
	m.state.Read(func(s *fsm.State) { t = s.Titles[id] })
	if t == nil {
		return
	}
	cp := *t
	cp.Status = status
	if done != nil {
		cp.Renditions = done.renditions
		done.files.SetOn(&cp)
	}
	if err := m.state.Apply(ctx, fsm.Command{Op: fsm.OpPutTitle, Title: &cp}); err != nil {
		m.log.Error("ingest: update title", "title", id, "err", err)
	}
}

func (m *Manager) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-m.queue:
			// A job whose dependency is down is run again once its
			// breaker may let calls through: the worker waits with it,
			// as every job would fail the same way meanwhile.
			for wait := m.run(ctx, id); wait > 0; wait = m.run(ctx, id) {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}
