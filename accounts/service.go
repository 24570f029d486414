package accounts

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/auth"
)

// Config configures a Service. Zero values mean the defaults named.
type Config struct {
	// SessionIdle is how long a session lives without use. Zero means 30
	// days.
	SessionIdle time.Duration
	// TouchEvery is how stale a session's LastSeen may get before a use
	// writes it again. Zero means 1 h.
	TouchEvery time.Duration
	// MaxSessions bounds an account's sessions; signing in beyond it
	// drops the least recently used. Zero means 50.
	MaxSessions int
	// MaxProfiles bounds an account's profiles. Zero means 5.
	MaxProfiles int
	// StreamTTL is how long a stream lease lasts without a sign of life.
	// Zero means 60 s.
	StreamTTL time.Duration
	// CacheTTL is how long a looked-up session, or a stream lease, is
	// trusted without asking the store again: how long a revoked session
	// may still play, or an ended lease still count as live, on a node
	// other than the one that revoked or ended it. Zero means 5 s.
	CacheTTL time.Duration
	// CacheSize bounds the session cache. Zero means 100,000 entries.
	CacheSize int
	// Argon2 are the password hash's parameters.
	Argon2 Argon2
	// MaxHashing bounds the argon2id computations running at once (each
	// takes Argon2.MemoryKiB). Zero means twice GOMAXPROCS.
	MaxHashing int
	// SignInFailures is how many failed sign-ins an email or a client
	// address may have within FailureWindow before further attempts are
	// refused until the window ends. Zero means 5.
	SignInFailures int
	// FailureWindow is the window of SignInFailures. Zero means 1 minute.
	FailureWindow time.Duration
	// SignUpsPerHour is how many accounts one client address (its /64
	// for IPv6) may create an hour. Zero means 30; negative, no limit.
	SignUpsPerHour int
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SessionIdle", c.SessionIdle}, {"TouchEvery", c.TouchEvery}, {"StreamTTL", c.StreamTTL}, {"CacheTTL", c.CacheTTL}, {"FailureWindow", c.FailureWindow}} {
		if d.v < 0 {
			return fillcast.ConfigErrorf("accounts", d.name, "%v is negative", d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"MaxSessions", c.MaxSessions}, {"MaxProfiles", c.MaxProfiles}, {"CacheSize", c.CacheSize}, {"MaxHashing", c.MaxHashing}, {"SignInFailures", c.SignInFailures}} {
		if n.v < 0 {
			return fillcast.ConfigErrorf("accounts", n.name, "%d is negative", n.v)
		}
	}
	if c.Argon2.MemoryKiB > maxHashMemoryKiB {
		return fillcast.ConfigErrorf("accounts", "Argon2.MemoryKiB", "%d: at most %d", c.Argon2.MemoryKiB, maxHashMemoryKiB)
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SessionIdle, 30*24*time.Hour)
	def(&c.TouchEvery, time.Hour)
	def(&c.StreamTTL, time.Minute)
	def(&c.CacheTTL, 5*time.Second)
	def(&c.FailureWindow, time.Minute)
	defInt(&c.MaxSessions, 50)
	defInt(&c.MaxProfiles, 5)
	defInt(&c.CacheSize, 100_000)
	defInt(&c.MaxHashing, 2*runtime.GOMAXPROCS(0))
	defInt(&c.SignInFailures, 5)
	defInt(&c.SignUpsPerHour, 30)
	c.Argon2 = c.Argon2.withDefaults()
	return c
}

// Errors of the Service, beyond the Store's.
var (
	// ErrBadCredentials is a sign-in with a wrong password or an unknown
	// email: the same error for both.
	ErrBadCredentials = errors.New("accounts: wrong email or password")
	// ErrBadSession is an unknown, expired or revoked session token.
	ErrBadSession = errors.New("accounts: unknown, expired or revoked session")
	// ErrInvalid wraps every refusal of malformed input.
	ErrInvalid = errors.New("invalid")
)

// ThrottledError refuses a sign-in after too many failures, or a
// sign-up past SignUpsPerHour.
type ThrottledError struct {
	RetryAfter time.Duration
	// What was too many; empty means failed sign-ins.
	What string
}

// Error says what was too many and when to try again.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("accounts: too many %s: try again in %v", cmp.Or(e.What, "failed sign-ins"), e.RetryAfter.Round(time.Second))
}

// Deps are what a Service works with.
type Deps struct {
	// Store keeps the records. Required.
	Store Store
	// Log receives errors that do not fail a request. Required.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts sign-ups and sign-ins; nil counts nothing.
	Metrics *Metrics
}

// Service is the accounts' rules over a Store. It is safe for concurrent
// use.
type Service struct {
	cfg      Config
	d        Deps
	hashing  chan struct{}
	cache    *sessionCache
	leases   *leaseCache
	failures *throttle
	signUps  *throttle // nil: no limit
	// dummy is a hash compared against for unknown emails, so that a
	// sign-in takes as long whether or not the email exists.
	dummyOnce sync.Once
	dummy     string
}

// NewService returns a Service; it does no I/O.
func NewService(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Log == nil {
		return nil, errors.New("accounts: store and logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg = cfg.withDefaults()
	return &Service{
		cfg:      cfg,
		d:        d,
		hashing:  make(chan struct{}, cfg.MaxHashing),
		cache:    newSessionCache(cfg.CacheSize),
		leases:   newLeaseCache(cfg.CacheSize),
		failures: newThrottle(cfg.SignInFailures, cfg.FailureWindow),
		signUps:  newThrottle(cfg.SignUpsPerHour, time.Hour),
	}, nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Store returns the store the service works on.
func (s *Service) Store() Store { return s.d.Store }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// newID returns a random record id: 26 characters of base32.
func newID() string { return rand.Text() }

// hash runs f with one of the MaxHashing slots, or fails when ctx ends
// first.
func (s *Service) hash(ctx context.Context, f func()) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("accounts: waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-s.hashing }()
	f()
	return nil
}

// signUp is SignUp, uncounted.
func (s *Service) signUp(ctx context.Context, email, password, plan string, client netip.Addr) (Account, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return Account{}, invalidf("%v", err)
	}
	if err := ValidatePassword(password); err != nil {
		return Account{}, invalidf("%v", err)
	}
	if fillcast.ValidateTitleID(plan) != nil {
		return Account{}, invalidf("plan %q: unknown", plan)
	}
	if client.IsValid() && s.cfg.SignUpsPerHour > 0 {
		// Every sign-up counts against the address's allowance, those
		// under way too (a strict key).
		now, key := s.d.Now(), []string{clientKey(client)}
		if wait, blocked := s.signUps.attempt(key, nil, now); blocked {
			return Account{}, &ThrottledError{RetryAfter: wait, What: "sign-ups from this address"}
		}
		defer s.signUps.done(key, nil, now, true)
	}
	now := s.d.Now().UTC()
	a := Account{ID: newID(), Email: email, Plan: plan, Created: now}
	if err := s.hash(ctx, func() { a.PasswordHash = s.cfg.Argon2.HashPassword(password) }); err != nil {
		return Account{}, err
	}
	name, _, _ := strings.Cut(email, "@")
	if len(name) > MaxNameLen {
		name = name[:MaxNameLen]
	}
	first := Profile{ID: newID(), Account: a.ID, Name: name, Created: now}
	if err := s.d.Store.CreateAccount(ctx, a, first); err != nil {
		return Account{}, err
	}
	return a, nil
}

// signIn is SignIn, uncounted.
func (s *Service) signIn(ctx context.Context, email, password string, client netip.Addr) (string, Session, error) {
	now := s.d.Now()
	loose := []string{"client:" + clientKey(client)}
	// A malformed email is never looked up, nor counted by itself: the
	// throttle's table holds addresses, not whatever a client sends.
	var strict []string
	email, malformed := NormalizeEmail(email)
	if malformed == nil {
		strict = []string{"email:" + email}
	}
	if wait, blocked := s.failures.attempt(strict, loose, now); blocked {
		return "", Session{}, &ThrottledError{RetryAfter: wait}
	}
	failed := false // a wrong password or an unknown email; not a store's trouble
	defer func() { s.failures.done(strict, loose, now, failed) }()
	var a Account
	err := ErrNotFound
	if malformed == nil {
		a, err = s.d.Store.AccountByEmail(ctx, email)
	}
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return "", Session{}, err
	}
	hash := a.PasswordHash
	if !found {
		s.dummyOnce.Do(func() { s.dummy = s.cfg.Argon2.HashPassword(rand.Text()) })
		hash = s.dummy
	}
	var ok bool
	if err := s.hash(ctx, func() { ok, err = PasswordMatches(hash, password) }); err != nil {
		return "", Session{}, err
	}
	if err != nil {
		s.d.Log.Error("accounts: stored password hash", "account", a.ID, "err", err)
	}
	if !found || !ok {
		failed = true
		return "", Session{}, ErrBadCredentials
	}
	id := newID()
	token, tokenHash, err := auth.NewSession(id)
	if err != nil {
		return "", Session{}, err
	}
	now = now.UTC()
	sess := Session{ID: id, Account: a.ID, Hash: tokenHash, Created: now, LastSeen: now}
	if err := s.d.Store.CreateSession(ctx, sess, s.cfg.MaxSessions, now.Add(-s.cfg.SessionIdle)); err != nil {
		return "", Session{}, err
	}
	return token, sess, nil
}

// clientKey is the throttling key of a client: its address, or its /64
// for IPv6, where one host holds a whole /64.
func clientKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// ExpiresAt is when a session expires unless used again.
func (s *Service) ExpiresAt(sess Session) time.Time { return sess.LastSeen.Add(s.cfg.SessionIdle) }

// SignOut ends one session.
func (s *Service) SignOut(ctx context.Context, sessionID string) error {
	err := s.d.Store.DeleteSession(ctx, sessionID)
	s.cache.dropSession(sessionID) // after: a lookup meanwhile may have cached it
	return err
}

// SignOutEverywhere ends every session of an account. Other nodes stop
// honouring them within CacheTTL.
func (s *Service) SignOutEverywhere(ctx context.Context, account string) error {
	err := s.d.Store.DeleteSessions(ctx, account)
	s.cache.dropAccount(account)
	return err
}

// Plans returns every plan, ordered by id.
func (s *Service) Plans(ctx context.Context) ([]Plan, error) { return s.d.Store.Plans(ctx) }

// PutPlan creates or replaces a plan.
func (s *Service) PutPlan(ctx context.Context, p Plan) error {
	if err := ValidatePlan(p); err != nil {
		return invalidf("%v", err)
	}
	return s.d.Store.PutPlan(ctx, p)
}

// Plan returns one plan.
func (s *Service) Plan(ctx context.Context, id string) (Plan, error) {
	plans, err := s.d.Store.Plans(ctx)
	if err != nil {
		return Plan{}, err
	}
	for _, p := range plans {
		if p.ID == id {
			return p, nil
		}
	}
	return Plan{}, fmt.Errorf("accounts: plan %q: %w", id, ErrNotFound)
}

// AddProfile adds a profile to an account, at most MaxProfiles.
func (s *Service) AddProfile(ctx context.Context, account, name string, kids bool) (Profile, error) {
	if err := ValidateName(name); err != nil {
		return Profile{}, invalidf("%v", err)
	}
	p := Profile{ID: newID(), Account: account, Name: strings.TrimSpace(name), Kids: kids, Created: s.d.Now().UTC()}
	if err := s.d.Store.AddProfile(ctx, p, s.cfg.MaxProfiles); err != nil {
		return Profile{}, err
	}
	s.cache.dropAccount(account)
	return p, nil
}

// DeleteProfile deletes a profile other than the account's first.
func (s *Service) DeleteProfile(ctx context.Context, account, id string) error {
	if err := s.d.Store.DeleteProfile(ctx, account, id); err != nil {
		return err
	}
	s.cache.dropAccount(account)
	return nil
}
