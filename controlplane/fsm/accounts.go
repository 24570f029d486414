package fsm

import (
	"context"

	"github.com/fillcast/fillcast/accounts/embedded"
	billembedded "github.com/fillcast/fillcast/billing/embedded"
)

// AccountsStore returns the embedded accounts store over f: it reads
// f's state and writes with apply, which replicates a command (the raft
// node's Apply); catchUp (the raft node's CatchUp, or nil) lets a lookup
// that misses wait for writes made through other nodes.
func AccountsStore(f *FSM, apply func(context.Context, Command) error, catchUp func(context.Context) error) *embedded.Store {
	return embedded.NewStore(
		func(ctx context.Context, c embedded.Command) error {
			return apply(ctx, Command{Op: OpAccounts, Accounts: &c})
		},
		func(fn func(*embedded.State)) { f.Read(func(s *State) { fn(s.Accounts) }) },
		catchUp,
	)
}

// BillingStore returns the embedded billing store over f, as
// AccountsStore does the accounts'.
func BillingStore(f *FSM, apply func(context.Context, Command) error, catchUp func(context.Context) error) *billembedded.Store {
	return billembedded.NewStore(
		func(ctx context.Context, c billembedded.Command) error {
			return apply(ctx, Command{Op: OpBilling, Billing: &c})
		},
		func(fn func(*billembedded.State)) { f.Read(func(s *State) { fn(s.Billing) }) },
		catchUp,
	)
}
