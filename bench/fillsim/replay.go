package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/bench/cachesim/trace"
)

// event is one segment request of one viewing session.
type event struct {
	at      time.Duration // since the trace's start
	session int32
	segment int32
}

// served is one request as the bench recorded it, for the cache policy
// replay: the object, its size and who answered it.
type served struct {
	key  string
	size int64
	by   string // appliance id, or "origin"
	hit  bool   // the appliance answered from its cache
}

// players replays a trace's viewing sessions against a running system in
// simulated time: each session asks the control plane for playback once,
// then fetches its segments from the first URL that answers, one every
// segment duration.
type players struct {
	sys      *system
	tr       *trace.Trace
	catalog  []fillcast.Title
	workers  int
	sessions []session

	mu       sync.Mutex
	recorded []served
	lagMax   time.Duration
	late     int    // requests sent more than a simulated minute late
	lastErr  string // why the last failed request failed
}

// session is a viewing session's playback answer, asked for once.
type session struct {
	once sync.Once
	urls []string
}

func newPlayers(sys *system, tr *trace.Trace, catalog []fillcast.Title, workers int) *players {
	return &players{sys: sys, tr: tr, catalog: catalog, workers: workers, sessions: make([]session, len(tr.Sessions))}
}

// events expands the sessions into their requests before end, by time.
func events(tr *trace.Trace, end time.Duration) []event {
	var out []event
	every := tr.Config.SegmentDuration
	for i, s := range tr.Sessions {
		for k := range s.Count {
			at := s.Start + time.Duration(k)*every
			if at >= end {
				break
			}
			out = append(out, event{at: at, session: int32(i), segment: s.First + k})
		}
	}
	slices.SortFunc(out, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	return out
}

// Run replays the first days of the trace, registering the new releases
// when the studios deliver them (the day before their release), and
// returns once the last day is over on the simulated clock.
func (p *players) Run(ctx context.Context, days int) error {
	end := time.Duration(days) * 24 * time.Hour
	evs := events(p.tr, end)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var relErr error // read after wg.Wait
	wg.Go(func() {
		if relErr = p.releases(ctx, end); relErr != nil {
			cancel()
		}
	})
	work := make(chan event, p.workers)
	for range p.workers {
		wg.Go(func() {
			for e := range work {
				p.fetch(ctx, e)
			}
		})
	}
	minute := p.sys.clock.WallSpan(time.Minute)
	for _, e := range evs {
		late := -p.sleepUntil(ctx, p.tr.Config.Start.Add(e.at))
		if late > 0 {
			p.mu.Lock()
			p.lagMax = max(p.lagMax, late)
			if late > minute {
				p.late++
			}
			p.mu.Unlock()
		}
		select {
		case work <- e:
		case <-ctx.Done():
		}
	}
	close(work)
	p.sleepUntil(ctx, p.tr.Config.Start.Add(end))
	cancel()
	wg.Wait()
	return relErr
}

// sleepUntil waits until the simulated clock reads at and returns how
// far ahead it was (negative: how late).
func (p *players) sleepUntil(ctx context.Context, at time.Time) time.Duration {
	d := time.Until(p.sys.clock.Wall(at))
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return d
}

// releases registers each new release at its announcement time.
func (p *players) releases(ctx context.Context, end time.Duration) error {
	var due []int
	for i, t := range p.tr.Titles {
		if !t.Announced.IsZero() && t.Announced.Before(p.tr.Config.Start.Add(end)) {
			due = append(due, i)
		}
	}
	slices.SortFunc(due, func(a, b int) int { return p.tr.Titles[a].Announced.Compare(p.tr.Titles[b].Announced) })
	for _, i := range due {
		p.sleepUntil(ctx, p.tr.Titles[i].Announced)
		if ctx.Err() != nil {
			return nil
		}
		if err := p.sys.register(ctx, &p.catalog[i]); err != nil {
			return err
		}
	}
	return nil
}

// fetch makes one segment request and books it.
func (p *players) fetch(ctx context.Context, e event) {
	s := &p.sessions[e.session]
	title := p.tr.Titles[p.tr.Sessions[e.session].Title].ID
	s.once.Do(func() { s.urls = p.playback(ctx, title) })
	path := p.tr.Path(int(e.segment))
	c := counts{reqs: 1}
	by, why := "", "no playback URLs"
	for _, u := range s.urls {
		u, _, _ = strings.Cut(u, "?") // the trace context of the first request
		base, ok := strings.CutSuffix(u, "master.m3u8")
		if !ok {
			continue
		}
		n, hit, err := p.get(ctx, base+path)
		if err != nil {
			why = err.Error()
			continue
		}
		c.bytes = n
		if hit {
			c.hitBytes, c.hits = n, 1
		}
		by = "origin"
		for id, a := range p.sys.Appliances {
			if strings.HasPrefix(u, a+"/") {
				by = id
			}
		}
		break
	}
	if by == "" {
		c.errors = 1
	}
	p.sys.ledger.add(p.tr.Time(e.at), c)
	p.mu.Lock()
	if by != "" {
		p.recorded = append(p.recorded, served{key: title + "/" + path, size: c.bytes, by: by, hit: c.hits > 0})
	} else if ctx.Err() == nil {
		p.lastErr = why
	}
	p.mu.Unlock()
}

// playback asks the control plane where to play title, as a player in
// the site would, as the simulation's viewer on its one stream lease
// (system.stream); a failed call leaves the session without URLs, which
// its requests count as errors.
func (p *players) playback(ctx context.Context, title string) []string {
	pb, err := p.sys.viewer.Playback(ctx, title, "hls", p.sys.stream)
	if err != nil {
		return nil
	}
	return pb.URLs
}

// get fetches url and reports the body size and whether an appliance's
// cache answered it (X-Cache: HIT-memory or HIT-disk).
func (p *players) get(ctx context.Context, url string) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := p.sys.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("fillsim: %s: %s", url, resp.Status)
	}
	return n, strings.HasPrefix(resp.Header.Get("X-Cache"), "HIT"), nil
}
