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
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
// whole, so a snapshot may share them; the tables copy on write after a
// snapshot's Clone.
type State struct {
	Plans    map[string]*accounts.Plan `json:"plans"`
	Accounts *Table[*accounts.Account] `json:"accounts"`
	// Profiles and Streams are per account, oldest first.
	Profiles *Table[[]accounts.Profile] `json:"profiles"`
	Sessions *Table[*accounts.Session]  `json:"sessions"`
	Streams  *Table[[]accounts.Stream]  `json:"streams"`

	// Indexes, rebuilt from the records after a restore.
	emails          map[string]string   // email → account id
	accountSessions map[string][]string // account id → session ids
}

// NewState returns an empty State.
func NewState() *State {
	return &State{
		Plans: map[string]*accounts.Plan{}, Accounts: NewTable[*accounts.Account](),
		Profiles: NewTable[[]accounts.Profile](), Sessions: NewTable[*accounts.Session](),
		Streams: NewTable[[]accounts.Stream](),
		emails:  map[string]string{}, accountSessions: map[string][]string{},
	}
}

// Rebuild recomputes the indexes after the records were decoded, and
// gives tables an older snapshot lacks their empty value.
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
	s.emails = make(map[string]string, s.Accounts.Len())
	for id, a := range s.Accounts.All {
		s.emails[a.Email] = id
	}
	s.accountSessions = make(map[string][]string)
	for id, ss := range s.Sessions.All {
		s.accountSessions[ss.Account] = append(s.accountSessions[ss.Account], id)
	}
}

// Clone returns a copy of the records for a snapshot to encode, sharing
// them (the tables copy on write from now on); it has no indexes. Its
// cost does not grow with the number of accounts.
func (s *State) Clone() *State {
	return &State{
		Plans: maps.Clone(s.Plans), Accounts: s.Accounts.Clone(), Profiles: s.Profiles.Clone(),
		Sessions: s.Sessions.Clone(), Streams: s.Streams.Clone(),
	}
}

// WriteJSON writes s to w as the JSON object it decodes from, a record at
// a time, so that a snapshot of a million accounts needs no buffer of its
// size (encoding/json would build the whole object, then check it).
func (s *State) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	plans, err := json.Marshal(s.Plans)
	if err != nil {
		return fmt.Errorf("accounts: encode plans: %w", err)
	}
	bw.WriteString(`{"plans":`)
	bw.Write(plans)
	for _, f := range []struct {
		name  string
		write func(*bufio.Writer) error
	}{{"accounts", s.Accounts.writeJSON}, {"profiles", s.Profiles.writeJSON}, {"sessions", s.Sessions.writeJSON}, {"streams", s.Streams.writeJSON}} {
		bw.WriteString(`,"` + f.name + `":`)
		if err := f.write(bw); err != nil {
			return err
		}
	}
	bw.WriteString("}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("accounts: write state: %w", err)
	}
	return nil
}

// ReadJSON decodes from dec what WriteJSON wrote, a record at a time,
// into s (a NewState); Rebuild then makes the indexes. Unknown fields are
// skipped; missing ones stay empty.
func (s *State) ReadJSON(dec *json.Decoder) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	tables := map[string]func(*json.Decoder) error{
		"accounts": s.Accounts.readJSON, "profiles": s.Profiles.readJSON,
		"sessions": s.Sessions.readJSON, "streams": s.Streams.readJSON,
		"plans": func(dec *json.Decoder) error { return dec.Decode(&s.Plans) },
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("accounts: decode state: %w", err)
		}
		name, _ := tok.(string)
		read, ok := tables[name]
		if !ok {
			var skip json.RawMessage
			read = func(dec *json.Decoder) error { return dec.Decode(&skip) }
		}
		if err := read(dec); err != nil {
			return fmt.Errorf("accounts: decode state: %s: %w", name, err)
		}
	}
	return expectDelim(dec, '}')
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
		if _, taken := s.emails[c.Account.Email]; taken || s.Accounts.At(c.Account.ID) != nil {
			return fmt.Errorf("accounts: email %s: %w", c.Account.Email, accounts.ErrExists)
		}
		if s.Plans[c.Account.Plan] == nil {
			return notFound("plan", c.Account.Plan)
		}
	case OpAddProfile:
		if s.Accounts.At(c.Profile.Account) == nil {
			return notFound("account", c.Profile.Account)
		}
		if slices.ContainsFunc(s.Profiles.At(c.Profile.Account), func(p accounts.Profile) bool { return p.ID == c.Profile.ID }) {
			return fmt.Errorf("accounts: profile %s: %w", c.Profile.ID, accounts.ErrExists)
		}
		if len(s.Profiles.At(c.Profile.Account)) >= c.Max {
			return fmt.Errorf("accounts: at most %d profiles per account: %w", c.Max, accounts.ErrLimit)
		}
	case OpDeleteProfile:
		ps := s.Profiles.At(c.AccountID)
		i := slices.IndexFunc(ps, func(p accounts.Profile) bool { return p.ID == c.ID })
		if i < 0 {
			return notFound("profile", c.ID)
		}
		if i == 0 {
			return fmt.Errorf("accounts: the first profile of an account cannot be deleted: %w", accounts.ErrLimit)
		}
	case OpCreateSession:
		if s.Accounts.At(c.Session.Account) == nil {
			return notFound("account", c.Session.Account)
		}
		if s.Sessions.At(c.Session.ID) != nil {
			return fmt.Errorf("accounts: session %s: %w", c.Session.ID, accounts.ErrExists)
		}
	case OpTouchSession, OpDeleteSession:
		if s.Sessions.At(c.ID) == nil {
			return notFound("session", c.ID)
		}
	case OpAcquireStream:
		st := c.Stream
		if s.Accounts.At(st.Account) == nil {
			return notFound("account", st.Account)
		}
		live := 0
		for _, have := range s.Streams.At(st.Account) {
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
		i := slices.IndexFunc(s.Streams.At(c.AccountID), func(st accounts.Stream) bool { return st.ID == c.ID })
		if i < 0 || c.Op == OpRenewStream && !s.Streams.At(c.AccountID)[i].Live(c.At, c.TTL) {
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
		s.Accounts.Set(c.Account.ID, c.Account)
		s.emails[c.Account.Email] = c.Account.ID
		s.Profiles.Set(c.Account.ID, []accounts.Profile{*c.Profile})
	case OpAddProfile:
		s.Profiles.Set(c.Profile.Account, append(slices.Clip(s.Profiles.At(c.Profile.Account)), *c.Profile))
	case OpDeleteProfile:
		s.Profiles.Set(c.AccountID, slices.DeleteFunc(slices.Clone(s.Profiles.At(c.AccountID)), func(p accounts.Profile) bool { return p.ID == c.ID }))
	case OpCreateSession:
		s.createSession(c)
	case OpTouchSession:
		if cur := s.Sessions.At(c.ID); c.At.After(cur.LastSeen) {
			t := *cur
			t.LastSeen = c.At
			s.Sessions.Set(c.ID, &t)
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
		for _, have := range s.Streams.At(st.Account) {
			switch {
			case have.ID == st.ID && have.Live(st.Renewed, c.TTL):
				st.Started = have.Started // a renewal keeps its start
			case have.Live(st.Renewed, c.TTL):
				kept = append(kept, have)
			}
		}
		s.Streams.Set(st.Account, append(kept, st))
	case OpRenewStream:
		ss := slices.Clone(s.Streams.At(c.AccountID))
		for i := range ss {
			if ss[i].ID == c.ID {
				ss[i].Renewed = c.At
			}
		}
		s.Streams.Set(c.AccountID, ss)
	case OpEndStream:
		ss := slices.DeleteFunc(slices.Clone(s.Streams.At(c.AccountID)), func(st accounts.Stream) bool { return st.ID == c.ID })
		if len(ss) == 0 {
			s.Streams.Delete(c.AccountID)
		} else {
			s.Streams.Set(c.AccountID, ss)
		}
	}
}

// createSession adds a session and drops the account's expired ones and,
// beyond Max, its least recently seen.
func (s *State) createSession(c Command) {
	acct := c.Session.Account
	for _, id := range slices.Clone(s.accountSessions[acct]) {
		if s.Sessions.At(id).LastSeen.Before(c.Expired) {
			s.dropSession(id)
		}
	}
	for ids := s.accountSessions[acct]; len(ids) >= c.Max && len(ids) > 0; ids = s.accountSessions[acct] {
		// The least recently seen, the smaller id on a tie: every node
		// picks the same whatever the order of its index.
		oldest := ids[0]
		for _, id := range ids[1:] {
			a, b := s.Sessions.At(id).LastSeen, s.Sessions.At(oldest).LastSeen
			if a.Before(b) || a.Equal(b) && id < oldest {
				oldest = id
			}
		}
		s.dropSession(oldest)
	}
	s.Sessions.Set(c.Session.ID, c.Session)
	s.accountSessions[acct] = append(s.accountSessions[acct], c.Session.ID)
}

func (s *State) dropSession(id string) {
	ss := s.Sessions.At(id)
	if ss == nil {
		return
	}
	s.Sessions.Delete(id)
	ids := slices.DeleteFunc(slices.Clone(s.accountSessions[ss.Account]), func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(s.accountSessions, ss.Account)
	} else {
		s.accountSessions[ss.Account] = ids
	}
}
