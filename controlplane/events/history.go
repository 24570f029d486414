package events

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// finishedFraction is how far into a title a progress or stop event
// counts it as finished: players often stop during the end credits.
const finishedFraction = 0.95

// progress is one user's state for one title.
type progress struct {
	position float64   // playhead of the latest session
	duration float64   // last known duration, 0 if unknown
	furthest float64   // furthest point ever reached, counted once
	done     bool      // the latest session reached the end
	finished bool      // the user finished the title at least once
	updated  time.Time // ts of the latest event applied
}

// Viewing is the viewing state folded from the stream's viewing events:
// each profile's progress per title (the history's continue-watching and
// finished lists) and each title's seconds watched by everyone, which
// recommendations train on. It remembers the stream sequence of the last
// batch it applied, so a batch delivered again is not applied twice, and
// it is saved and restored whole (MarshalBinary, UnmarshalBinary) with
// that sequence. It is safe for concurrent use.
type Viewing struct {
	mu     sync.RWMutex
	stream time.Time // the identity (creation time) of the stream folded
	seq    uint64
	users  map[string]map[string]*progress
	watch  map[string]float64 // title -> seconds watched, all users
}

// NewViewing returns an empty Viewing.
func NewViewing() *Viewing {
	return &Viewing{users: map[string]map[string]*progress{}, watch: map[string]float64{}}
}

// Apply folds the viewing events of the batch at stream sequence seq;
// a batch at or before the last one applied is skipped.
func (s *Viewing) Apply(seq uint64, batch []Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq != 0 && seq <= s.seq {
		return
	}
	s.seq = max(s.seq, seq)
	for i := range batch {
		if batch[i].Viewing() {
			s.applyOne(&batch[i])
		}
	}
}

// Applied returns the stream sequence of the last batch applied.
func (s *Viewing) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq
}

// Position returns the identity (creation time) of the stream folded
// and the sequence of the last batch applied.
func (s *Viewing) Position() (stream time.Time, seq uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stream, s.seq
}

// ResetStream empties the state, which from now on folds the stream
// created at stream from its start.
func (s *Viewing) ResetStream(stream time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stream, s.seq = stream, 0
	s.users, s.watch = map[string]map[string]*progress{}, map[string]float64{}
}

// MaxTitlesPerUser bounds one user's history: past it, the title
// updated longest ago is forgotten for the new one.
const MaxTitlesPerUser = 1000

func (s *Viewing) applyOne(e *Event) {
	titles := s.users[e.User]
	if titles == nil {
		titles = map[string]*progress{}
		s.users[e.User] = titles
	}
	p := titles[e.Title]
	if p == nil {
		if len(titles) >= MaxTitlesPerUser {
			forgetOldest(titles)
		}
		p = &progress{}
		titles[e.Title] = p
	}
	if e.DurationS > 0 {
		p.duration = e.DurationS
	}
	pos := e.PositionS
	if p.duration > 0 && pos > p.duration {
		pos = p.duration
	}
	ended := e.Type == TypeComplete ||
		(e.Type != TypePlay && p.duration > 0 && pos >= finishedFraction*p.duration)
	if e.Type == TypeComplete && p.duration > 0 {
		pos = p.duration
	}
	if ended {
		p.finished = true
	}
	if pos > p.furthest {
		s.watch[e.Title] += pos - p.furthest
		p.furthest = pos
	}
	// Events may arrive out of order across batches; an older one must
	// not move the playhead back.
	if e.TS.Before(p.updated) {
		return
	}
	p.updated = e.TS
	p.position = pos
	p.done = ended
}

// forgetOldest deletes the title updated longest ago.
func forgetOldest(titles map[string]*progress) {
	var oldest string
	var at time.Time
	for id, p := range titles {
		if oldest == "" || p.updated.Before(at) {
			oldest, at = id, p.updated
		}
	}
	delete(titles, oldest)
}

// Entry is one title in a user's history.
type Entry struct {
	// Title is the title id.
	Title string `json:"title"`
	// PositionS is where the latest session stopped.
	PositionS float64 `json:"position_s"`
	// DurationS is the title's length, 0 if no event carried it.
	DurationS float64 `json:"duration_s,omitempty"`
	// Progress is PositionS / DurationS, 0 when the duration is unknown.
	Progress float64 `json:"progress"`
	// UpdatedAt is the time of the latest event.
	UpdatedAt time.Time `json:"updated_at"`
}

// History is a user's viewing history, newest first in each list: the
// body of GET /v1/users/{id}/history.
type History struct {
	// User is the user id.
	User string `json:"user"`
	// ContinueWatching lists titles started and not finished in their
	// latest session.
	ContinueWatching []Entry `json:"continue_watching"`
	// Finished lists titles the user watched to the end at least once.
	Finished []Entry `json:"finished"`
}

// History returns user's viewing history with at most limit entries in
// each list (limit ≤ 0: all). An unknown user has empty lists.
func (s *Viewing) History(user string, limit int) History {
	h := History{User: user, ContinueWatching: []Entry{}, Finished: []Entry{}}
	s.mu.RLock()
	for title, p := range s.users[user] {
		e := Entry{Title: title, PositionS: p.position, DurationS: p.duration, UpdatedAt: p.updated}
		if p.duration > 0 {
			e.Progress = p.position / p.duration
		}
		if p.finished {
			h.Finished = append(h.Finished, e)
		}
		if !p.done && p.position > 0 {
			h.ContinueWatching = append(h.ContinueWatching, e)
		}
	}
	s.mu.RUnlock()
	newest := func(a, b Entry) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Title, b.Title)
	}
	slices.SortFunc(h.ContinueWatching, newest)
	slices.SortFunc(h.Finished, newest)
	if limit > 0 {
		h.ContinueWatching = h.ContinueWatching[:min(limit, len(h.ContinueWatching))]
		h.Finished = h.Finished[:min(limit, len(h.Finished))]
	}
	return h
}

// Finished returns the titles user has finished, in no order; recs
// leaves them out of recommendations.
func (s *Viewing) Finished(user string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for title, p := range s.users[user] {
		if p.finished {
			out = append(out, title)
		}
	}
	return out
}

// Interaction is what one user did with one title, the unit recs trains
// on.
type Interaction struct {
	User  string
	Title string
	// Weight is the fraction of the title watched, in (0, 1]; 1 for a
	// finished title, 0.1 when the duration was never reported.
	Weight float64
	// Seconds is the furthest position reached.
	Seconds float64
	// Last is the time of the latest event.
	Last time.Time
}

// Interactions returns one Interaction per (user, title) pair with any
// watch time, in no order.
func (s *Viewing) Interactions() []Interaction {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Interaction
	for user, titles := range s.users {
		for title, p := range titles {
			w := 0.1
			switch {
			case p.finished:
				w = 1
			case p.duration > 0:
				w = min(p.furthest/p.duration, 1)
			}
			if w <= 0 {
				continue
			}
			out = append(out, Interaction{User: user, Title: title, Weight: w, Seconds: p.furthest, Last: p.updated})
		}
	}
	return out
}

// TitleWatchSeconds returns, per title, the seconds watched by all users
// (each user's furthest position, counted once).
func (s *Viewing) TitleWatchSeconds() map[string]float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]float64, len(s.watch))
	for k, v := range s.watch {
		out[k] = v
	}
	return out
}
