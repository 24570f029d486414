package fsm

import (
	"context"
	"fmt"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/embedded"
	billembedded "github.com/fillcast/fillcast/billing/embedded"
)

// AccountsStore returns the embedded accounts store over f: it reads
// f's state and writes with apply, which replicates a command (the raft
// node's Apply). current, if not nil, makes this node's copy reflect
// every write committed before the call (the raft node's CatchUp, a
// linearizable read): lookups of accounts, profiles, sessions and stream
// leases call it first, so that a viewer who signed up, signed out or
// added a profile through one node is seen so at once through any other,
// and a node cut off from the leader refuses them rather than answer
// from an old copy. Plans are read from the local copy.
func AccountsStore(f *FSM, apply func(context.Context, Command) error, current func(context.Context) error) accounts.Store {
	st := embedded.NewStore(
		func(ctx context.Context, c embedded.Command) error {
			return apply(ctx, Command{Op: OpAccounts, Accounts: &c})
		},
		func(fn func(*embedded.State)) { f.Read(func(s *State) { fn(s.Accounts) }) },
		nil,
	)
	if current == nil {
		return st
	}
	return currentAccounts{Store: st, current: current}
}

// currentAccounts is the embedded store whose lookups first make this
// node's copy current (see AccountsStore).
type currentAccounts struct {
	*embedded.Store
	current func(context.Context) error
}

var _ accounts.Store = currentAccounts{}

func (s currentAccounts) sync(ctx context.Context) error {
	if err := s.current(ctx); err != nil {
		return fmt.Errorf("accounts: reading current records: %w", err)
	}
	return nil
}

// Account implements accounts.Store.
func (s currentAccounts) Account(ctx context.Context, id string) (accounts.Account, error) {
	if err := s.sync(ctx); err != nil {
		return accounts.Account{}, err
	}
	return s.Store.Account(ctx, id)
}

// AccountByEmail implements accounts.Store.
func (s currentAccounts) AccountByEmail(ctx context.Context, email string) (accounts.Account, error) {
	if err := s.sync(ctx); err != nil {
		return accounts.Account{}, err
	}
	return s.Store.AccountByEmail(ctx, email)
}

// Profiles implements accounts.Store.
func (s currentAccounts) Profiles(ctx context.Context, account string) ([]accounts.Profile, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	return s.Store.Profiles(ctx, account)
}

// Session implements accounts.Store.
func (s currentAccounts) Session(ctx context.Context, id string) (accounts.Session, error) {
	if err := s.sync(ctx); err != nil {
		return accounts.Session{}, err
	}
	return s.Store.Session(ctx, id)
}

// Streams implements accounts.Store.
func (s currentAccounts) Streams(ctx context.Context, account string, now time.Time, ttl time.Duration) ([]accounts.Stream, error) {
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	return s.Store.Streams(ctx, account, now, ttl)
}

// BillingStore returns the embedded billing store over f, as
// AccountsStore does the accounts'. current (the raft node's CatchUp, or
// nil) makes this node's copy reflect every write committed before the
// call: a lookup that misses calls it and looks again, and Sync (before
// retrying a compare-and-set) calls it.
func BillingStore(f *FSM, apply func(context.Context, Command) error, current func(context.Context) error) *billembedded.Store {
	return billembedded.NewStore(
		func(ctx context.Context, c billembedded.Command) error {
			return apply(ctx, Command{Op: OpBilling, Billing: &c})
		},
		func(fn func(*billembedded.State)) { f.Read(func(s *State) { fn(s.Billing) }) },
		current,
	)
}
