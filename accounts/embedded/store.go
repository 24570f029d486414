package embedded

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
)

// ErrInvalid wraps a command that fails validation.
var ErrInvalid = accounts.ErrInvalid

func invalid(format string, args ...any) error {
	return fmt.Errorf("accounts: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks a command before it is proposed and again when it is
// applied, since a log entry may come from an older or buggy node.
func (c Command) Validate() error {
	id := func(what, v string) error {
		if fillcast.ValidateTitleID(v) != nil {
			return invalid("%s id %q", what, v)
		}
		return nil
	}
	switch c.Op {
	case OpPutPlan:
		if c.Plan == nil {
			return invalid("put_plan without a plan")
		}
		if err := accounts.ValidatePlan(*c.Plan); err != nil {
			return invalid("%v", err)
		}
	case OpCreateAccount:
		a, p := c.Account, c.Profile
		if a == nil || p == nil || p.Account != a.ID {
			return invalid("create_account needs an account and its first profile")
		}
		if e, err := accounts.NormalizeEmail(a.Email); err != nil || e != a.Email {
			return invalid("email %q", a.Email)
		}
		if !strings.HasPrefix(a.PasswordHash, "$argon2id$") {
			return invalid("password hash: want argon2id")
		}
		return firstErr(id("account", a.ID), id("plan", a.Plan), validProfile(p))
	case OpAddProfile:
		if c.Profile == nil || c.Max < 1 {
			return invalid("add_profile needs a profile and a limit")
		}
		return validProfile(c.Profile)
	case OpCreateSession:
		s := c.Session
		if s == nil || c.Max < 1 || len(s.Hash) != 64 {
			return invalid("create_session needs a session with a hash, and a limit")
		}
		return firstErr(id("session", s.ID), id("account", s.Account))
	case OpAcquireStream:
		s := c.Stream
		if s == nil || c.Max < 1 || c.TTL <= 0 || s.Renewed.IsZero() {
			return invalid("acquire_stream needs a stream, a limit and a ttl")
		}
		return firstErr(id("stream", s.ID), id("account", s.Account), id("profile", s.Profile), id("title", s.Title))
	case OpTouchSession, OpDeleteSession:
		return id("session", c.ID)
	case OpDeleteSessions:
		return id("account", c.AccountID)
	case OpDeleteProfile, OpEndStream, OpRenewStream:
		if c.Op == OpRenewStream && (c.TTL <= 0 || c.At.IsZero()) {
			return invalid("renew_stream needs a time and a ttl")
		}
		return firstErr(id("account", c.AccountID), id("record", c.ID))
	default:
		return invalid("unknown op %q", c.Op)
	}
	return nil
}

func validProfile(p *accounts.Profile) error {
	if fillcast.ValidateTitleID(p.ID) != nil || fillcast.ValidateTitleID(p.Account) != nil {
		return invalid("profile id %q of account %q", p.ID, p.Account)
	}
	if err := accounts.ValidateName(p.Name); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Store is accounts.Store over the replicated state: writes go through
// apply (raft, forwarded to the leader), reads come from this node's
// copy through read.
type Store struct {
	apply   func(ctx context.Context, c Command) error
	read    func(fn func(s *State))
	catchUp func(ctx context.Context) error
}

var _ accounts.Store = (*Store)(nil)

// NewStore returns a Store. apply replicates a command and returns its
// error; read calls fn with the state under the state machine's lock;
// catchUp, if not nil, waits until this copy of the state has every write
// applied elsewhere so far. Lookups of a session, an account or an email
// that miss call it and look again, so that a viewer who signed up or in
// through one node is known at once on the others.
func NewStore(apply func(ctx context.Context, c Command) error, read func(fn func(s *State)), catchUp func(ctx context.Context) error) *Store {
	return &Store{apply: apply, read: read, catchUp: catchUp}
}

// lookup reads with find, and after catching up once more if find found
// nothing.
func lookup[T any](ctx context.Context, st *Store, find func(s *State) *T) (*T, error) {
	var v *T
	st.read(func(s *State) { v = find(s) })
	if v != nil || st.catchUp == nil {
		return v, nil
	}
	if err := st.catchUp(ctx); err != nil {
		return nil, fmt.Errorf("accounts: catching up with the leader: %w", err)
	}
	st.read(func(s *State) { v = find(s) })
	return v, nil
}

func (st *Store) do(ctx context.Context, c Command) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return st.apply(ctx, c)
}

// PutPlan implements accounts.Store.
func (st *Store) PutPlan(ctx context.Context, p accounts.Plan) error {
	return st.do(ctx, Command{Op: OpPutPlan, Plan: &p})
}

// Plans implements accounts.Store.
func (st *Store) Plans(ctx context.Context) ([]accounts.Plan, error) {
	var out []accounts.Plan
	st.read(func(s *State) {
		out = make([]accounts.Plan, 0, len(s.Plans))
		for _, p := range s.Plans {
			out = append(out, *p)
		}
	})
	slices.SortFunc(out, func(a, b accounts.Plan) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateAccount implements accounts.Store.
func (st *Store) CreateAccount(ctx context.Context, a accounts.Account, first accounts.Profile) error {
	return st.do(ctx, Command{Op: OpCreateAccount, Account: &a, Profile: &first})
}

// Account implements accounts.Store.
func (st *Store) Account(ctx context.Context, id string) (accounts.Account, error) {
	a, err := lookup(ctx, st, func(s *State) *accounts.Account { return s.Accounts.At(id) })
	if err != nil {
		return accounts.Account{}, err
	}
	if a == nil {
		return accounts.Account{}, notFound("account", id)
	}
	return *a, nil
}

// AccountByEmail implements accounts.Store.
func (st *Store) AccountByEmail(ctx context.Context, email string) (accounts.Account, error) {
	a, err := lookup(ctx, st, func(s *State) *accounts.Account {
		id, _ := s.EmailOwner(email)
		return s.Accounts.At(id)
	})
	if err != nil {
		return accounts.Account{}, err
	}
	if a == nil {
		return accounts.Account{}, notFound("account with email", email)
	}
	return *a, nil
}

// Profiles implements accounts.Store.
func (st *Store) Profiles(ctx context.Context, account string) ([]accounts.Profile, error) {
	var out []accounts.Profile
	st.read(func(s *State) { out = slices.Clone(s.Profiles.At(account)) })
	return out, nil
}

// AddProfile implements accounts.Store.
func (st *Store) AddProfile(ctx context.Context, p accounts.Profile, max int) error {
	return st.do(ctx, Command{Op: OpAddProfile, Profile: &p, Max: max})
}

// DeleteProfile implements accounts.Store.
func (st *Store) DeleteProfile(ctx context.Context, account, id string) error {
	return st.do(ctx, Command{Op: OpDeleteProfile, AccountID: account, ID: id})
}

// CreateSession implements accounts.Store.
func (st *Store) CreateSession(ctx context.Context, s accounts.Session, max int, expired time.Time) error {
	return st.do(ctx, Command{Op: OpCreateSession, Session: &s, Max: max, Expired: expired})
}

// Session implements accounts.Store.
func (st *Store) Session(ctx context.Context, id string) (accounts.Session, error) {
	ss, err := lookup(ctx, st, func(s *State) *accounts.Session { return s.Sessions.At(id) })
	if err != nil {
		return accounts.Session{}, err
	}
	if ss == nil {
		return accounts.Session{}, notFound("session", id)
	}
	return *ss, nil
}

// TouchSession implements accounts.Store.
func (st *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	return st.do(ctx, Command{Op: OpTouchSession, ID: id, At: at})
}

// DeleteSession implements accounts.Store.
func (st *Store) DeleteSession(ctx context.Context, id string) error {
	return st.do(ctx, Command{Op: OpDeleteSession, ID: id})
}

// DeleteSessions implements accounts.Store.
func (st *Store) DeleteSessions(ctx context.Context, account string) error {
	return st.do(ctx, Command{Op: OpDeleteSessions, AccountID: account})
}

// AcquireStream implements accounts.Store.
func (st *Store) AcquireStream(ctx context.Context, s accounts.Stream, max int, ttl time.Duration) error {
	return st.do(ctx, Command{Op: OpAcquireStream, Stream: &s, Max: max, TTL: ttl})
}

// RenewStream implements accounts.Store.
func (st *Store) RenewStream(ctx context.Context, account, id string, at time.Time, ttl time.Duration) error {
	return st.do(ctx, Command{Op: OpRenewStream, AccountID: account, ID: id, At: at, TTL: ttl})
}

// EndStream implements accounts.Store.
func (st *Store) EndStream(ctx context.Context, account, id string) error {
	return st.do(ctx, Command{Op: OpEndStream, AccountID: account, ID: id})
}

// Streams implements accounts.Store.
func (st *Store) Streams(ctx context.Context, account string, now time.Time, ttl time.Duration) ([]accounts.Stream, error) {
	var out []accounts.Stream
	st.read(func(s *State) {
		for _, x := range s.Streams.At(account) {
			if x.Live(now, ttl) {
				out = append(out, x)
			}
		}
	})
	slices.SortFunc(out, func(a, b accounts.Stream) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}
