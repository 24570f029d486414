package evict

import (
	"math"
	"strings"
)

// tracker follows the viewing sessions and titles an Interval policy is
// told of: where each live session is on its title, each title's rate of
// new sessions, and how far sessions play.
type tracker struct {
	dt, idle float64 // seconds
	meanLife float64 // of a session-start count, seconds: half-life / ln 2
	at       int64   // latest request time, as a time.Duration
	now      float64 // the same, seconds
	titles   map[string]*ititle
	sessions map[uint64]*isession
	byLast   isession // sentinel of the live sessions, most recent first
	free     *isession

	// Play statistics, over all titles: requests of each position, how
	// many of them the same session followed with the next position, and
	// session starts. reach and fromNew read the tables refresh derives.
	cover, cont []float64
	starts      float64
	observed    int
	share       []float64 // cover / starts: requests of a position per session start
	reqs        float64   // requests, decayed
	reqsAt      float64
	reqsFirst   float64
	logStay     []float64 // running sum of log(cont/cover)
}

// ititle is a title the policy has seen.
type ititle struct {
	viewers []*isession // live sessions, by virtual start
	count   float64     // session starts, decayed
	countAt float64     // when count was last decayed
	first   float64     // when first seen
}

// isession is a live viewing session.
type isession struct {
	id         uint64
	title      *ititle
	seg        int32   // last position requested
	start      float64 // virtual start: when it requested, or would have, position 0
	last       float64 // time of its last request
	idx        int     // in title.viewers
	prev, next *isession
}

// refreshEvery is how many session requests pass between refreshes of
// the play statistics' derived tables.
const refreshEvery = 1 << 16

// maxPosition bounds the positions the play statistics tell apart;
// farther ones share the last.
const maxPosition = 1 << 14

func (tr *tracker) init(c IntervalConfig) {
	tr.dt = c.SegmentDuration.Seconds()
	tr.idle = c.Idle.Seconds()
	tr.meanLife = c.HalfLife.Seconds() / math.Ln2
	tr.titles = map[string]*ititle{}
	tr.sessions = map[uint64]*isession{}
	tr.byLast.prev, tr.byLast.next = &tr.byLast, &tr.byLast
}

// observe records request q and returns its title and position (-1 if
// unknown).
func (tr *tracker) observe(q Request) (*ititle, int32) {
	if at := int64(q.At); at > tr.at {
		tr.at = at
		tr.now = q.At.Seconds()
		tr.expire()
	}
	if tr.reqs == 0 {
		tr.reqsFirst = tr.now
	}
	tr.reqs = tr.reqs*math.Exp(-(tr.now-tr.reqsAt)/tr.meanLife) + 1
	tr.reqsAt = tr.now
	name := q.Key
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	t := tr.titles[name]
	if t == nil {
		t = &ititle{countAt: tr.now, first: tr.now}
		tr.titles[name] = t
	}
	if q.Session == 0 || q.Segment < 0 {
		return t, -1
	}
	seg := q.Segment
	s := tr.sessions[q.Session]
	switch {
	case s == nil:
		s = tr.newSession(q.Session, t)
	case s.title != t:
		s.title.remove(s)
		s.title = t
		t.add(s)
		tr.started(t)
	case s.seg == seg-1:
		tr.cont[s.seg]++
	}
	pos := min(int(seg), maxPosition-1)
	for len(tr.cover) <= pos {
		tr.cover = append(tr.cover, 0)
		tr.cont = append(tr.cont, 0)
	}
	tr.cover[pos]++
	s.seg, s.last = int32(pos), tr.now
	s.start = tr.now - float64(pos)*tr.dt
	t.fix(s)
	s.prev.next, s.next.prev = s.next, s.prev
	tr.pushFront(s)
	if tr.observed++; tr.observed%refreshEvery == 0 {
		tr.refresh()
	}
	return t, int32(pos)
}

// newSession starts tracking session id, on title t.
func (tr *tracker) newSession(id uint64, t *ititle) *isession {
	s := tr.free
	if s != nil {
		tr.free = s.next
	} else {
		s = new(isession)
	}
	*s = isession{id: id, title: t, seg: -2}
	tr.sessions[id] = s
	t.add(s)
	tr.pushFront(s)
	tr.started(t)
	return s
}

func (tr *tracker) pushFront(s *isession) {
	s.prev, s.next = &tr.byLast, tr.byLast.next
	tr.byLast.next.prev = s
	tr.byLast.next = s
}

// started counts a session start on t.
func (tr *tracker) started(t *ititle) {
	t.count = t.count*math.Exp(-(tr.now-t.countAt)/tr.meanLife) + 1
	t.countAt = tr.now
	tr.starts++
}

// expire forgets the sessions idle for longer than the idle time.
func (tr *tracker) expire() {
	for s := tr.byLast.prev; s != &tr.byLast && s.last < tr.now-tr.idle; s = tr.byLast.prev {
		s.prev.next, s.next.prev = s.next, s.prev
		s.title.remove(s)
		delete(tr.sessions, s.id)
		*s = isession{next: tr.free}
		tr.free = s
	}
}

// refresh derives the tables reach and fromNew read from the counts.
func (tr *tracker) refresh() {
	n := len(tr.cover)
	if cap(tr.share) < n {
		tr.share = make([]float64, n, cap(tr.cover))
		tr.logStay = make([]float64, n+1, cap(tr.cover)+1)
	}
	tr.share, tr.logStay = tr.share[:n], tr.logStay[:n+1]
	sum := 0.0
	for i := range n {
		tr.share[i] = tr.cover[i] / max(tr.starts, 1)
		stay := 1.0
		if tr.cover[i] > 0 {
			stay = max(tr.cont[i]/tr.cover[i], 1e-3)
		}
		tr.logStay[i] = sum
		sum += math.Log(stay)
	}
	tr.logStay[n] = sum
}

// reach is the probability that a session that requested position from
// goes on to request position to.
func (tr *tracker) reach(from, to int32) float64 {
	if len(tr.logStay) == 0 {
		return 0.5
	}
	last := int32(len(tr.logStay) - 1)
	return math.Exp(tr.logStay[min(to, last)] - tr.logStay[min(from, last)])
}

// fromNew is the expected time, in seconds, until a session yet to start
// requests position seg of t: the wait for a session start that goes on
// to request it, then its way there.
func (tr *tracker) fromNew(t *ititle, seg int32) float64 {
	share := 1.0
	if seg >= 0 && len(tr.share) > 0 {
		share = tr.share[min(int(seg), len(tr.share)-1)]
	}
	count := t.count * math.Exp(-(tr.now-t.countAt)/tr.meanLife)
	// A count gathered over an age shorter than the memory stands for
	// a rate over that age (at least a twentieth of the memory, so that
	// one session of a title first seen a minute ago is no flood).
	age := max(tr.now-t.first, tr.meanLife/20)
	window := tr.meanLife * (1 - math.Exp(-age/tr.meanLife))
	rate := count / window * share
	if rate <= 0 {
		return neverSeconds
	}
	return min(1/rate+float64(max(seg, 0))*tr.dt, neverSeconds)
}

// add inserts s into t's viewers by virtual start.
func (t *ititle) add(s *isession) {
	s.idx = len(t.viewers)
	t.viewers = append(t.viewers, s)
	t.fix(s)
}

// remove takes s out of t's viewers.
func (t *ititle) remove(s *isession) {
	vs := t.viewers
	copy(vs[s.idx:], vs[s.idx+1:])
	vs[len(vs)-1] = nil
	t.viewers = vs[:len(vs)-1]
	for i := s.idx; i < len(t.viewers); i++ {
		t.viewers[i].idx = i
	}
}

// fix moves s to its place by virtual start, which moves little while
// it keeps playing.
func (t *ititle) fix(s *isession) {
	vs := t.viewers
	i := s.idx
	for i > 0 && vs[i-1].start > s.start {
		vs[i] = vs[i-1]
		vs[i].idx = i
		i--
	}
	for i+1 < len(vs) && vs[i+1].start < s.start {
		vs[i] = vs[i+1]
		vs[i].idx = i
		i++
	}
	vs[i] = s
	s.idx = i
}

// rate is the recent requests per second.
func (tr *tracker) rate() float64 {
	age := max(tr.now-tr.reqsFirst, tr.meanLife/20)
	return tr.reqs * math.Exp(-(tr.now-tr.reqsAt)/tr.meanLife) / (tr.meanLife * (1 - math.Exp(-age/tr.meanLife)))
}
