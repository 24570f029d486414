package popularity

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// snapshotVersion is the format Snapshot writes and Restore reads.
const snapshotVersion = 1

// snapshot is the JSON form of a Tracker. Every entry is decayed to At,
// so entries carry no time of their own.
type snapshot struct {
	Version int       `json:"version"`
	At      time.Time `json:"at"`
	// Stream and Seq are the event stream's position folded in.
	Stream  time.Time        `json:"stream,omitzero"`
	Seq     uint64           `json:"seq,omitempty"`
	Titles  []Title          `json:"titles"`
	Regions []snapshotRegion `json:"regions"`
}

type snapshotRegion struct {
	Region string          `json:"region"`
	Views  []snapshotEntry `json:"views"`
}

type snapshotEntry struct {
	Title  string  `json:"title"`
	Bytes  float64 `json:"bytes,omitempty"`
	Starts float64 `json:"starts,omitempty"`
}

// Snapshot returns the Tracker's state as compact JSON, every entry
// decayed to the clock's time, sorted so that equal states give equal
// bytes. The leader persists it and hands it to Restore after a restart
// or an election.
func (t *Tracker) Snapshot() ([]byte, error) {
	at := t.now()
	ns := at.UnixNano()
	t.mu.RLock()
	s := snapshot{Version: snapshotVersion, At: at.UTC(), Stream: t.stream.UTC(), Seq: t.seq, Titles: make([]Title, 0, len(t.titles))}
	for _, ti := range t.titles {
		if !ti.Release.IsZero() {
			ti.Release = ti.Release.UTC()
		}
		s.Titles = append(s.Titles, ti)
	}
	for _, name := range slices.Sorted(maps.Keys(t.regions)) {
		r := t.regions[name]
		sr := snapshotRegion{Region: name, Views: make([]snapshotEntry, 0, len(r))}
		for id, e := range r {
			f := t.factor(ns - e.at)
			sr.Views = append(sr.Views, snapshotEntry{Title: id, Bytes: clamp(e.bytes * f), Starts: clamp(e.starts * f)})
		}
		slices.SortFunc(sr.Views, func(a, b snapshotEntry) int { return cmp.Compare(a.Title, b.Title) })
		s.Regions = append(s.Regions, sr)
	}
	t.mu.RUnlock()
	slices.SortFunc(s.Titles, func(a, b Title) int { return cmp.Compare(a.ID, b.ID) })
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("popularity: snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the Tracker's state with a Snapshot. Nothing changes
// when data is not a valid snapshot.
func (t *Tracker) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: restore: %w", ErrBadInput, err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("%w: restore: snapshot version %d: this build reads version %d", ErrBadInput, s.Version, snapshotVersion)
	}
	titles := make(map[string]Title, len(s.Titles))
	for _, ti := range s.Titles {
		if ti.ID == "" || ti.Size <= 0 {
			return fmt.Errorf("%w: restore: title %q with size %d: want an id and a positive size", ErrBadInput, ti.ID, ti.Size)
		}
		if _, dup := titles[ti.ID]; dup {
			return fmt.Errorf("%w: restore: title %q twice", ErrBadInput, ti.ID)
		}
		titles[ti.ID] = ti
	}
	ns := s.At.UnixNano()
	regions := make(map[string]map[string]*entry, len(s.Regions))
	for _, sr := range s.Regions {
		if sr.Region == "" {
			return fmt.Errorf("%w: restore: region without a name", ErrBadInput)
		}
		if _, dup := regions[sr.Region]; dup {
			return fmt.Errorf("%w: restore: region %q twice", ErrBadInput, sr.Region)
		}
		r := make(map[string]*entry, len(sr.Views))
		for _, v := range sr.Views {
			if v.Title == "" || !finite(v.Bytes) || !finite(v.Starts) || v.Bytes < 0 || v.Starts < 0 {
				return fmt.Errorf("%w: restore: region %q: entry %q with bytes %v, starts %v: want a title and finite non-negative counts", ErrBadInput, sr.Region, v.Title, v.Bytes, v.Starts)
			}
			if _, dup := r[v.Title]; dup {
				return fmt.Errorf("%w: restore: region %q: title %q twice", ErrBadInput, sr.Region, v.Title)
			}
			r[v.Title] = &entry{bytes: v.Bytes, starts: v.Starts, at: ns}
		}
		if len(r) > 0 {
			regions[sr.Region] = r
		}
	}
	t.mu.Lock()
	t.titles, t.regions, t.stream, t.seq = titles, regions, s.Stream, s.Seq
	t.mu.Unlock()
	return nil
}

// clamp keeps a decayed value encodable: a restored snapshot from far in
// the clock's future could otherwise grow past the largest float64, and a
// zero count times that infinite growth is NaN, where nothing grew.
func clamp(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(v, math.MaxFloat64)
}
