// Package accounts is Fillcast's viewers: accounts with their plans,
// profiles and sign-in sessions, and the stream leases that count how
// many screens an account is watching on. The records live in a Store:
// the control plane's replicated state by default (package
// accounts/embedded), PostgreSQL at scale (accounts/pgstore); one contract
// suite (accounts/storetest) runs against both. Service puts the rules on
// top of a Store: argon2id passwords, session tokens, sign-in throttling,
// a short cache of the sessions the playback path looks up, profile and
// stream limits.
package accounts

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fillcast/fillcast"
)

// Errors of the stores: the shared conditional-write errors, so that the
// replicated store's errors survive a forward to the leader.
var (
	ErrExists   = fillcast.ErrExists
	ErrNotFound = fillcast.ErrNotFound
	ErrLimit    = fillcast.ErrLimit
)

// Money is an amount in the currency's minor units (cents), never a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Plan is what an account pays for and what it entitles to.
type Plan struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// MaxHeight is the tallest video rendition the plan plays (480, 1080,
	// 2160).
	MaxHeight int `json:"max_height"`
	// MaxStreams is how many streams may play at once.
	MaxStreams int `json:"max_streams"`
	// Downloads allows the MP4 downloads.
	Downloads bool   `json:"downloads"`
	Price     Money  `json:"price"`
	Period    string `json:"period"` // "month" or "year"
	// TrialDays is the free trial an account created on the plan
	// starts with; nil means the billing service's default (7 days), 0
	// none.
	TrialDays *int `json:"trial_days,omitempty"`
}

// Account is a viewer's account as stored.
type Account struct {
	ID string `json:"id"`
	// Email is lower case; it is unique.
	Email string `json:"email"`
	// PasswordHash is the argon2id hash in PHC form, never the password.
	PasswordHash string    `json:"password_hash"`
	Plan         string    `json:"plan"`
	Created      time.Time `json:"created"`
}

// Profile is one viewer of an account. The first profile of an account
// (the oldest) is its default and cannot be deleted.
type Profile struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Name    string    `json:"name"`
	Kids    bool      `json:"kids"`
	Created time.Time `json:"created"`
}

// Session is a signed-in browser or device: the hash of its token's
// secret, never the token.
type Session struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	// Hash is auth.HashSecret of the whole token.
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
	// LastSeen moves forward at most once per Config.TouchEvery; a session
	// idle for Config.SessionIdle has expired.
	LastSeen time.Time `json:"last_seen"`
}

// Stream is a lease on one of an account's screens: it ends when deleted
// or when not renewed for its TTL.
type Stream struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Profile string    `json:"profile"`
	Title   string    `json:"title"`
	Started time.Time `json:"started"`
	Renewed time.Time `json:"renewed"`
}

// Live reports whether the lease is still held at now, given its TTL.
func (s Stream) Live(now time.Time, ttl time.Duration) bool {
	return now.Before(s.Renewed.Add(ttl))
}

// Store keeps the records. Times come from the caller, so a replicated
// store applies the same commands to the same result on every node.
// Records are returned by value; lists are ordered as documented.
//
// Conditional writes return ErrExists, ErrNotFound or ErrLimit (wrapped).
type Store interface {
	// PutPlan creates or replaces a plan.
	PutPlan(ctx context.Context, p Plan) error
	// Plans returns every plan, ordered by id.
	Plans(ctx context.Context) ([]Plan, error)
	// CreateAccount adds an account with its first profile: ErrExists if
	// the email (or the id) is taken, ErrNotFound if the plan is unknown.
	CreateAccount(ctx context.Context, a Account, first Profile) error
	// Account returns an account by id.
	Account(ctx context.Context, id string) (Account, error)
	// AccountByEmail returns an account by its (lower-case) email.
	AccountByEmail(ctx context.Context, email string) (Account, error)
	// Profiles returns an account's profiles, oldest first.
	Profiles(ctx context.Context, account string) ([]Profile, error)
	// AddProfile adds a profile unless the account has max already
	// (ErrLimit) or a profile of that id (ErrExists); ErrNotFound for an
	// unknown account.
	AddProfile(ctx context.Context, p Profile, max int) error
	// DeleteProfile deletes a profile of an account other than its
	// first: ErrNotFound if there is no such profile, ErrLimit if it is
	// the first.
	DeleteProfile(ctx context.Context, account, id string) error
	// CreateSession adds a session; when the account holds max sessions
	// already, its least recently seen ones are dropped. Sessions idle
	// since before expired are dropped too.
	CreateSession(ctx context.Context, s Session, max int, expired time.Time) error
	// Session returns a session by id.
	Session(ctx context.Context, id string) (Session, error)
	// TouchSession sets a session's LastSeen to at if later.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// DeleteSession deletes one session (ErrNotFound if absent).
	DeleteSession(ctx context.Context, id string) error
	// DeleteSessions deletes every session of an account.
	DeleteSessions(ctx context.Context, account string) error
	// AcquireStream takes a lease for s.Account at s.Renewed. If the
	// account holds a live lease of id s.ID, it is renewed and moved to
	// s.Title and s.Profile; otherwise a new lease is taken unless the
	// account holds max live leases (ErrLimit). Leases not renewed within
	// ttl no longer count and are dropped.
	AcquireStream(ctx context.Context, s Stream, max int, ttl time.Duration) error
	// RenewStream renews a live lease of the account at at: ErrNotFound
	// when there is none (ended, expired or another account's).
	RenewStream(ctx context.Context, account, id string, at time.Time, ttl time.Duration) error
	// EndStream ends a lease of the account (ErrNotFound if absent).
	EndStream(ctx context.Context, account, id string) error
	// Streams returns the account's leases live at now, ordered by
	// Started, then id.
	Streams(ctx context.Context, account string, now time.Time, ttl time.Duration) ([]Stream, error)
}

// Limits on records.
const (
	MaxEmailLen    = 254
	MinPasswordLen = 10
	MaxPasswordLen = 256
	MaxNameLen     = 64
	MaxTrialDays   = 365
)

// NormalizeEmail returns the stored form of an address: trimmed and lower
// case, or an error for a malformed one.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > MaxEmailLen {
		return "", fmt.Errorf("accounts: email: want 1 to %d characters", MaxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", fmt.Errorf("accounts: email %q is not an address", s)
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Errorf("accounts: email %q is not an address", s)
	}
	return s, nil
}

// ValidatePassword checks a new password's length.
func ValidatePassword(p string) error {
	n := utf8.RuneCountInString(p)
	if n < MinPasswordLen || len(p) > MaxPasswordLen {
		return fmt.Errorf("accounts: password: want %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// ValidateName checks a profile's name.
func ValidateName(n string) error {
	if strings.TrimSpace(n) == "" || utf8.RuneCountInString(n) > MaxNameLen || !utf8.ValidString(n) {
		return fmt.Errorf("accounts: name: want 1 to %d characters", MaxNameLen)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("accounts: name: control characters are not allowed")
		}
	}
	return nil
}

// Plan periods.
const (
	PeriodMonth = "month"
	PeriodYear  = "year"
)

// ValidatePlan checks a plan record.
func ValidatePlan(p Plan) error {
	switch {
	case fillcast.ValidateTitleID(p.ID) != nil:
		return fmt.Errorf("accounts: plan id %q: letters, digits, '-' and '_', up to %d", p.ID, fillcast.MaxTitleIDLen)
	case ValidateName(p.Name) != nil:
		return fmt.Errorf("accounts: plan name: want 1 to %d characters", MaxNameLen)
	case p.MaxHeight < 144 || p.MaxHeight > 4320:
		return fmt.Errorf("accounts: plan max_height %d: want 144 to 4320", p.MaxHeight)
	case p.MaxStreams < 1 || p.MaxStreams > 16:
		return fmt.Errorf("accounts: plan max_streams %d: want 1 to 16", p.MaxStreams)
	case p.Price.Amount < 0:
		return fmt.Errorf("accounts: plan price: negative amount")
	case !ValidCurrency(p.Price.Currency):
		return fmt.Errorf("accounts: plan price currency %q: want an ISO 4217 code such as EUR", p.Price.Currency)
	case p.Period != PeriodMonth && p.Period != PeriodYear:
		return fmt.Errorf("accounts: plan period %q: want month or year", p.Period)
	case p.TrialDays != nil && (*p.TrialDays < 0 || *p.TrialDays > MaxTrialDays):
		return fmt.Errorf("accounts: plan trial_days %d: want 0 to %d", *p.TrialDays, MaxTrialDays)
	}
	return nil
}

// ValidCurrency reports whether c has the form of an ISO 4217 code:
// three upper-case letters, such as EUR.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}
