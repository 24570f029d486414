// Package storetest is the contract of billing.Store as tests: one suite
// that every implementation runs (billing/embedded over the replicated
// state machine, billing/pgstore over PostgreSQL), so that they cannot
// drift apart. Each subtest checks one method or one documented condition
// of billing.Store and billing.Change on a fresh store, with fixed times,
// and compares records with the times in UTC, to the microsecond (what
// PostgreSQL keeps).
//
// Where billing.Store leaves a choice open, the suite makes it, and so
// every store makes it the same way:
//
//   - a limit of 0 lists nothing (a negative one is left to the store);
//   - of an account's subscriptions that are all canceled, the current
//     one is that of the latest Created, then of the greatest id, however
//     they were written;
//   - a subscription or an invoice replaced with another account is
//     ErrConflict;
//   - invoice numbers are the store's to give: a replaced invoice keeps
//     its stored number whatever Number the change has, and a Number on
//     an invoice that has none stored is ErrInvalid;
//   - two entries of one change with the same kind, invoice and
//     idempotency key are ErrDuplicate, like an entry recorded before.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// T0 is the time the suite's records start at: every time it uses is T0
// plus whole seconds, or a date around the turn of T0's year.
var T0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// Run runs the contract suite; newStore returns a new, empty store for
// one subtest (and arranges with t.Cleanup to close it). The subtests
// share nothing, so newStore may call t.Parallel to run them at once.
func Run(t *testing.T, newStore func(t *testing.T) billing.Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"CreateSubscription", testCreateSubscription},
		{"CreateSubscriptionTaken", testCreateSubscriptionTaken},
		{"ReplaceSubscription", testReplaceSubscription},
		{"OneLiveSubscriptionPerAccount", testOneLiveSubscription},
		{"CurrentSubscription", testCurrentSubscription},
		{"SubscriptionsPaging", testSubscriptionsPaging},
		{"DueSubscriptions", testDueSubscriptions},
		{"CreateInvoice", testCreateInvoice},
		{"InvoiceNumbers", testInvoiceNumbers},
		{"InvoiceNumbersPerYear", testInvoiceNumbersPerYear},
		{"InvoiceNumberNotTheStores", testInvoiceNumberNotTheStores},
		{"AccountInvoices", testAccountInvoices},
		{"InvoicesPaging", testInvoicesPaging},
		{"Entries", testEntries},
		{"DuplicateEntries", testDuplicateEntries},
		{"Requests", testRequests},
		{"PruneRequests", testPruneRequests},
		{"InvalidChange", testInvalidChange},
		{"AllOrNothing", testAllOrNothing},
		{"ConcurrentReplace", testConcurrentReplace},
		{"ConcurrentCreate", testConcurrentCreate},
		{"ConcurrentRequest", testConcurrentRequest},
		{"ConcurrentNumbers", testConcurrentNumbers},
		{"ConcurrentNumbersWithFailures", testConcurrentNumbersWithFailures},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &fixture{t: t, ctx: context.Background(), s: newStore(t)})
		})
	}
}

// fixture is one subtest's store.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   billing.Store
}

// at is T0 plus sec seconds.
func at(sec int) time.Time { return T0.Add(time.Duration(sec) * time.Second) }

// planBasic is the plan the suite's subscriptions and invoices are for.
func planBasic() accounts.Plan {
	return accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 720, MaxStreams: 1,
		Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: accounts.PeriodMonth}
}

// subscription returns a subscription of Version 1 in status, created at
// T0, its period a month from T0, with the fields its status has set.
func subscription(id, account string, status billing.Status) billing.Subscription {
	s := billing.Subscription{ID: id, Account: account, Plan: "basic", Period: accounts.PeriodMonth, Status: status,
		CurrentPeriodStart: at(0), CurrentPeriodEnd: T0.AddDate(0, 1, 0), Anchor: at(0),
		PaymentMethod: billing.PaymentMethod{ID: "pm-" + id, Customer: "cus-" + account, Brand: "visa", Last4: "4242"},
		Created:       at(0), Version: 1}
	switch status {
	case billing.Trialing:
		s.TrialEnd = s.CurrentPeriodEnd
	case billing.PastDue:
		s.PastDueSince, s.Attempts = s.CurrentPeriodEnd, 1
	case billing.Canceled:
		s.CanceledAt = at(0)
	case billing.Incomplete:
		s.Attempts = 1
	}
	return s
}

// next returns s as a transition makes it: Version one higher.
func next(s billing.Subscription) billing.Subscription {
	s.Version++
	return s
}

// canceled returns s canceled at at(sec), Version one higher.
func canceled(s billing.Subscription, sec int) billing.Subscription {
	s.Status, s.CanceledAt = billing.Canceled, at(sec)
	return next(s)
}

// draft returns a draft invoice of the basic plan for account, created at
// at(sec).
func draft(id, account, sub string, sec int) billing.Invoice {
	line := billing.PlanLine(planBasic(), at(sec), at(sec).AddDate(0, 1, 0))
	inv, err := billing.NewInvoice(id, account, sub, "key-"+id, []billing.Line{line}, at(sec))
	if err != nil {
		panic(err) // the suite's own mistake
	}
	return inv
}

// finalized returns inv open, finalized at fin, with no number: the
// store gives it one.
func finalized(inv billing.Invoice, fin time.Time) billing.Invoice {
	inv.Status, inv.Finalized = billing.Open, fin
	return inv
}

// owed returns the invoice_finalized entry of inv.
func owed(inv billing.Invoice, sec int) billing.Entry {
	return billing.Entry{At: at(sec), Account: inv.Account, Invoice: inv.ID, Kind: billing.EntryInvoiceFinalized,
		Amount: inv.Total, IdempotencyKey: "finalize-" + inv.ID}
}

// credit returns a goodwill credit of account, with no invoice.
func credit(account, key string, sec int) billing.Entry {
	return billing.Entry{At: at(sec), Account: account, Kind: billing.EntryCredit,
		Amount: accounts.Money{Amount: 100, Currency: "EUR"}, IdempotencyKey: key}
}

// request returns the answer of an idempotent request of account.
func request(account, key string, sec int) billing.Request {
	return billing.Request{Account: account, Key: key, Hash: "sha256:" + key, Status: 201,
		Body: []byte(`{"id": "` + key + `",  "ok":true}`), Created: at(sec)}
}

// change returns a change at T0 of the subscriptions.
func change(subs ...billing.Subscription) billing.Change {
	return billing.Change{At: at(0), Subscriptions: subs}
}

// commit commits c and fails the test now if that fails.
func (f *fixture) commit(what string, c billing.Change) billing.Committed {
	f.t.Helper()
	got, err := f.s.Commit(f.ctx, c)
	storecheck.OK(f.t, what, err)
	return got
}

// refused commits c, which must fail with want.
func (f *fixture) refused(what string, c billing.Change, want error) {
	f.t.Helper()
	_, err := f.s.Commit(f.ctx, c)
	storecheck.WantErr(f.t, what, err, want)
}
