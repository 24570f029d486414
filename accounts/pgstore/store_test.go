package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/pgstore"
	"github.com/fillcast/fillcast/accounts/storetest"
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

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) accounts.Store { return open(t, pgtest.Start(t)) })
}

// seed stores a plan and an account for the tests below.
func seed(t *testing.T, s *pgstore.Store, id string) {
	t.Helper()
	ctx := context.Background()
	plan := accounts.Plan{ID: "basic", Name: "Basic", MaxHeight: 720, MaxStreams: 2, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"}
	if err := s.PutPlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	a := accounts.Account{ID: id, Email: id + "@example.com", PasswordHash: "$argon2id$stand-in", Plan: "basic", Created: storetest.T0}
	p := accounts.Profile{ID: id + "-main", Account: id, Name: "Main", Created: storetest.T0}
	if err := s.CreateAccount(ctx, a, p); err != nil {
		t.Fatal(err)
	}
}

func TestSecondStoreSeesWrites(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	seed(t, a, "acct-1")
	got, err := b.AccountByEmail(ctx, "acct-1@example.com")
	if err != nil || got.ID != "acct-1" {
		t.Fatalf("AccountByEmail on the second store: got %+v, %v", got, err)
	}
	st := accounts.Stream{ID: "s1", Account: "acct-1", Profile: "acct-1-main", Title: "t1", Started: storetest.T0, Renewed: storetest.T0}
	if err := b.AcquireStream(ctx, st, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	streams, err := a.Streams(ctx, "acct-1", storetest.T0, time.Minute)
	if err != nil || len(streams) != 1 || streams[0].ID != "s1" {
		t.Errorf("Streams on the first store: got %+v, %v; want s1", streams, err)
	}
	st.ID = "s2"
	if err := a.AcquireStream(ctx, st, 1, time.Minute); !errors.Is(err, accounts.ErrLimit) {
		t.Errorf("AcquireStream on the first store beyond the second's lease: got %v, want ErrLimit", err)
	}
}

func TestStoresShareOneStreamLimit(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	stores := []*pgstore.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	seed(t, stores[0], "acct-1")
	const n, max = 30, 2
	won := storecheck.Race(t, "AcquireStream", n, accounts.ErrLimit, func(i int) error {
		st := accounts.Stream{ID: fmt.Sprintf("s%02d", i), Account: "acct-1", Profile: "acct-1-main", Title: "t1", Started: storetest.T0, Renewed: storetest.T0}
		return stores[i%len(stores)].AcquireStream(ctx, st, max, time.Minute)
	})
	if won != max {
		t.Errorf("AcquireStream from %d goroutines over %d stores with max %d: %d succeeded, want %d", n, len(stores), max, won, max)
	}
}

func TestErrorsArePrefixed(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Start(t))
	seed(t, s, "acct-1")
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"AddProfile with limit 0", s.AddProfile(ctx, accounts.Profile{ID: "p", Account: "acct-1", Name: "P"}, 0), accounts.ErrInvalid},
		{"AcquireStream with ttl 0", s.AcquireStream(ctx, accounts.Stream{ID: "s", Account: "acct-1", Renewed: storetest.T0}, 1, 0), accounts.ErrInvalid},
		{"AddProfile of a taken id", s.AddProfile(ctx, accounts.Profile{ID: "acct-1-main", Account: "acct-1", Name: "P"}, 5), accounts.ErrExists},
		{"Account unknown", func() error { _, err := s.Account(ctx, "x"); return err }(), accounts.ErrNotFound},
	} {
		if !errors.Is(c.err, c.want) || !strings.HasPrefix(c.err.Error(), "pgstore: ") {
			t.Errorf("%s: got %v, want %v prefixed pgstore:", c.name, c.err, c.want)
		}
	}
}
