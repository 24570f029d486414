// Package opsindex is the operators' event search: an in-memory index of
// the recent player events (package events) that answers "what happened
// to this title, appliance, site or viewer lately" on the operator page
// and the ops API, the job a log search cluster does elsewhere.
//
// An Index is one of a control-plane node's projections of the event
// stream (package stream): Apply folds each batch, remembering the
// stream sequence it has folded to so that a batch delivered again is
// indexed once. It keeps the Config.MaxEvents most recent events it
// received, none older than Config.MaxAge by their ts, and needs no
// checkpoint: after a restart the stream's replay fills it again, the
// events older than MaxAge left out.
//
// Events are kept in the order they came off the stream, with a posting
// list per value of each field a query can name (type, title, appliance,
// site, user): a query walks the shortest list of the fields it names,
// newest first, so a query on a rare title touches that title's events
// and not the whole index. Each event also carries the latest ts of all
// the events before it, which ends a walk once the rest are all older
// than the query's since. An Index is safe for concurrent use.
package opsindex

import (
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/controlplane/events"
)

// Config bounds an Index. The zero value of every field means its
// default, as DefaultConfig spells out.
type Config struct {
	// MaxEvents bounds the events kept: past it, the oldest received
	// is dropped for each new one. An event takes about 300 bytes and
	// its strings, some 90 MB at the default. Zero means 200,000.
	MaxEvents int
	// MaxAge is how long an event is kept, by its ts. Zero means 24h.
	MaxAge time.Duration
}

// DefaultConfig returns the configuration the zero Config stands for.
func DefaultConfig() Config {
	return Config{MaxEvents: 200_000, MaxAge: 24 * time.Hour}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxEvents == 0 {
		c.MaxEvents = d.MaxEvents
	}
	if c.MaxAge == 0 {
		c.MaxAge = d.MaxAge
	}
	return c
}

// Validate reports the first field that cannot work, saying what to use
// instead. Zero fields are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxEvents < 1 || c.MaxEvents > 100_000_000:
		return fillcast.ConfigErrorf("opsindex", "MaxEvents", "%d: want 1 to 100,000,000 events, such as 200000", c.MaxEvents)
	case c.MaxAge < time.Minute:
		return fillcast.ConfigErrorf("opsindex", "MaxAge", "%v: want at least 1m, such as 24h", c.MaxAge)
	}
	return nil
}

// Fields a query can name, each with a posting list per value.
const (
	fieldType = iota
	fieldTitle
	fieldAppliance
	fieldSite
	fieldUser
	numFields
)

// fieldsOf returns e's values of the indexed fields.
func fieldsOf(e *events.Event) [numFields]string {
	return [numFields]string{e.Type, e.Title, e.Appliance, e.Site, e.User}
}

// posting lists the positions of the events with one value of a field,
// in increasing order, in blocks of at most blockSize, so that neither
// appending to a long list nor dropping its oldest position copies it:
// blocks[0][off:] and the later blocks are the positions kept.
type posting struct {
	blocks [][]uint64
	off    int
	n      int // positions kept
}

const blockSize = 512

func (p *posting) push(pos uint64) {
	if k := len(p.blocks); k == 0 || len(p.blocks[k-1]) == blockSize {
		p.blocks = append(p.blocks, make([]uint64, 0, 4))
	}
	last := &p.blocks[len(p.blocks)-1]
	*last = append(*last, pos)
	p.n++
}

// first returns the oldest position kept; the list is not empty.
func (p *posting) first() uint64 { return p.blocks[0][p.off] }

// pop drops the oldest position.
func (p *posting) pop() {
	p.off++
	p.n--
	if p.off == len(p.blocks[0]) {
		p.blocks[0] = nil
		p.blocks, p.off = p.blocks[1:], 0
	}
}

// walk calls fn with the positions kept, newest first, until it returns
// false.
func (p *posting) walk(fn func(pos uint64) bool) {
	for b := len(p.blocks) - 1; b >= 0; b-- {
		blk, lo := p.blocks[b], 0
		if b == 0 {
			lo = p.off
		}
		for i := len(blk) - 1; i >= lo; i-- {
			if !fn(blk[i]) {
				return
			}
		}
	}
}

// Index is the operators' event index. Create one with New.
type Index struct {
	cfg Config
	now func() time.Time

	mu  sync.RWMutex
	seq uint64
	// The event at position p is at index p % MaxEvents of evs, ts (its
	// ts in Unix nanoseconds) and maxTS (the latest ts of it and every
	// event received before it: a walk from the newest stops at the first
	// whose maxTS is before the query's since). The times are kept apart
	// from the events so that a walk reads 16 bytes of each event it
	// passes by, not the whole event.
	evs      []events.Event
	ts       []int64
	maxTS    []int64
	head     uint64 // position of the oldest event kept
	next     uint64 // position of the next event
	latest   int64  // the latest ts received
	postings [numFields]map[string]*posting
}

// New returns an empty Index. now is the clock (nil means time.Now).
func New(cfg Config, now func() time.Time) (*Index, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	x := &Index{cfg: cfg, now: now, latest: minTS}
	for f := range x.postings {
		x.postings[f] = map[string]*posting{}
	}
	return x, nil
}

const minTS = -1 << 63

// Reset empties the index, whose next message is the first of a new
// stream (the one it had indexed is gone).
func (x *Index) Reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq, x.evs, x.ts, x.maxTS, x.head, x.next, x.latest = 0, nil, nil, nil, 0, 0, minTS
	for f := range x.postings {
		x.postings[f] = map[string]*posting{}
	}
}

// Applied returns the stream sequence of the last batch applied.
func (x *Index) Applied() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.seq
}

// Len returns the number of events kept.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return int(x.next - x.head)
}

// Apply indexes the events of the batch at stream sequence seq; a batch
// at or before the last one applied is skipped. An event without ts is
// given the clock's time; one older than MaxAge is left out.
func (x *Index) Apply(seq uint64, batch []events.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if seq != 0 && seq <= x.seq {
		return
	}
	x.seq = max(x.seq, seq)
	now := x.now()
	cutoff := now.Add(-x.cfg.MaxAge)
	x.expire(cutoff)
	for i := range batch {
		e := batch[i]
		if e.TS.IsZero() {
			e.TS = now
		}
		if e.TS.Before(cutoff) {
			continue
		}
		e.StreamID = "" // a lease of the node that took the event, not kept
		x.add(&e)
	}
}

// add appends e, dropping the oldest event when the index is full.
func (x *Index) add(e *events.Event) {
	if x.next-x.head == uint64(x.cfg.MaxEvents) {
		x.drop()
	}
	ts := e.TS.UnixNano()
	x.latest = max(x.latest, ts)
	p := x.next
	x.next++
	i := x.slot(p)
	if i == len(x.evs) {
		x.grow()
	}
	x.evs[i], x.ts[i], x.maxTS[i] = *e, ts, x.latest
	for f, v := range fieldsOf(e) {
		if v == "" {
			continue
		}
		pl := x.postings[f][v]
		if pl == nil {
			pl = &posting{}
			x.postings[f][v] = pl
		}
		pl.push(p)
	}
}

// grow lengthens the ring by one event, doubling its capacity when full
// but never past MaxEvents, so that a full ring wastes no memory.
func (x *Index) grow() {
	if n := len(x.evs); n == cap(x.evs) {
		c := min(max(2*n, 1024), x.cfg.MaxEvents)
		x.evs = append(make([]events.Event, 0, c), x.evs...)
		x.ts = append(make([]int64, 0, c), x.ts...)
		x.maxTS = append(make([]int64, 0, c), x.maxTS...)
	}
	x.evs, x.ts, x.maxTS = x.evs[:len(x.evs)+1], x.ts[:len(x.ts)+1], x.maxTS[:len(x.maxTS)+1]
}

// expire drops the oldest events while their ts is before cutoff. An
// event older than its successors waits behind them; Search does not
// answer it.
func (x *Index) expire(cutoff time.Time) {
	c := cutoff.UnixNano()
	for x.head < x.next && x.ts[x.slot(x.head)] < c {
		x.drop()
	}
}

func (x *Index) slot(p uint64) int { return int(p % uint64(x.cfg.MaxEvents)) }

// drop removes the oldest event: it is the first of each of its posting
// lists.
func (x *Index) drop() {
	i := x.slot(x.head)
	for f, v := range fieldsOf(&x.evs[i]) {
		if v == "" {
			continue
		}
		pl := x.postings[f][v]
		if pl == nil || pl.n == 0 || pl.first() != x.head {
			continue // cannot happen: positions are added and dropped in order
		}
		if pl.pop(); pl.n == 0 {
			delete(x.postings[f], v)
		}
	}
	x.evs[i] = events.Event{} // let the strings go
	x.head++
}
