package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/protect"
	"github.com/fillcast/fillcast/filelist"
	"github.com/fillcast/fillcast/transcoder"
)

// progressEvery bounds how often a job's progress is written to the
// replicated state.
const progressEvery = time.Second

// run executes one job: transcode into a work directory, publish to the
// origin, record the title as ready. When the transcoder's or the
// origin's breaker is open, the job goes back to queued and run returns
// how long to wait before running it again; otherwise it returns 0.
func (m *Manager) run(ctx context.Context, id string) (retryIn time.Duration) {
	var err error // the job's, observed when it ran
	var j *fsm.Job
	m.state.Read(func(s *fsm.State) {
		if cur := s.Jobs[id]; cur != nil {
			cp := *cur
			j = &cp
		}
	})
	if j == nil || j.Status != fsm.JobQueued {
		return
	}
	j.Status, j.Stage, j.Attempts, j.Updated = fsm.JobRunning, transcoder.StageProbe, j.Attempts+1, m.d.Now().UTC()
	if err := m.put(ctx, j); err != nil {
		m.log.Error("ingest: start job", "job", id, "err", err)
		return
	}
	m.setTitleStatus(ctx, j.Title, fillcast.StatusIngesting, nil)
	m.log.Info("ingest: job started", "job", id, "title", j.Title, "attempt", j.Attempts)

	out := filepath.Join(m.cfg.Dir, "work", j.ID)
	os.RemoveAll(out)
	defer os.RemoveAll(out)
	pw := m.startProgress(ctx, j)
	var res *transcoder.Result
	started := m.d.Now()
	defer func() { m.metrics.jobs.WithLabelValues(outcome(ctx, err)).Observe(m.d.Now().Sub(started).Seconds()) }()
	err = guard(ctx, m.d.TranscoderBreaker, func(ctx context.Context) (err error) {
		res, err = m.tc.Run(ctx, transcoder.Job{
			Input: j.Source, Output: out, PerTitle: j.Ladder == "per-title", Segment: m.cfg.Segment,
			Progress: pw.update,
		})
		return err
	})
	pw.stop()
	m.timeStage(ctx, "transcode", started, err)
	failed := causeTranscode
	var list filelist.Summary
	if err == nil {
		j.Stage, j.Percent = "publish", 0
		m.put(ctx, j)
		publishing := m.d.Now()
		list, err = m.publish(ctx, j.Title, res)
		m.timeStage(ctx, "publish", publishing, err)
		failed = causePublish
	}
	if err == nil {
		err = m.deletedMeanwhile(ctx, j.Title)
	}
	if ctx.Err() != nil {
		// Shutting down: leave the job running in the state; Resume
		// retries it at the next start.
		m.log.Info("ingest: job interrupted by shutdown", "job", id)
		return
	}
	if open := (*protect.OpenError)(nil); errors.As(err, &open) {
		m.log.Warn("ingest: job waits for a dependency", "job", id, "title", j.Title, "err", err)
		j.Status, j.Stage, j.Error, j.Updated = fsm.JobQueued, "waiting", err.Error(), m.d.Now().UTC()
		if err := m.put(ctx, j); err != nil {
			m.log.Error("ingest: requeue job", "job", id, "err", err)
		}
		return open.RetryAfter
	}
	if err != nil {
		m.log.Warn("ingest: job failed", "job", id, "title", j.Title, "err", err)
		if errors.Is(err, transcoder.ErrBadInput) {
			failed = causeBadInput
		}
		m.fail(ctx, j, failed, reason(err))
		return
	}
	m.setTitleStatus(ctx, j.Title, fillcast.StatusReady, &packaged{renditions: res.Renditions, files: list})
	j.Status, j.Stage, j.Percent, j.Updated = fsm.JobDone, transcoder.StageDone, 100, m.d.Now().UTC()
	if err := m.put(ctx, j); err != nil {
		m.log.Error("ingest: finish job", "job", id, "err", err)
	}
	os.Remove(j.Source)
	m.log.Info("ingest: job done", "job", id, "title", j.Title, "renditions", len(res.Renditions), "files", len(res.Files), "elapsed", res.Elapsed.Round(time.Millisecond))
	return 0
}

// reason is the one-line explanation shown to the uploader.
func reason(err error) string {
	if errors.Is(err, transcoder.ErrBadInput) {
		return err.Error()
	}
	return "ingest failed: " + err.Error()
}

// progressWriter records a job's progress in the replicated state at most
// every progressEvery, from its own goroutine, so ffmpeg's output is
// never blocked on raft. The latest event wins; older ones are dropped.
type progressWriter struct {
	m      *Manager
	mu     sync.Mutex
	job    fsm.Job
	last   time.Time
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *Manager) startProgress(ctx context.Context, j *fsm.Job) *progressWriter {
	ctx, cancel := context.WithCancel(ctx)
	p := &progressWriter{m: m, job: *j, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
				p.mu.Lock()
				cp := p.job
				p.mu.Unlock()
				if err := m.state.Apply(ctx, fsm.Command{Op: fsm.OpPutJob, Job: &cp}); err != nil && ctx.Err() == nil {
					m.log.Debug("ingest: record progress", "job", cp.ID, "err", err)
				}
			}
		}
	}()
	return p
}

// update is the transcoder's progress callback.
func (p *progressWriter) update(e transcoder.Event) {
	p.mu.Lock()
	now := p.m.d.Now()
	if now.Sub(p.last) < progressEvery && e.Percent < 100 {
		p.mu.Unlock()
		return
	}
	p.last = now
	p.job.Stage, p.job.Percent, p.job.Updated = e.Stage, e.Percent, now.UTC()
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// stop ends the writer and waits for it.
func (p *progressWriter) stop() {
	p.cancel()
	<-p.done
}

// publish PUTs every file of the packaged title to the origin, then its
// file list (read back and checked against its digest), then the
// manifests last: a player never finds a manifest whose segments are not
// there yet, and the list is there before the catalog names it. It
// returns the list's summary, which the title records.
func (m *Manager) publish(ctx context.Context, title string, res *transcoder.Result) (filelist.Summary, error) {
	body, list, err := filelist.Encode(res.Files)
	if err != nil {
		return filelist.Summary{}, fmt.Errorf("ingest: the packaged files: %w", err)
	}
	isManifest := func(p string) bool { return strings.HasSuffix(p, ".m3u8") || strings.HasSuffix(p, ".mpd") }
	var first, last []fillcast.File
	for _, f := range res.Files {
		if isManifest(f.Path) {
			last = append(last, f)
		} else {
			first = append(first, f)
		}
	}
	if err := m.putAll(ctx, title, res.Output, first); err != nil {
		return filelist.Summary{}, err
	}
	if err := m.putList(ctx, title, list.Digest, body); err != nil {
		return filelist.Summary{}, err
	}
	if err := m.verifyList(ctx, title, list.Digest, len(body)); err != nil {
		return filelist.Summary{}, err
	}
	if err := m.putAll(ctx, title, res.Output, last); err != nil {
		return filelist.Summary{}, err
	}
	return list, nil
}

// putAll uploads files with a few in flight at once.
func (m *Manager) putAll(ctx context.Context, title, dir string, files []fillcast.File) error {
	const parallel = 4
	sem := make(chan struct{}, parallel)
	errc := make(chan error, len(files))
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errc <- m.originCall(ctx, func(ctx context.Context) error {
				return m.putFile(ctx, title, dir, f)
			})
		}()
	}
	wg.Wait()
	close(errc)
	// An open breaker wins: the job then waits for the origin instead of
	// failing on the errors that opened it.
	var first error
	for err := range errc {
		if open := (*protect.OpenError)(nil); errors.As(err, &open) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (m *Manager) putFile(ctx context.Context, title, dir string, f fillcast.File) error {
	fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return fmt.Errorf("ingest: publish: %w", err)
	}
	defer fh.Close()
	return m.putObject(ctx, title+"/"+f.Path, fh, f.Size)
}

// putObject PUTs size bytes of body to the origin at path, relative to
// its root, once.
func (m *Manager) putObject(ctx context.Context, path string, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.cfg.OriginURL+"/"+path, body)
	if err != nil {
		return fmt.Errorf("ingest: publish: %w", err)
	}
	req.ContentLength = size
	resp, err := m.originDo(req, "publish "+path)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// originDo sends req to the origin with the admin token, doing what. An
// answer other than a success is an *originError.
func (m *Manager) originDo(req *http.Request, what string) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+m.d.AdminToken)
	resp, err := m.d.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ingest: %s at the origin: %w", what, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &originError{status: resp.StatusCode, msg: fmt.Sprintf("ingest: %s: origin answered %s: %s", what, resp.Status, strings.TrimSpace(string(msg)))}
	}
	return resp, nil
}

// originError is an answer of the origin that is not a success.
type originError struct {
	status int
	msg    string
}

func (e *originError) Error() string { return e.msg }

// retryablePublish says which failed PUTs to the origin to make again:
// transport errors and the origin's 5xx answers, not its refusals.
func retryablePublish(err error) bool {
	var oe *originError
	if errors.As(err, &oe) {
		return oe.status >= 500
	}
	return !errors.Is(err, os.ErrNotExist) && !errors.Is(err, context.Canceled) && !errors.Is(err, errListMismatch)
}

// originCall calls fn, a request to the origin, retried (transport
// errors and 5xx answers, within the retry budget) and guarded by the
// origin's breaker.
func (m *Manager) originCall(ctx context.Context, fn func(ctx context.Context) error) error {
	return guard(ctx, m.d.OriginBreaker, func(ctx context.Context) error {
		return protect.Retry(ctx, protect.RetryConfig{}, m.retries, retryablePublish, fn)
	})
}

// guard runs fn under br, or directly without one.
func guard(ctx context.Context, br *protect.Breaker, fn func(ctx context.Context) error) error {
	if br == nil {
		return fn(ctx)
	}
	return br.Do(ctx, fn)
}
