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

// adopt switches to m unless it is older than the manifest in force, pins
// its files and recounts what is present.
func (e *Executor) adopt(m *manifest) {
	e.mu.Lock()
	if e.manifest != nil && m.Version < e.manifest.Version {
		e.mu.Unlock()
		e.log.Warn("fill: ignoring an older manifest", "version", m.Version, "current", e.manifest.Version)
		return
	}
	// A new version, or the same version with other contents (a title
	// deleted or published again since): pin what it lists now.
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
	e.pin(m)
	e.recount()
}

// pin pins the files m plans that fit in the cache's capacity, and only
// those, unless they are pinned already for m and that capacity.
func (e *Executor) pin(m *manifest) {
	capacity := e.cache.Capacity()
	e.mu.Lock()
	same := e.pinned.m == m && e.pinned.capacity == capacity
	e.pinned.m, e.pinned.capacity = m, capacity
	e.mu.Unlock()
	if same {
		return
	}
	keys, over := fitting(m, capacity)
	e.cache.Pin(keys)
	if over > 0 {
		e.log.Warn("fill: the manifest plans more than the cache holds: the last files are neither pinned nor filled",
			"version", m.Version, "capacity", capacity, "over_bytes", over)
	}
}

// fitting returns the keys of the files m plans that fit in capacity
// bytes, taken in the manifest's order, and the planned bytes past it.
func fitting(m *manifest, capacity int64) (map[string]bool, int64) {
	keys := map[string]bool{}
	var total, over int64
	for _, t := range m.Titles {
		for _, f := range t.Files {
			if total += f.Size; total > capacity {
				over += f.Size
				continue
			}
			keys[t.ID+"/"+f.Path] = true
		}
	}
	return keys, over
}

func sameTitleRenditions(a, b fillcast.TitleRenditions) bool {
	return a.ID == b.ID && slices.Equal(a.Renditions, b.Renditions)
}

// recount refreshes the planned and present totals and the complete
// titles.
func (e *Executor) recount() {
	e.mu.Lock()
	m := e.manifest
	e.mu.Unlock()
	if m == nil {
		return
	}
	var s Status
	_, s.OverCapacityBytes = fitting(m, e.cache.Capacity())
	complete := make([]string, 0, len(m.Titles))
	for _, t := range m.Titles {
		whole := true
		for _, f := range t.Files {
			s.PlannedFiles++
			s.PlannedBytes += f.Size
			if e.cache.Has(t.ID + "/" + f.Path) {
				s.PresentFiles++
				s.PresentBytes += f.Size
			} else {
				whole = false
			}
		}
		if whole {
			complete = append(complete, t.ID)
		}
	}
	slices.Sort(complete)
	e.mu.Lock()
	if e.manifest == m {
		e.complete = complete
	}
	e.status.ManifestVersion, e.status.Window = m.Version, m.FillWindow
	e.status.PlannedFiles, e.status.PlannedBytes = s.PlannedFiles, s.PlannedBytes
	e.status.PresentFiles, e.status.PresentBytes = s.PresentFiles, s.PresentBytes
	e.status.OverCapacityBytes = s.OverCapacityBytes
	e.mu.Unlock()
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
	e.pin(m) // again if a disk failed since
	e.mu.Lock()
	fit, _ := fitting(m, e.pinned.capacity)
	e.mu.Unlock()
	span, loc, err := window(m.FillWindow, m.Timezone)
	if err != nil {
		e.setError(err)
		return
	}
	open := func() bool { return span.contains(e.cfg.Now().In(loc)) }
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
		for _, f := range t.Files {
			key := t.ID + "/" + f.Path
			if !fit[key] || e.cache.Has(key) {
				continue
			}
			o := open()
			e.mu.Lock()
			e.status.WindowOpen = o
			stale := e.manifest != m
			e.mu.Unlock()
			if !o || stale || ctx.Err() != nil {
				return
			}
			select {
			case jobs <- job{key, f.SHA256}:
			case <-ctx.Done():
				return
			}
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
	if err != nil {
		e.log.Warn("fill: file not filled; retried at the next pass", "key", key, "err", err)
	}
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
