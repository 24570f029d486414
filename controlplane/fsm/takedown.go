package fsm

import (
	"fmt"
	"sort"

	"github.com/fillcast/fillcast"
)

// Takedowns. Deleting a title (OpDeleteTitle with a Takedown) takes it
// down: every appliance purges it and refuses the playback tokens issued
// for it before, and the origin deletes its files. The state keeps a
// bounded record of takedowns, numbered in log order, that heartbeats
// answer appliances from (TakedownRecord.Reply), and the takedowns whose
// origin files the leader still has to delete (OpOriginPurged records
// that it did).

// OpOriginPurged records that the origin deleted the files of a
// takedown: Takedown names it by title and sequence number.
const OpOriginPurged = "origin_purged"

// KeptTakedowns is how many takedowns the record keeps, the latest: an
// appliance that has applied none of them is told to resync (purge its
// whole cache) rather than miss one.
const KeptTakedowns = 8192

// ErrTakingDown is what writing a title returns while its origin files
// are still being deleted: created again now, it could be served the old
// files. It wraps fillcast.ErrConflict (409).
var ErrTakingDown = fmt.Errorf("%w: the title was taken down and the origin still holds its files", fillcast.ErrConflict)

// Takedown is a takedown as the state records it.
type Takedown struct {
	fillcast.Takedown
	// Origin says the origin's files are to be deleted: the node that
	// took the title down publishes to an origin.
	Origin bool `json:"origin,omitempty"`
}

// TakedownRecord is the replicated record of takedowns. It is immutable:
// every change makes a new one, so a snapshot shares it.
type TakedownRecord struct {
	// Seq is the sequence number of the latest takedown, 0 for none.
	Seq uint64 `json:"seq"`
	// Log holds the latest KeptTakedowns takedowns, oldest first.
	Log []Takedown `json:"log,omitempty"`
	// OriginPending are the takedowns whose origin files are still to be
	// deleted, by title: the latest of each title.
	OriginPending map[string]Takedown `json:"origin_pending,omitempty"`
}

// checkTakedown is the structural check of a takedown command.
func checkTakedown(c Command) error {
	td := c.Takedown
	if td == nil {
		return nil
	}
	if err := fillcast.ValidateTitleID(td.Title); err != nil {
		return invalid("takedown title: %v", err)
	}
	switch {
	case c.Op == OpDeleteTitle && td.Title != c.ID:
		return invalid("takedown of %q in the deletion of %q", td.Title, c.ID)
	case c.Op == OpDeleteTitle && (td.TokensUntil <= 0 || td.At.IsZero()):
		return invalid("takedown of %s needs at and tokens_until", td.Title)
	case c.Op == OpOriginPurged && td.Seq == 0:
		return invalid("origin_purged of %s needs the takedown's seq", td.Title)
	}
	return nil
}

// checkTakedownState refuses what contradicts the record: taking down a
// title that does not exist, writing a title whose origin files are
// being deleted, and confirming a purge that is not pending.
func checkTakedownState(s *State, c Command) error {
	switch c.Op {
	case OpDeleteTitle:
		if c.Takedown != nil && s.Titles[c.ID] == nil {
			return fmt.Errorf("fsm: %w: title %s", ErrNotFound, c.ID)
		}
	case OpPutTitle, OpCreateTitle:
		if _, ok := s.Takedowns.pending(c.Title.ID); ok {
			return fmt.Errorf("fsm: %w: title %s: try again once the origin has deleted them", ErrTakingDown, c.Title.ID)
		}
	case OpOriginPurged:
		if p, ok := s.Takedowns.pending(c.Takedown.Title); !ok || p.Seq != c.Takedown.Seq {
			return fmt.Errorf("fsm: %w: no pending origin purge of %s #%d", ErrNotFound, c.Takedown.Title, c.Takedown.Seq)
		}
	}
	return nil
}

// applyTakedown records a takedown, or the origin purge of one.
func applyTakedown(s *State, c Command) {
	if c.Takedown == nil {
		return
	}
	cur := s.Takedowns
	if cur == nil {
		cur = &TakedownRecord{}
	}
	next := &TakedownRecord{Seq: cur.Seq, Log: cur.Log, OriginPending: cur.OriginPending}
	switch c.Op {
	case OpDeleteTitle:
		td := *c.Takedown
		next.Seq++
		td.Seq = next.Seq
		// Appending may write into the array the current record's Log
		// shares, past its length, where no holder of that record (a
		// snapshot being written) reads: only the latest record is
		// appended to.
		next.Log = append(cur.Log, td)
		next.Log = next.Log[max(0, len(next.Log)-KeptTakedowns):]
		if td.Origin {
			next.OriginPending = cloneMap(cur.OriginPending)
			next.OriginPending[td.Title] = td
		}
	case OpOriginPurged:
		next.OriginPending = cloneMap(cur.OriginPending)
		delete(next.OriginPending, c.Takedown.Title)
		if len(next.OriginPending) == 0 {
			next.OriginPending = nil
		}
	}
	s.Takedowns = next
}

func (r *TakedownRecord) pending(title string) (Takedown, bool) {
	if r == nil {
		return Takedown{}, false
	}
	td, ok := r.OriginPending[title]
	return td, ok
}

// Pending returns the takedowns whose origin files are still to be
// deleted, oldest first.
func (r *TakedownRecord) Pending() []Takedown {
	if r == nil {
		return nil
	}
	out := make([]Takedown, 0, len(r.OriginPending))
	for _, td := range r.OriginPending {
		out = append(out, td)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Reply returns the heartbeat answer for an appliance that has applied
// the takedowns up to since: the later ones; all of them when since is
// from another history (beyond Seq, as after a restore from an older
// backup); all of them and Resync when since is older than the record
// reaches (an appliance new or down that long: it purges everything).
func (r *TakedownRecord) Reply(since uint64) fillcast.HeartbeatReply {
	if r == nil {
		return fillcast.HeartbeatReply{}
	}
	out := fillcast.HeartbeatReply{TakedownSeq: r.Seq}
	if since == r.Seq {
		return out
	}
	from := 0
	switch first := r.Seq - uint64(len(r.Log)) + 1; {
	case since > r.Seq:
	case since+1 < first:
		out.Resync = true
	default:
		from = sort.Search(len(r.Log), func(i int) bool { return r.Log[i].Seq > since })
	}
	out.Takedowns = make([]fillcast.Takedown, 0, len(r.Log)-from)
	for _, td := range r.Log[from:] {
		out.Takedowns = append(out.Takedowns, td.Takedown)
	}
	return out
}
