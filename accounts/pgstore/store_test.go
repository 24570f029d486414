package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/pgstore"
	"github.com/fillcast/fillcast/accounts/storetest"
	"github.com/fillcast/fillcast/internal/leakcheck"
	"github.com/fillcast/fillcast/internal/pgtest"
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

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name  string
		cfg   pgstore.Config
		field string // "" for valid
	}{
		{"url", pgstore.Config{DSN: "postgres://fillcast@db.example.com/fillcast"}, ""},
		{"key=value", pgstore.Config{DSN: "host=/run/postgresql dbname=fillcast", MaxConns: 20}, ""},
		{"no dsn", pgstore.DefaultConfig(), "DSN"},
		{"malformed dsn", pgstore.Config{DSN: "postgres://%zz"}, "DSN"},
		{"negative max conns", pgstore.Config{DSN: "dbname=x", MaxConns: -1}, "MaxConns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			var ce *fillcast.ConfigError
			switch {
			case c.field == "" && err != nil:
				t.Errorf("Validate: got %v, want nil", err)
			case c.field != "" && (!errors.As(err, &ce) || ce.Field != c.field):
				t.Errorf("Validate: got %v, want a ConfigError of field %s", err, c.field)
			}
		})
	}
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

func TestOpenTwiceMigratesOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	first := open(t, dsn)
	seed(t, first, "acct-1")
	first.Close()
	// A second Open finds the schema current and the records kept.
	second := open(t, dsn)
	if _, err := second.Account(context.Background(), "acct-1"); err != nil {
		t.Errorf("Account after reopening: %v", err)
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	open(t, dsn).Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []int
	rows, _ := conn.Query(ctx, `SELECT version FROM accounts_schema_version`)
	if versions, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil || len(versions) != 1 || versions[0] < 1 {
		t.Fatalf("schema versions after Open: got %v, %v; want one", versions, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE accounts_schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.Open(ctx, pgstore.Config{DSN: dsn})
	if err == nil || !strings.Contains(err.Error(), "newer than this program's") {
		t.Errorf("Open on a newer schema: got %v, want a refusal", err)
	}
}

func TestOpenConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn, MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d of %d at once: %v", i+1, n, err)
		}
	}
}

func TestOpenFailsClearly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A socket directory where no server listens.
	_, err := pgstore.Open(ctx, pgstore.Config{DSN: "host=" + t.TempDir() + " dbname=x connect_timeout=5"})
	if err == nil || !strings.HasPrefix(err.Error(), "pgstore: ") {
		t.Errorf("Open without a server: got %v, want an error prefixed pgstore:", err)
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
	won := storetest.Race(t, "AcquireStream", n, accounts.ErrLimit, func(i int) error {
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

func TestCloseLeavesNoGoroutine(t *testing.T) {
	dsn := pgtest.Start(t)
	base := leakcheck.Baseline()
	s, err := pgstore.Open(context.Background(), pgstore.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s, "acct-1")
	s.Close()
	s.Close() // twice is safe
	leakcheck.VerifyNone(t, base)
}
