package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
)

// adopt switches to m unless it is older than the manifest in force, pins
// its files and recounts what is present.
func (e *Executor) adopt(m *Manifest) {
	e.mu.Lock()
	if e.manifest != nil && m.Version < e.manifest.Version {
		e.mu.Unlock()
		e.log.Warn("fill: ignoring an older manifest", "version", m.Version, "current", e.manifest.Version)
		return
	}
	changed := e.manifest == nil || m.Version != e.manifest.Version
	e.manifest = m
	e.mu.Unlock()
	if changed {
		keys := map[string]bool{}
		for _, t := range m.Titles {
			for _, f := range t.Files {
				keys[t.ID+"/"+f.Path] = true
			}
		}
		e.cache.Pin(keys)
		e.log.Info("fill: manifest adopted", "version", m.Version, "titles", len(m.Titles), "files", len(keys))
	}
	e.recount()
}

// recount refreshes the planned and present totals.
func (e *Executor) recount() {
	e.mu.Lock()
	m := e.manifest
	e.mu.Unlock()
	var s Status
	for _, t := range m.Titles {
		for _, f := range t.Files {
			s.PlannedFiles++
			s.PlannedBytes += f.Size
			if e.cache.Has(t.ID + "/" + f.Path) {
				s.PresentFiles++
				s.PresentBytes += f.Size
			}
		}
	}
	e.mu.Lock()
	e.status.ManifestVersion, e.status.Window = m.Version, m.FillWindow
	e.status.PlannedFiles, e.status.PlannedBytes = s.PlannedFiles, s.PlannedBytes
	e.status.PresentFiles, e.status.PresentBytes = s.PresentFiles, s.PresentBytes
	e.mu.Unlock()
}

// fillWhileOpen fetches missing planned files, one at a time, while the
// window is open and the manifest has not changed.
func (e *Executor) fillWhileOpen(ctx context.Context) {
	e.mu.Lock()
	m := e.manifest
	e.mu.Unlock()
	if m == nil {
		return
	}
	for _, t := range m.Titles {
		for _, f := range t.Files {
			key := t.ID + "/" + f.Path
			if e.cache.Has(key) {
				continue
			}
			open, err := e.windowOpen(m)
			e.mu.Lock()
			e.status.WindowOpen = open
			stale := e.manifest != m
			e.mu.Unlock()
			if err != nil || !open || stale || ctx.Err() != nil {
				return
			}
			n, err := e.fetch(ctx, key, f.SHA256)
			e.mu.Lock()
			if err != nil {
				e.status.Failures++
				e.status.LastError = err.Error()
			} else {
				e.status.FilledBytes += n
				e.status.PresentFiles++
				e.status.PresentBytes += n
			}
			e.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				e.log.Warn("fill: file not filled; retried at the next pass", "key", key, "err", err)
			}
		}
	}
	open, _ := e.windowOpen(m)
	e.mu.Lock()
	e.status.WindowOpen = open
	e.mu.Unlock()
}

// fetch fills one file within the bandwidth cap.
func (e *Executor) fetch(ctx context.Context, key, sha string) (int64, error) {
	f, err := e.src.Fetch(ctx, key)
	if err != nil {
		return 0, err
	}
	f.Body = limitedBody{ctx: ctx, l: e, rc: f.Body}
	return e.cache.Store(ctx, key, f, sha)
}

// limitedBody paces reads through the executor's rate limiter.
type limitedBody struct {
	ctx context.Context
	l   *Executor
	rc  io.ReadCloser
}

func (b limitedBody) Read(p []byte) (int, error) {
	if len(p) > b.l.limiter.Burst() {
		p = p[:b.l.limiter.Burst()]
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		if werr := b.l.limiter.WaitN(b.ctx, n); werr != nil {
			return n, fmt.Errorf("fill: rate limit: %w", werr)
		}
	}
	return n, err
}

func (b limitedBody) Close() error { return b.rc.Close() }

// windowOpen reports whether the manifest's window is open now.
func (e *Executor) windowOpen(m *Manifest) (bool, error) {
	span, loc, err := window(m.FillWindow, m.Timezone)
	if err != nil {
		return false, err
	}
	return span.contains(e.cfg.Now().In(loc)), nil
}

// minutes is a daily window in minutes after local midnight; end < start
// spans midnight.
type minutes struct{ start, end int }

func (w minutes) contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.start <= w.end {
		return m >= w.start && m < w.end
	}
	return m >= w.start || m < w.end
}

// window parses a site's fill window and time zone; empty values mean
// DefaultWindow and UTC.
func window(w, tz string) (minutes, *time.Location, error) {
	if strings.TrimSpace(w) == "" {
		w = DefaultWindow
	}
	start, end, err := fillcast.ParseWindow(w)
	if err != nil {
		return minutes{}, nil, fmt.Errorf("fill: fill window: %w", err)
	}
	loc := time.UTC
	if tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return minutes{}, nil, fmt.Errorf("fill: time zone %q: %w", tz, err)
		}
	}
	if start == end {
		return minutes{}, nil, errors.New("fill: fill window is empty (start equals end)")
	}
	return minutes{start, end}, loc, nil
}
