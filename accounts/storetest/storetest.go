// Package storetest is the contract of accounts.Store as tests: one suite
// that every implementation runs (accounts/embedded over the replicated
// state machine, accounts/pgstore over PostgreSQL), so that they cannot
// drift apart. Each subtest checks one method or one documented condition
// on a fresh store, with fixed times, and compares records with the times
// in UTC, to the microsecond (what PostgreSQL keeps).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/auth"
)

// T0 is the time the suite's records start at: every time it uses is T0
// plus whole seconds.
var T0 = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)

// Run runs the contract suite; newStore returns a new, empty store for
// one subtest (and arranges with t.Cleanup to close it).
func Run(t *testing.T, newStore func(t *testing.T) accounts.Store) {
	s := &suite{
		newStore: newStore,
		// Cheap parameters: the suite tests the store, not the hash.
		hash: accounts.Argon2{MemoryKiB: 64, Time: 1}.HashPassword("correct horse battery"),
	}
	for _, c := range []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"Plans", testPlans},
		{"CreateAccount", testCreateAccount},
		{"CreateAccountTaken", testCreateAccountTaken},
		{"CreateAccountUnknownPlan", testCreateAccountUnknownPlan},
		{"CreateAccountConcurrentEmail", testCreateAccountConcurrentEmail},
		{"AccountNotFound", testAccountNotFound},
		{"Profiles", testProfiles},
		{"AddProfileLimit", testAddProfileLimit},
		{"AddProfileUnknownAccount", testAddProfileUnknownAccount},
		{"AddProfileConcurrent", testAddProfileConcurrent},
		{"DeleteProfile", testDeleteProfile},
		{"Sessions", testSessions},
		{"TouchSession", testTouchSession},
		{"DeleteSessions", testDeleteSessions},
		{"CreateSessionDropsExpired", testCreateSessionDropsExpired},
		{"CreateSessionDropsLeastRecentlySeen", testCreateSessionDropsLeastRecentlySeen},
		{"StreamLimit", testStreamLimit},
		{"StreamReacquire", testStreamReacquire},
		{"StreamExpired", testStreamExpired},
		{"RenewStream", testRenewStream},
		{"EndStream", testEndStream},
		{"StreamsOrder", testStreamsOrder},
		{"StreamsConcurrent", testStreamsConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &fixture{t: t, ctx: context.Background(), s: s.newStore(t), hash: s.hash})
		})
	}
}

type suite struct {
	newStore func(t *testing.T) accounts.Store
	hash     string
}

// fixture is one subtest's store and what makes its records.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	s    accounts.Store
	hash string
}

// at is T0 plus sec seconds.
func at(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }

// Plans of the suite.
func planBasic() accounts.Plan {
	return accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 720, MaxStreams: 1,
		Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: accounts.PeriodMonth}
}

func planPremium() accounts.Plan {
	return accounts.Plan{ID: "premium", Name: "Premium", MaxHeight: 2160, MaxStreams: 4, Downloads: true,
		Price: accounts.Money{Amount: 17999, Currency: "EUR"}, Period: accounts.PeriodYear}
}

// account returns an account record and its first profile.
func (f *fixture) account(id, email string) (accounts.Account, accounts.Profile) {
	a := accounts.Account{ID: id, Email: email, PasswordHash: f.hash, Plan: "basic", Created: at(0)}
	p := accounts.Profile{ID: id + "-main", Account: id, Name: "Main", Created: at(0)}
	return a, p
}

// withAccount stores the basic plan and an account of id, and returns
// them.
func (f *fixture) withAccount(id string) (accounts.Account, accounts.Profile) {
	f.t.Helper()
	if err := f.s.PutPlan(f.ctx, planBasic()); err != nil {
		f.t.Fatalf("PutPlan: %v", err)
	}
	a, p := f.account(id, id+"@example.com")
	if err := f.s.CreateAccount(f.ctx, a, p); err != nil {
		f.t.Fatalf("CreateAccount %s: %v", id, err)
	}
	return a, p
}

func (f *fixture) session(id, account string, seen int) accounts.Session {
	return accounts.Session{ID: id, Account: account, Hash: auth.HashSecret("secret of " + id), Created: at(seen), LastSeen: at(seen)}
}

func stream(id, account string, sec int) accounts.Stream {
	return accounts.Stream{ID: id, Account: account, Profile: account + "-main", Title: "title-1", Started: at(sec), Renewed: at(sec)}
}
