package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fillcast/fillcast/accounts"
	acctpgstore "github.com/fillcast/fillcast/accounts/pgstore"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/pgstore"
	"github.com/fillcast/fillcast/billing/storetest"
	"github.com/fillcast/fillcast/internal/pgtest"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// One PostgreSQL for the package's tests, a database for each.
func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestStoreContract runs the suite's subtests in parallel, each on a
// database of its own: most of each one's time is making its database.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) billing.Store {
		t.Parallel()
		return open(t, pgtest.Start(t))
	})
}

// sub returns a subscription of Version 1, active for a month from T0.
func sub(id, account string) billing.Subscription {
	return billing.Subscription{ID: id, Account: account, Plan: "basic", Period: "month", Status: billing.Active,
		CurrentPeriodStart: storetest.T0, CurrentPeriodEnd: storetest.T0.AddDate(0, 1, 0), Anchor: storetest.T0,
		Created: storetest.T0, Version: 1}
}

func commit(t *testing.T, s *pgstore.Store, subs ...billing.Subscription) {
	t.Helper()
	if _, err := s.Commit(context.Background(), billing.Change{At: storetest.T0, Subscriptions: subs}); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// Two control plane nodes, each with its pool, renew one subscription at
// once: one wins.
func TestTwoStoresRaceOneVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.Start(t)
	stores := []*pgstore.Store{open(t, dsn), open(t, dsn)}
	v1 := sub("sub-1", "acct-1")
	commit(t, stores[0], v1)
	const n = 20
	won := storecheck.Race(t, "Commit of version 2 from two stores", n, billing.ErrConflict, func(i int) error {
		v2 := v1
		v2.Version, v2.PendingPlan = 2, fmt.Sprintf("plan-%02d", i)
		_, err := stores[i%len(stores)].Commit(ctx, billing.Change{At: storetest.T0, Subscriptions: []billing.Subscription{v2}})
		return err
	})
	if won != 1 {
		t.Errorf("Commit of version 2 from %d goroutines over two stores: %d succeeded, want 1", n, won)
	}
	// Each store sees the one winner.
	a, errA := stores[0].Subscription(ctx, "sub-1")
	b, errB := stores[1].Subscription(ctx, "sub-1")
	if errA != nil || errB != nil || a.Version != 2 || a.PendingPlan != b.PendingPlan {
		t.Errorf("Subscription on the two stores: got %+v, %v and %+v, %v; want the same version 2", a, errA, b, errB)
	}
}

// Times are kept to the microsecond, in the record and in the due date
// alike.
func TestTimesToTheMicrosecond(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, pgtest.Start(t))
	v1 := sub("sub-1", "acct-1")
	v1.CurrentPeriodEnd = v1.CurrentPeriodEnd.Add(1500 * time.Nanosecond)
	commit(t, s, v1)
	got, err := s.Subscription(ctx, "sub-1")
	if want := v1.CurrentPeriodEnd.Truncate(time.Microsecond); err != nil || !got.CurrentPeriodEnd.Equal(want) {
		t.Errorf("Subscription's period end: got %v, %v; want %v", got.CurrentPeriodEnd, err, want)
	}
	for _, c := range []struct {
		asOf time.Time
		due  bool
	}{
		{got.CurrentPeriodEnd.Add(-time.Nanosecond), false},
		{got.CurrentPeriodEnd, true},
		{got.CurrentPeriodEnd.Add(999 * time.Nanosecond), true},
	} {
		due, err := s.DueSubscriptions(ctx, c.asOf, "", 10)
		if err != nil || (len(due) == 1) != c.due || c.due != billing.Due(got, c.asOf) {
			t.Errorf("DueSubscriptions as of %v: got %d, %v; want due %v, as billing.Due says", c.asOf, len(due), err, c.due)
		}
	}
}

// A negative limit lists everything; billing.Store leaves it open, and
// this store reads it as no limit, like the replicated one.
func TestNegativeLimitListsAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, pgtest.Start(t))
	commit(t, s, sub("sub-1", "acct-1"), sub("sub-2", "acct-2"))
	subs, err := s.Subscriptions(ctx, "", -1)
	if err != nil || len(subs) != 2 {
		t.Errorf("Subscriptions with limit -1: got %d, %v; want 2", len(subs), err)
	}
	due, err := s.DueSubscriptions(ctx, storetest.T0.AddDate(1, 0, 0), "", -1)
	if err != nil || len(due) != 2 {
		t.Errorf("DueSubscriptions with limit -1: got %d, %v; want 2", len(due), err)
	}
	invs, err := s.Invoices(ctx, "", -1)
	if err != nil || len(invs) != 0 {
		t.Errorf("Invoices with limit -1: got %d, %v; want 0", len(invs), err)
	}
	es, err := s.Entries(ctx, 0, -1)
	if err != nil || len(es) != 0 {
		t.Errorf("Entries with limit -1: got %d, %v; want 0", len(es), err)
	}
}

// The billing tables live beside the accounts' in one database.
func TestBesideTheAccountsStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.Start(t)
	as, err := acctpgstore.Open(ctx, acctpgstore.Config{DSN: dsn, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer as.Close()
	s := open(t, dsn)
	if err := as.PutPlan(ctx, accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 720, MaxStreams: 1,
		Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, sub("sub-1", "acct-1"))
	if _, err := s.Subscription(ctx, "sub-1"); err != nil {
		t.Errorf("Subscription: %v", err)
	}
	// Each schema keeps its version in the table the databases already
	// made have: renaming one would migrate them again from nothing.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var acct, bill int
	err = conn.QueryRow(ctx, `SELECT (SELECT version FROM accounts_schema_version), (SELECT version FROM billing_schema_version)`).Scan(&acct, &bill)
	if err != nil || acct < 1 || bill < 1 {
		t.Errorf("accounts_schema_version and billing_schema_version: got %d, %d, %v; want a version in each", acct, bill, err)
	}
}

func TestErrorsArePrefixed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, pgtest.Start(t))
	v1 := sub("sub-1", "acct-1")
	commit(t, s, v1)
	errOf := func(_ any, err error) error { return err }
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"Commit of an empty change", errOf(s.Commit(ctx, billing.Change{At: storetest.T0})), billing.ErrInvalid},
		{"Commit of a taken id", errOf(s.Commit(ctx, billing.Change{At: storetest.T0, Subscriptions: []billing.Subscription{v1}})), billing.ErrExists},
		{"Commit of a stale version", errOf(s.Commit(ctx, billing.Change{At: storetest.T0, Subscriptions: []billing.Subscription{func() billing.Subscription { v := v1; v.Version = 3; return v }()}})), billing.ErrConflict},
		{"Subscription unknown", errOf(s.Subscription(ctx, "x")), billing.ErrNotFound},
		{"Invoice unknown", errOf(s.Invoice(ctx, "x")), billing.ErrNotFound},
		{"Request unknown", errOf(s.Request(ctx, "acct-1", "x")), billing.ErrNotFound},
	} {
		if !errors.Is(c.err, c.want) || !strings.HasPrefix(c.err.Error(), "pgstore: ") {
			t.Errorf("%s: got %v, want %v prefixed pgstore:", c.name, c.err, c.want)
		}
	}
}
