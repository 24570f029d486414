package ratelimit

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/auth"
	"github.com/prometheus/client_golang/prometheus"
)

// Rule is a runtime limit, from a replicated "limit" rule: a bucket per
// principal, of Limit, for the requests to Route (a gateway route name
// such as "search"; "" for every route) by principals of Class ("" for
// every limited class). It applies on top of the class default and any
// other matching rule: a request needs a token from each.
type Rule struct {
	// ID names the rule: it identifies it across SetRules calls and
	// labels its refusals in metrics.
	ID string
	// Route is the gateway route name the rule limits; "" for all.
	Route string
	// Class is the class of principal the rule limits; "" for all.
	Class Class
	// Limit is each principal's bucket.
	Limit Limit
}

// Validate checks r: an id, a limited class or "", a valid limit.
func (r Rule) Validate() error {
	if r.ID == "" {
		return errors.New("ratelimit: rule without id")
	}
	if _, ok := classIndex(r.Class); !ok && r.Class != "" {
		return fmt.Errorf("ratelimit: rule %q: class %q: want viewer, apikey, appliance, anonymous or empty for all (nodes are never limited)", r.ID, r.Class)
	}
	if p := r.Limit.problem(); p != "" {
		return fmt.Errorf("ratelimit: rule %q: limit %s: %s", r.ID, r.Limit, p)
	}
	return nil
}

// Limiter decides whether a principal's API request is within its
// limits: its class's default, and the rules that match the request. It
// is safe for concurrent use, and its limits and rules may change while
// it runs.
type Limiter struct {
	seed    maphash.Seed
	maxKeys int
	// classes are the class defaults' tables, by class index.
	classes [numClasses]*Table
	// rules is the current rule set, replaced whole by SetRules.
	rules atomic.Pointer[ruleSet]
	// mu serializes SetRules and guards lastSeq.
	mu sync.Mutex
	// lastSeq is the seq of the newest rule table.
	lastSeq uint64

	refused *prometheus.CounterVec
	// classRefused are refused's series for the class defaults.
	classRefused [numClasses]prometheus.Counter
}

// ruleSet is a set of rules ready for Allow.
type ruleSet struct {
	byID map[string]*ruleEntry
	// byClass are the rules that apply to each class, by class index, in
	// the order of their tables' seq: the order Allow locks them in.
	byClass [numClasses][]*ruleEntry
}

// ruleEntry is a rule with its buckets. Entries are never changed once
// published: SetRules makes a new one that shares the table.
type ruleEntry struct {
	Rule
	t *Table
	// seq numbers t, the newer the higher, for as long as t lives: Allow
	// locks its shards in this order, which cannot deadlock however the
	// rule set changes.
	seq uint64
	// refused are the rule's metric series, by the class of the refused
	// principal.
	refused [numClasses]prometheus.Counter
}

// New returns a limiter of cfg's class limits and no rules, its counter
// fillcast_rate_limited_total registered in reg (none when reg is nil).
func New(cfg Config, reg prometheus.Registerer) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Limiter{
		seed:    maphash.MakeSeed(),
		maxKeys: maxKeys,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fillcast_rate_limited_total",
			Help: "API requests refused for being over a rate limit, by the principal's class and the id of the rule that refused them (empty for the class's default limit).",
		}, []string{"class", "rule"}),
	}
	defaults := defaultLimits()
	for i, c := range classes {
		lim, ok := cfg.Classes[c]
		if !ok {
			lim = defaults[c]
		}
		l.classes[i] = newTable(lim, maxKeys, l.seed)
		l.classRefused[i] = l.refused.WithLabelValues(string(c), "")
	}
	l.rules.Store(&ruleSet{})
	if reg != nil {
		if err := reg.Register(l.refused); err != nil {
			return nil, fmt.Errorf("ratelimit: register metrics: %w", err)
		}
	}
	return l, nil
}

// SetClass changes the default limit of class c at run time; its buckets
// keep their tokens, up to the new burst. It refuses ClassNode, unknown
// classes and invalid limits, changing nothing.
func (l *Limiter) SetClass(c Class, lim Limit) error {
	i, ok := classIndex(c)
	if !ok {
		return fmt.Errorf("ratelimit: class %q: want viewer, apikey, appliance or anonymous (nodes are never limited)", c)
	}
	if err := lim.Validate(); err != nil {
		return err
	}
	l.classes[i].SetLimit(lim)
	return nil
}

// Class returns the current default limit of class c; the zero Limit for
// ClassNode and unknown classes.
func (l *Limiter) Class(c Class) Limit {
	i, ok := classIndex(c)
	if !ok {
		return Limit{}
	}
	return l.classes[i].Limit()
}

// SetRules replaces the runtime rules. A rule whose id, route and class
// are those of a current rule keeps its buckets, adopting a changed limit
// as Table.SetLimit does; other rules start with full buckets, and the
// buckets of rules left out are dropped. Invalid rules (Rule.Validate)
// and repeated ids are left out, and the returned error lists them; the
// others apply all the same, so a bad rule cannot stop the good ones.
func (l *Limiter) SetRules(rules []Rule) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.rules.Load()
	next := &ruleSet{byID: make(map[string]*ruleEntry, len(rules))}
	var errs []error
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if next.byID[r.ID] != nil {
			errs = append(errs, fmt.Errorf("ratelimit: rule %q given twice: the first applies", r.ID))
			continue
		}
		e := &ruleEntry{Rule: r}
		if o := old.byID[r.ID]; o != nil && o.Route == r.Route && o.Class == r.Class {
			e.t, e.seq, e.refused = o.t, o.seq, o.refused
			e.t.SetLimit(r.Limit)
		} else {
			l.lastSeq++
			e.t, e.seq = newTable(r.Limit, l.maxKeys, l.seed), l.lastSeq
			for i, c := range classes {
				e.refused[i] = l.refused.WithLabelValues(string(c), r.ID)
			}
		}
		next.byID[r.ID] = e
		for i, c := range classes {
			if r.Class == "" || r.Class == c {
				next.byClass[i] = append(next.byClass[i], e)
			}
		}
	}
	for _, es := range next.byClass {
		slices.SortFunc(es, func(a, b *ruleEntry) int { return cmp.Compare(a.seq, b.seq) })
	}
	l.rules.Store(next)
	for id := range old.byID {
		if next.byID[id] == nil {
			l.refused.DeletePartialMatch(prometheus.Labels{"rule": id})
		}
	}
	return errors.Join(errs...)
}

// Rules returns the rules in force, in no particular order.
func (l *Limiter) Rules() []Rule {
	rs := l.rules.Load()
	out := make([]Rule, 0, len(rs.byID))
	for _, e := range rs.byID {
		out = append(out, e.Rule)
	}
	return out
}

// keyBuf is the stack room for a request's bucket key: principal ids
// beyond it cost an allocation.
const keyBuf = 96

// Allow takes one token from every limit that applies to a request to
// route by p from client (the address matters for anonymous principals
// alone): the class default, and each rule matching route and class.
// When any has none, ok is false, nothing is taken from any of them, and
// retryAfter says when the slowest of them will have one: at least a
// second, rounded up to whole seconds, BlockedRetryAfter when a limit
// blocks. Nodes are never limited. A request of a principal that has its
// buckets already allocates nothing, unless its key is longer than
// keyBuf or more than seven rules match it.
func (l *Limiter) Allow(route string, p auth.Principal, client netip.Addr, now time.Time) (retryAfter time.Duration, ok bool) {
	ci, limited := kindIndex(p.Kind)
	if !limited {
		return 0, true
	}
	var buf [keyBuf]byte
	key := appendKey(buf[:0], ci, p, client)
	h := maphash.Bytes(l.seed, key)

	var room [8]slot
	slots := append(room[:0], slot{t: l.classes[ci], refused: l.classRefused[ci]})
	for _, e := range l.rules.Load().byClass[ci] {
		if e.Route == "" || e.Route == route {
			slots = append(slots, slot{t: e.t, refused: e.refused[ci]})
		}
	}
	if len(slots) == 1 {
		wait, ok := slots[0].t.allow(h, key, now)
		if ok {
			return 0, true
		}
		l.classRefused[ci].Inc()
		return retryAfterOf(wait), false
	}
	wait, refusedBy := allowAll(slots, h, key, now)
	if refusedBy == nil {
		return 0, true
	}
	refusedBy.Inc()
	return retryAfterOf(wait), false
}

// slot is one of the limits a request counts against: its table, the
// request's shard of it, what the check found, and the counter of the
// limit's refusals.
type slot struct {
	t       *Table
	refused prometheus.Counter
	sh      *shard
	p       *params
	e       *entry
	at      time.Time
}

// allowAll takes a token from key's limiter in every slot's table if each
// has one; if not, it takes none, and wait is the longest of the waits
// and refusedBy the counter of the limit that asked for it (the first of
// the longest). It holds the shards of all the tables at once, so that
// no other request takes a token between the check and the take: a
// refused request never holds a token that it would have to give back.
// The locks are taken in one order, the class's table first and then the
// rules' by seq, so that no two requests can each hold a lock the other
// waits for.
func allowAll(slots []slot, h uint64, key []byte, now time.Time) (wait time.Duration, refusedBy prometheus.Counter) {
	for i := range slots {
		s := &slots[i]
		s.sh = s.t.shardOf(h)
		s.sh.mu.Lock()
	}
	for i := range slots {
		s := &slots[i]
		s.p = s.t.p.Load()
		var w time.Duration
		switch {
		case s.p.unlimited:
			continue
		case s.p.blocked:
			w = BlockedRetryAfter
		default:
			var ok bool
			if s.e, s.at, w, ok = s.sh.check(key, s.p, 1, now); ok {
				continue
			}
		}
		if w > wait {
			wait, refusedBy = w, s.refused
		}
	}
	if refusedBy == nil {
		for i := range slots {
			s := &slots[i]
			switch {
			case s.p.unlimited:
			case s.e == nil:
				s.sh.add(key, s.p, now).lim.AllowN(now, 1)
			default:
				s.e.lim.AllowN(s.at, 1)
			}
		}
	}
	for i := range slots {
		slots[i].sh.mu.Unlock()
	}
	return wait, refusedBy
}

// kindIndex returns the index of the class of principals of kind k, as
// ClassOf would name it; false for nodes. It spares the hot path
// comparing class names.
func kindIndex(k auth.Kind) (int, bool) {
	switch k {
	case auth.Viewer:
		return 0, true
	case auth.Operator:
		return 1, true
	case auth.Appliance:
		return 2, true
	case auth.Node:
		return 0, false
	}
	return anonymousIdx, true
}

// appendKey appends to b the bucket key of p, of class index ci: the
// class, then the principal's id or, for an anonymous one, its client
// address. The class keeps ids of different classes apart in the tables
// of rules that apply to several.
func appendKey(b []byte, ci int, p auth.Principal, client netip.Addr) []byte {
	b = append(b, byte('0'+ci))
	if ci != anonymousIdx {
		return append(b, p.ID...)
	}
	return appendClientKey(b, client)
}

// appendClientKey appends the key of a client address: an IPv4 address
// (or an IPv4-mapped IPv6 one) whole, an IPv6 address by its /64, the
// block one subscriber usually holds; an invalid address is one key
// shared by all.
func appendClientKey(b []byte, a netip.Addr) []byte {
	a = a.Unmap()
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, '4'), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(append(b, '6'), v[:8]...)
	}
	return append(b, '-')
}
