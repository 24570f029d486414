package accounts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fillcast/fillcast/auth"
)

// Viewer is who a session token speaks for: the account, its plan, the
// profile chosen for the request and all of the account's profiles.
// Everything it points to is shared and must not be modified.
type Viewer struct {
	Session  *Session
	Account  *Account
	Plan     *Plan
	Profile  *Profile
	Profiles []Profile
}

// ErrNoProfile is a request naming a profile the account does not have.
var ErrNoProfile = errors.New("accounts: no such profile on this account")

// Viewer returns who token speaks for, with the profile of id profile (the
// account's first when empty). Lookups are cached for CacheTTL; a session
// idle for SessionIdle has expired. It returns ErrBadSession for any
// token that does not open a live session, ErrNoProfile for an unknown
// profile, with the rest of the Viewer filled in but its Profile nil.
func (s *Service) Viewer(ctx context.Context, token, profile string) (*Viewer, error) {
	now := s.d.Now()
	b, cached := s.cache.get(token, now)
	if !cached {
		var err error
		if b, err = s.load(ctx, token); err != nil {
			return nil, err
		}
		s.cache.put(token, b, now.Add(s.cfg.CacheTTL))
	}
	if now.Sub(b.session.LastSeen) >= s.cfg.SessionIdle {
		s.cache.dropSession(b.session.ID)
		return nil, ErrBadSession
	}
	if now.Sub(b.session.LastSeen) >= s.cfg.TouchEvery {
		// Best effort, and short: a request waits for no leader to note
		// that its session is still in use.
		tctx, cancel := context.WithTimeout(ctx, touchTimeout)
		if err := s.d.Store.TouchSession(tctx, b.session.ID, now.UTC()); err != nil {
			s.d.Log.Warn("accounts: touch session", "session", b.session.ID, "err", err)
		}
		cancel()
		s.cache.dropSession(b.session.ID)
	}
	v, err := b.viewer(profile)
	if errors.Is(err, ErrNoProfile) && cached {
		// A profile made through another node within CacheTTL: look
		// again before refusing it.
		s.cache.dropSession(b.session.ID)
		if b, err = s.load(ctx, token); err != nil {
			return nil, err
		}
		s.cache.put(token, b, now.Add(s.cfg.CacheTTL))
		v, err = b.viewer(profile)
	}
	return v, err
}

// touchTimeout bounds the write that notes a session's use.
const touchTimeout = time.Second

// viewer is the Viewer of b with the profile of id profile (the first
// when empty), or with a nil Profile and ErrNoProfile. Viewers are made
// once per cached lookup and shared.
func (b *viewerBase) viewer(profile string) (*Viewer, error) {
	for i := range b.profiles {
		if b.profiles[i].ID == profile || profile == "" {
			return &b.views[i], nil
		}
	}
	return &b.views[len(b.profiles)], ErrNoProfile
}

// prepare makes b's Viewers: one per profile, and one without.
func (b *viewerBase) prepare() *viewerBase {
	b.views = make([]Viewer, len(b.profiles)+1)
	for i := range b.views {
		b.views[i] = Viewer{Session: &b.session, Account: &b.account, Plan: &b.plan, Profiles: b.profiles}
		if i < len(b.profiles) {
			b.views[i].Profile = &b.profiles[i]
		}
	}
	return b
}

// load reads what a token's session needs from the store.
func (s *Service) load(ctx context.Context, token string) (*viewerBase, error) {
	id, ok := auth.SessionID(token)
	if !ok {
		return nil, ErrBadSession
	}
	sess, err := s.d.Store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && !auth.SecretMatches(token, sess.Hash) {
		return nil, ErrBadSession
	}
	if err != nil {
		return nil, err
	}
	b := &viewerBase{session: sess}
	if b.account, err = s.d.Store.Account(ctx, sess.Account); err != nil {
		return nil, s.lost(err, "account", sess.Account)
	}
	if b.plan, err = s.Plan(ctx, b.account.Plan); err != nil {
		return nil, s.lost(err, "plan", b.account.Plan)
	}
	if b.profiles, err = s.d.Store.Profiles(ctx, sess.Account); err != nil {
		return nil, err
	}
	if len(b.profiles) == 0 {
		return nil, s.lost(ErrNotFound, "profiles of", sess.Account)
	}
	return b.prepare(), nil
}

// lost maps a record a live session points to but the store lacks to
// ErrBadSession, logging it; other errors pass.
func (s *Service) lost(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		s.d.Log.Warn("accounts: session of a missing record", "record", what, "id", id)
		return ErrBadSession
	}
	return err
}

// StartStream takes a stream lease for v on title: ErrLimit when the
// plan's MaxStreams are all live. A reuse id naming a live lease of the
// account moves that lease to title instead (a player switching titles,
// or asking again), costing no new screen; a lease already on title with
// more than a quarter of StreamTTL left is returned as it is, without a
// write. A reuse id that names no live lease (one that ran out)
// becomes the id of the new lease: ids are the account's own, so a
// player keeps its id across a lapse.
func (s *Service) StartStream(ctx context.Context, v *Viewer, title, reuse string) (Stream, error) {
	now := s.d.Now().UTC()
	st := Stream{ID: reuse, Account: v.Account.ID, Profile: v.Profile.ID, Title: title, Started: now, Renewed: now}
	if reuse == "" {
		st.ID = newID()
	} else if have, ok, err := s.lease(ctx, v.Account.ID, reuse, now); err != nil {
		return Stream{}, err
	} else if ok && have.Title == title && have.Profile == v.Profile.ID && fresh(have, now, s.cfg.StreamTTL) {
		return have, nil
	}
	if err := s.d.Store.AcquireStream(ctx, st, v.Plan.MaxStreams, s.cfg.StreamTTL); err != nil {
		if errors.Is(err, ErrLimit) {
			return Stream{}, fmt.Errorf("accounts: %s: %w", StreamLimit(v.Plan.MaxStreams), ErrLimit)
		}
		return Stream{}, err
	}
	s.leases.put(st, now.Add(s.cfg.CacheTTL))
	return st, nil
}

// lease returns the account's live lease of id: from the lease cache when
// this node saw it within CacheTTL, else from the store (and cached).
func (s *Service) lease(ctx context.Context, account, id string, now time.Time) (Stream, bool, error) {
	if st, ok := s.leases.get(account, id, now); ok && st.Live(now, s.cfg.StreamTTL) {
		return st, true, nil
	}
	live, err := s.d.Store.Streams(ctx, account, now, s.cfg.StreamTTL)
	if err != nil {
		return Stream{}, false, err
	}
	for _, st := range live {
		if st.ID == id {
			s.leases.put(st, now.Add(s.cfg.CacheTTL))
			return st, true, nil
		}
	}
	return Stream{}, false, nil
}

// StreamLimit is what a viewer is told when a plan's n screens are all
// playing.
func StreamLimit(n int) string {
	screens := "screens"
	if n == 1 {
		screens = "screen"
	}
	return fmt.Sprintf("stream limit reached: your plan allows %d %s at once", n, screens)
}

// KeepAlive renews a live stream lease of the account: ErrNotFound when
// the account holds no such lease, read before any write; nothing is
// written for a lease with more than a quarter of StreamTTL left.
func (s *Service) KeepAlive(ctx context.Context, account, id string) error {
	now := s.d.Now().UTC()
	st, ok, err := s.lease(ctx, account, id, now)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("accounts: stream %q: %w", id, ErrNotFound)
	case fresh(st, now, s.cfg.StreamTTL):
		return nil
	}
	if err := s.d.Store.RenewStream(ctx, account, id, now, s.cfg.StreamTTL); err != nil {
		s.leases.drop(account, id)
		return err
	}
	st.Renewed = now
	s.leases.put(st, now.Add(s.cfg.CacheTTL))
	return nil
}

// fresh reports whether a lease was renewed recently enough to need no
// renewal yet: within the first three quarters of its TTL, which leaves
// a player asking every 10 s a few chances before it lapses.
func fresh(st Stream, now time.Time, ttl time.Duration) bool {
	return now.Sub(st.Renewed) < ttl*3/4
}

// EndStream ends a stream lease of the account.
func (s *Service) EndStream(ctx context.Context, account, id string) error {
	err := s.d.Store.EndStream(ctx, account, id)
	s.leases.drop(account, id)
	return err
}

// Streams returns the account's live leases.
func (s *Service) Streams(ctx context.Context, account string) ([]Stream, error) {
	return s.d.Store.Streams(ctx, account, s.d.Now().UTC(), s.cfg.StreamTTL)
}

// viewerBase is a cached session lookup; immutable once cached.
type viewerBase struct {
	session  Session
	account  Account
	plan     Plan
	profiles []Profile
	views    []Viewer // per profile, then one without (prepare)
}

// sessionCache is the EVCache of the playback path: session tokens to
// what they opened, for a short while.
type sessionCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cacheEntry
	// tokens finds a session's entry: one token per session.
	tokens map[string]string
}

type cacheEntry struct {
	b     *viewerBase
	until time.Time
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, m: make(map[string]cacheEntry), tokens: make(map[string]string)}
}

func (c *sessionCache) get(token string, now time.Time) (*viewerBase, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.b, true
}

func (c *sessionCache) put(token string, b *viewerBase, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Full: drop an eighth, chosen by map order (random enough), so
		// the cache neither grows nor empties at once.
		n := max(c.max/8, 1)
		for k, e := range c.m {
			if n <= 0 {
				break
			}
			c.remove(k, e.b)
			n--
		}
	}
	c.m[token] = cacheEntry{b: b, until: until}
	c.tokens[b.session.ID] = token
}

func (c *sessionCache) remove(token string, b *viewerBase) {
	delete(c.m, token)
	delete(c.tokens, b.session.ID)
}

func (c *sessionCache) dropSession(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tokens[id]; ok {
		c.remove(t, c.m[t].b)
	}
}

// dropAccount removes every entry of an account: a walk of the cache, for
// the rare changes to an account's profiles and sessions.
func (c *sessionCache) dropAccount(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.b.account.ID == id {
			c.remove(k, e.b)
		}
	}
}
