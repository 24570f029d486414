// Package embedded is the accounts store that needs nothing beside the
// control plane: the records live in the control plane's replicated state
// machine, changed by typed commands through raft, so every node holds
// them, any node signs in an account created on another, and losing one
// node loses nothing.
//
// Typed commands rather than SQL statements replicated through raft (as
// rqlite does): the rest of the control plane's state is already a state
// machine of typed commands with JSON snapshots, the conditional writes
// (a unique email, at most N profiles or streams) are a few lines of Go
// checked in log order on every node, and it needs no cgo and no second
// storage engine to snapshot and restore.
package embedded

import (
	"fmt"
	"slices"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

// Command operations.
const (
	OpPutPlan        = "put_plan"
	OpCreateAccount  = "create_account"
	OpAddProfile     = "add_profile"
	OpDeleteProfile  = "delete_profile"
	OpCreateSession  = "create_session"
	OpTouchSession   = "touch_session"
	OpDeleteSession  = "delete_session"
	OpDeleteSessions = "delete_sessions"
	OpAcquireStream  = "acquire_stream"
	OpRenewStream    = "renew_stream"
	OpEndStream      = "end_stream"
)

// Command is one change to the accounts. Times, limits and ids are
// decided by the node that proposes it, so every node applies it alike.
type Command struct {
	Op      string            `json:"op"`
	Plan    *accounts.Plan    `json:"plan,omitempty"`
	Account *accounts.Account `json:"account,omitempty"`
	Profile *accounts.Profile `json:"profile,omitempty"`
	Session *accounts.Session `json:"session,omitempty"`
	Stream  *accounts.Stream  `json:"stream,omitempty"`
	// AccountID and ID name the records of deletions, touches and
	// renewals.
	AccountID string `json:"account_id,omitempty"`
	ID        string `json:"id,omitempty"`
	// At is the time of a touch or renewal; Expired the LastSeen before
	// which sessions have expired.
	At      time.Time     `json:"at,omitzero"`
	Expired time.Time     `json:"expired,omitzero"`
	Max     int           `json:"max,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"`
}

// State is the accounts' part of the replicated state. Records are
// immutable once stored: every change replaces a record, or a slice,
// whole, so a snapshot may share them.
type State struct {
	Plans    map[string]*accounts.Plan    `json:"plans"`
	Accounts map[string]*accounts.Account `json:"accounts"`
	// Profiles and Streams are per account, oldest first.
	Profiles map[string][]accounts.Profile `json:"profiles"`
	Sessions map[string]*accounts.Session  `json:"sessions"`
	Streams  map[string][]accounts.Stream  `json:"streams"`

	// Indexes, rebuilt from the records after a restore.
	emails          map[string]string   // email → account id
	accountSessions map[string][]string // account id → session ids
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		Plans: map[string]*accounts.Plan{}, Accounts: map[string]*accounts.Account{},
		Profiles: map[string][]accounts.Profile{}, Sessions: map[string]*accounts.Session{},
		Streams: map[string][]accounts.Stream{},
		emails:  map[string]string{}, accountSessions: map[string][]string{},
	}
}

// Rebuild recomputes the indexes after the records were decoded, and
// gives maps an older snapshot lacks their empty value.
func (s *State) Rebuild() {
	fresh := NewState()
	if s.Plans == nil {
		s.Plans = fresh.Plans
	}
	if s.Accounts == nil {
		s.Accounts = fresh.Accounts
	}
	if s.Profiles == nil {
		s.Profiles = fresh.Profiles
	}
	if s.Sessions == nil {
		s.Sessions = fresh.Sessions
	}
	if s.Streams == nil {
		s.Streams = fresh.Streams
	}
	s.emails = make(map[string]string, len(s.Accounts))
	for id, a := range s.Accounts {
		s.emails[a.Email] = id
	}
	s.accountSessions = make(map[string][]string)
	for id, ss := range s.Sessions {
		s.accountSessions[ss.Account] = append(s.accountSessions[ss.Account], id)
	}
}

// Clone returns a copy of the records, sharing them, for a snapshot to
// encode; it has no indexes.
func (s *State) Clone() *State {
	return &State{
		Plans: clone(s.Plans), Accounts: clone(s.Accounts), Profiles: clone(s.Profiles),
		Sessions: clone(s.Sessions), Streams: clone(s.Streams),
	}
}

func clone[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// EmailOwner returns the id of the account with email.
func (s *State) EmailOwner(email string) (string, bool) {
	id, ok := s.emails[email]
	return id, ok
}

func notFound(what, id string) error {
	return fmt.Errorf("accounts: %s %q: %w", what, id, accounts.ErrNotFound)
}

// Check reports whether c may apply to s: what the conditional writes
// need present or absent, and the limits. It changes nothing.
func (s *State) Check(c Command) error {
	switch c.Op {
	case OpCreateAccount:
		if _, taken := s.emails[c.Account.Email]; taken || s.Accounts[c.Account.ID] != nil {
			return fmt.Errorf("accounts: email %s: %w", c.Account.Email, accounts.ErrExists)
		}
		if s.Plans[c.Account.Plan] == nil {
			return notFound("plan", c.Account.Plan)
		}
	case OpAddProfile:
		if s.Accounts[c.Profile.Account] == nil {
			return notFound("account", c.Profile.Account)
		}
		if slices.ContainsFunc(s.Profiles[c.Profile.Account], func(p accounts.Profile) bool { return p.ID == c.Profile.ID }) {
			return fmt.Errorf("accounts: profile %s: %w", c.Profile.ID, accounts.ErrExists)
		}
		if len(s.Profiles[c.Profile.Account]) >= c.Max {
			return fmt.Errorf("accounts: at most %d profiles per account: %w", c.Max, accounts.ErrLimit)
		}
	case OpDeleteProfile:
		ps := s.Profiles[c.AccountID]
		i := slices.IndexFunc(ps, func(p accounts.Profile) bool { return p.ID == c.ID })
		if i < 0 {
			return notFound("profile", c.ID)
		}
		if i == 0 {
			return fmt.Errorf("accounts: the first profile of an account cannot be deleted: %w", accounts.ErrLimit)
		}
	case OpCreateSession:
		if s.Accounts[c.Session.Account] == nil {
			return notFound("account", c.Session.Account)
		}
		if s.Sessions[c.Session.ID] != nil {
			return fmt.Errorf("accounts: session %s: %w", c.Session.ID, accounts.ErrExists)
		}
	case OpTouchSession, OpDeleteSession:
		if s.Sessions[c.ID] == nil {
			return notFound("session", c.ID)
		}
	case OpAcquireStream:
		st := c.Stream
		if s.Accounts[st.Account] == nil {
			return notFound("account", st.Account)
		}
		live := 0
		for _, have := range s.Streams[st.Account] {
			if have.Live(st.Renewed, c.TTL) {
				if have.ID == st.ID {
					return nil // a renewal
				}
				live++
			}
		}
		if live >= c.Max {
			return fmt.Errorf("accounts: %d streams at once: %w", c.Max, accounts.ErrLimit)
		}
	case OpRenewStream, OpEndStream:
		i := slices.IndexFunc(s.Streams[c.AccountID], func(st accounts.Stream) bool { return st.ID == c.ID })
		if i < 0 || c.Op == OpRenewStream && !s.Streams[c.AccountID][i].Live(c.At, c.TTL) {
			return notFound("stream", c.ID)
		}
	}
	return nil
}

// Apply makes a change Check allowed.
func (s *State) Apply(c Command) {
	switch c.Op {
	case OpPutPlan:
		s.Plans[c.Plan.ID] = c.Plan
	case OpCreateAccount:
		s.Accounts[c.Account.ID] = c.Account
		s.emails[c.Account.Email] = c.Account.ID
		s.Profiles[c.Account.ID] = []accounts.Profile{*c.Profile}
	case OpAddProfile:
		s.Profiles[c.Profile.Account] = append(slices.Clip(s.Profiles[c.Profile.Account]), *c.Profile)
	case OpDeleteProfile:
		s.Profiles[c.AccountID] = slices.DeleteFunc(slices.Clone(s.Profiles[c.AccountID]), func(p accounts.Profile) bool { return p.ID == c.ID })
	case OpCreateSession:
		s.createSession(c)
	case OpTouchSession:
		if cur := s.Sessions[c.ID]; c.At.After(cur.LastSeen) {
			t := *cur
			t.LastSeen = c.At
			s.Sessions[c.ID] = &t
		}
	case OpDeleteSession:
		s.dropSession(c.ID)
	case OpDeleteSessions:
		for _, id := range slices.Clone(s.accountSessions[c.AccountID]) {
			s.dropSession(id)
		}
	case OpAcquireStream:
		st := *c.Stream
		kept := make([]accounts.Stream, 0, c.Max)
		for _, have := range s.Streams[st.Account] {
			switch {
			case have.ID == st.ID && have.Live(st.Renewed, c.TTL):
				st.Started = have.Started // a renewal keeps its start
			case have.Live(st.Renewed, c.TTL):
				kept = append(kept, have)
			}
		}
		s.Streams[st.Account] = append(kept, st)
	case OpRenewStream:
		ss := slices.Clone(s.Streams[c.AccountID])
		for i := range ss {
			if ss[i].ID == c.ID {
				ss[i].Renewed = c.At
			}
		}
		s.Streams[c.AccountID] = ss
	case OpEndStream:
		ss := slices.DeleteFunc(slices.Clone(s.Streams[c.AccountID]), func(st accounts.Stream) bool { return st.ID == c.ID })
		if len(ss) == 0 {
			delete(s.Streams, c.AccountID)
		} else {
			s.Streams[c.AccountID] = ss
		}
	}
}

// createSession adds a session and drops the account's expired ones and,
// beyond Max, its least recently seen.
func (s *State) createSession(c Command) {
	acct := c.Session.Account
	for _, id := range slices.Clone(s.accountSessions[acct]) {
		if s.Sessions[id].LastSeen.Before(c.Expired) {
			s.dropSession(id)
		}
	}
	for ids := s.accountSessions[acct]; len(ids) >= c.Max && len(ids) > 0; ids = s.accountSessions[acct] {
		// The least recently seen, the smaller id on a tie: every node
		// picks the same whatever the order of its index.
		oldest := ids[0]
		for _, id := range ids[1:] {
			a, b := s.Sessions[id].LastSeen, s.Sessions[oldest].LastSeen
			if a.Before(b) || a.Equal(b) && id < oldest {
				oldest = id
			}
		}
		s.dropSession(oldest)
	}
	s.Sessions[c.Session.ID] = c.Session
	s.accountSessions[acct] = append(s.accountSessions[acct], c.Session.ID)
}

func (s *State) dropSession(id string) {
	ss := s.Sessions[id]
	if ss == nil {
		return
	}
	delete(s.Sessions, id)
	ids := slices.DeleteFunc(slices.Clone(s.accountSessions[ss.Account]), func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(s.accountSessions, ss.Account)
	} else {
		s.accountSessions[ss.Account] = ids
	}
}
