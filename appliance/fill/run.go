package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
)

// pass fetches the manifest, and the file lists it names that are not on
// disk, pins what it plans, and fills while the window is open: one poll
// of Run. The lists are walked (to pin, count and fill) only when the
// manifest, a list or what the cache holds changed since the last walk.
func (e *Executor) pass(ctx context.Context) {
	if m, err := e.fetchManifest(ctx); err != nil {
		e.setError(err)
	} else if m != nil {
		e.adopt(m)
	}
	e.fetchLists(ctx)
	e.survey(true) // the pins (and the plan's totals, shown while it fills)
	e.fillWhileOpen(ctx)
	e.survey(false) // what the fills brought
}

// adopt switches to m unless it is older than the manifest in force. The
// next survey pins its files.
func (e *Executor) adopt(m *manifest) {
	e.mu.Lock()
	if e.manifest != nil && m.Version < e.manifest.Version {
		e.mu.Unlock()
		e.log.Warn("fill: ignoring an older manifest", "version", m.Version, "current", e.manifest.Version)
		return
	}
	// A new version, or the same version with other contents (a title
	// deleted, published again or with other files since): pin what it
	// lists now.
	changed := e.manifest == nil || m.Version != e.manifest.Version || m.etag != e.manifest.etag
	newCatalog := e.manifest == nil || !slices.EqualFunc(m.Catalog, e.manifest.Catalog, sameTitleRenditions)
	e.manifest = m
	e.mu.Unlock()
	if newCatalog && e.onCatalog != nil {
		e.onCatalog(m.Catalog)
	}
	if changed {
		e.log.Info("fill: manifest adopted", "version", m.Version, "titles", len(m.Titles))
	}
}

func sameTitleRenditions(a, b fillcast.TitleRenditions) bool {
	return a.ID == b.ID && slices.Equal(a.Renditions, b.Renditions)
}

// fillWhileOpen fetches missing planned files that fit in the cache's
// capacity, Config.Parallel at a time, while the window is open and the
// manifest has not changed.
func (e *Executor) fillWhileOpen(ctx context.Context) {
	e.mu.Lock()
	m := e.manifest
	e.mu.Unlock()
	if m == nil {
		return
	}
	e.mu.Lock()
	// The survey just made pinned what fits of this capacity; nothing to
	// walk for when it found every planned file that fits on disk.
	last := e.surveyed
	fit := fitter{capacity: last.stamp.capacity}
	prev := e.walked
	idle := last.stamp.m == m && last.missing == 0 && last.stamp.same(e.stampLocked(), last.over > 0)
	e.mu.Unlock()
	span, loc, err := window(m.FillWindow, m.Timezone)
	if err != nil {
		e.setError(err)
		return
	}
	open := func() bool { return span.contains(e.cfg.Now().In(loc)) }
	if o := open(); !o || idle { // no walk of the lists
		e.mu.Lock()
		e.status.WindowOpen = o
		e.mu.Unlock()
		return
	}
	type job struct{ key, sha string }
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range e.cfg.Parallel {
		wg.Go(func() {
			for j := range jobs {
				e.fillOne(ctx, j.key, j.sha, open)
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
		o := open()
		e.mu.Lock()
		e.status.WindowOpen = o
		e.mu.Unlock()
	}()
	for _, t := range m.Titles {
		stop := false
		e.walkTitle(&t, prev[t.ID], &fit, func(f fillcast.File, fits, current bool) bool {
			key := t.ID + "/" + f.Path
			if !current || !fits || e.cache.Has(key) {
				return true
			}
			o := open()
			e.mu.Lock()
			e.status.WindowOpen = o
			stale := e.manifest != m
			e.mu.Unlock()
			if stop = !o || stale || ctx.Err() != nil; stop {
				return false
			}
			select {
			case jobs <- job{key, f.SHA256}:
				return true
			case <-ctx.Done():
				stop = true
				return false
			}
		})
		if stop {
			return
		}
	}
}

// fillOne fetches one file and books it. A fetch the window's close cut
// short (every fetch under way ends at its next read then, and the
// dispatcher sends no more) or the executor's stop is neither filled nor
// a failure: the file is fetched again in the next window.
func (e *Executor) fillOne(ctx context.Context, key, sha string, open func() bool) {
	n, err := e.fetch(ctx, key, sha, open)
	if errors.Is(err, errWindowClosed) || err != nil && ctx.Err() != nil {
		return
	}
	if err != nil {
		e.failed(err)
		e.log.Warn("fill: file not filled; retried at the next pass", "key", key, "err", err)
		return
	}
	e.mu.Lock()
	e.status.FilledBytes += n
	e.status.PresentFiles++
	e.status.PresentBytes += n
	e.mu.Unlock()
}

// errWindowClosed stops a fill whose window closed while it ran.
var errWindowClosed = errors.New("fill: fill window closed")

// fetch fills one file within the bandwidth cap while open says the
// window is open.
func (e *Executor) fetch(ctx context.Context, key, sha string, open func() bool) (int64, error) {
	f, err := e.src.Fetch(ctx, key)
	if err != nil {
		return 0, err
	}
	f.Body = &limitedBody{ctx: ctx, l: e, rc: f.Body, open: open}
	return e.cache.Store(ctx, key, f, sha)
}

// limitedBody paces reads through the executor's rate limiter and ends
// the fill at the first read after the window closes. Bytes of a read
// that was under way when it closed count as filled outside the window.
type limitedBody struct {
	ctx  context.Context
	l    *Executor
	rc   io.ReadCloser
	open func() bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if !b.open() {
		return 0, errWindowClosed
	}
	if len(p) > b.l.limiter.Burst() {
		p = p[:b.l.limiter.Burst()]
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		if !b.open() {
			b.l.mu.Lock()
			b.l.status.OutsideWindowBytes += int64(n)
			b.l.mu.Unlock()
		}
		if werr := b.l.limiter.WaitN(b.ctx, n); werr != nil {
			return n, fmt.Errorf("fill: rate limit: %w", werr)
		}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

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
