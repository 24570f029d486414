package subscriptions_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	acctembedded "github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/embedded"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/billing/testprovider"
	"github.com/fillcast/fillcast/internal/clocktest"
)

// Test cards of the test provider.
const (
	cardOK          = "4242424242424242"
	cardDeclined    = "4000000000000002"
	cardDeclineLate = "4000000000000341"
)

// T0 is the suite's start: 31 January, so that monthly periods show
// their anchoring (28 February, 31 March).
var T0 = time.Date(2026, time.January, 31, 10, 0, 0, 0, time.UTC)

// fixture is a Service over the embedded store in this process, real
// plans (an accounts service), the test provider in a temporary
// directory and a settable clock.
type fixture struct {
	svc      *subscriptions.Service
	store    billing.Store
	provider *testprovider.Provider
	viewers  *accounts.Service
	clock    *clocktest.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: embedded.NewLocal(), clock: clocktest.New(T0)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	if f.viewers, err = accounts.NewService(accounts.Config{SignUpsPerHour: -1}, accounts.Deps{Store: acctembedded.NewLocal(), Log: log, Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	none := 0
	for _, p := range []accounts.Plan{
		{ID: "basic", Name: "Basic", MaxHeight: 480, MaxStreams: 1, Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: "month"},
		{ID: "premium", Name: "Premium", MaxHeight: 2160, MaxStreams: 4, Price: accounts.Money{Amount: 1799, Currency: "EUR"}, Period: "month"},
		{ID: "notrial", Name: "No trial", MaxHeight: 720, MaxStreams: 1, Price: accounts.Money{Amount: 500, Currency: "EUR"}, Period: "month", TrialDays: &none},
	} {
		if err := f.viewers.PutPlan(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if f.provider, err = testprovider.New(testprovider.Config{Dir: t.TempDir(), Now: f.clock.Now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.provider.Close() })
	if f.svc, err = subscriptions.New(subscriptions.Config{EntitlementTTL: time.Nanosecond}, subscriptions.Deps{
		Store: f.store, Provider: f.provider, Plans: f.viewers, Log: log, Now: f.clock.Now,
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// account returns a new account on plan created now.
func (f *fixture) account(t *testing.T, email, plan string) accounts.Account {
	t.Helper()
	a, err := f.viewers.SignUp(context.Background(), email, "correct horse battery", plan, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func idem(key, body string) subscriptions.Idem {
	return subscriptions.Idem{Key: key, Hash: "h-" + body}
}

// view decodes an answer's body.
func view(t *testing.T, a subscriptions.Answer) subscriptions.View {
	t.Helper()
	var v subscriptions.View
	if err := json.Unmarshal(a.Body, &v); err != nil {
		t.Fatalf("answer %d %s: %v", a.Status, a.Body, err)
	}
	return v
}

// succeeded counts the provider's charges that moved money.
func (f *fixture) succeeded(t *testing.T) int {
	t.Helper()
	n, err := f.provider.Succeeded(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// verify fails the test unless the ledger and the invoices agree.
func (f *fixture) verify(t *testing.T) subscriptions.Verification {
	t.Helper()
	v, err := f.svc.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Problems {
		t.Errorf("verify: %s", p)
	}
	return v
}

func (f *fixture) subscribe(t *testing.T, account, plan, card, key string) subscriptions.Answer {
	t.Helper()
	a, err := f.svc.Subscribe(context.Background(), account, plan, billing.Card{Number: card}, idem(key, plan+card))
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return a
}

func TestSubscribe(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "ann@example.com", "basic")
	if err := f.svc.StartTrial(ctx, a); err != nil {
		t.Fatal(err)
	}
	if plan, err := f.svc.Entitlement(ctx, a); err != nil || plan != "basic" {
		t.Fatalf("trial entitlement: %q %v", plan, err)
	}
	ans := f.subscribe(t, a.ID, "premium", cardOK, "k1")
	v := view(t, ans)
	if ans.Status != http.StatusCreated || v.Status != billing.Active || v.Plan != "premium" || v.Invoice == nil ||
		v.Invoice.Status != billing.Paid || v.Invoice.Amount != 1799 || v.Invoice.Currency != "EUR" || v.Card != "visa •••• 4242" {
		t.Fatalf("subscribe: %d %s", ans.Status, ans.Body)
	}
	if !v.CurrentPeriodEnd.Equal(time.Date(2026, time.February, 28, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("period ends %v, want 28 February", v.CurrentPeriodEnd)
	}
	// The retry replays the answer and charges nothing more.
	again := f.subscribe(t, a.ID, "premium", cardOK, "k1")
	if !again.Replayed || again.Status != ans.Status || string(again.Body) != string(ans.Body) {
		t.Fatalf("retry: %+v, want the first answer replayed", again)
	}
	if _, err := f.svc.Subscribe(ctx, a.ID, "basic", billing.Card{Number: cardOK}, idem("k1", "other")); !errors.Is(err, subscriptions.ErrKeyReused) {
		t.Fatalf("same key, other request: %v, want ErrKeyReused", err)
	}
	if _, err := f.svc.Subscribe(ctx, a.ID, "basic", billing.Card{Number: cardOK}, idem("k2", "basic")); !errors.Is(err, subscriptions.ErrConflict) {
		t.Fatalf("subscribe while active: %v, want ErrConflict", err)
	}
	if _, err := f.svc.Subscribe(ctx, a.ID, "basic", billing.Card{Number: cardOK}, subscriptions.Idem{}); !errors.Is(err, subscriptions.ErrInvalid) {
		t.Fatalf("without an Idempotency-Key: %v, want ErrInvalid", err)
	}
	b := f.account(t, "bob@example.com", "basic")
	if _, err := f.svc.Subscribe(ctx, b.ID, "basic", billing.Card{Number: "1234"}, idem("k3", "bad")); !errors.Is(err, subscriptions.ErrInvalid) {
		t.Fatalf("a mistyped card: %v, want ErrInvalid", err)
	}
	if plan, err := f.svc.Entitlement(ctx, a); err != nil || plan != "premium" {
		t.Fatalf("entitlement: %q %v", plan, err)
	}
	if n := f.succeeded(t); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	invs, _ := f.svc.Invoices(ctx, a.ID)
	if len(invs) != 1 || invs[0].Number != "2026-000001" {
		t.Fatalf("invoices: %+v", invs)
	}
	if _, err := f.svc.Invoice(ctx, "someone-else", invs[0].ID); !errors.Is(err, billing.ErrNotFound) {
		t.Fatalf("another account's invoice: %v, want ErrNotFound", err)
	}
	f.verify(t)
}

func TestSubscribeDeclined(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, c := range []struct {
		card        string
		wantInvoice bool
	}{{cardDeclined, false}, {cardDeclineLate, true}} {
		a := f.account(t, "d"+c.card[12:]+"@example.com", "basic")
		f.svc.StartTrial(ctx, a)
		ans := f.subscribe(t, a.ID, "basic", c.card, "k-"+c.card)
		v := view(t, ans)
		if ans.Status != http.StatusPaymentRequired || v.Status != billing.Incomplete || !strings.Contains(v.Error, "declined") {
			t.Fatalf("card %s: %d %s", c.card, ans.Status, ans.Body)
		}
		if c.wantInvoice != (v.Invoice != nil) || v.Invoice != nil && v.Invoice.Status != billing.Void {
			t.Fatalf("card %s: invoice %+v", c.card, v.Invoice)
		}
		_, err := f.svc.Entitlement(ctx, a)
		if !errors.Is(err, subscriptions.ErrPaymentRequired) || !strings.HasPrefix(err.Error(), "payment required: ") {
			t.Fatalf("card %s: entitlement %v, want payment required", c.card, err)
		}
		// Another card afterwards subscribes.
		if ans := f.subscribe(t, a.ID, "basic", cardOK, "ok-"+c.card); ans.Status != http.StatusCreated {
			t.Fatalf("then the good card: %d %s", ans.Status, ans.Body)
		}
	}
	if n := f.succeeded(t); n != 2 {
		t.Fatalf("%d charges, want 2", n)
	}
	f.verify(t)
}

// TestConcurrentSubscribe: requests racing from one state with one key
// or several charge once.
func TestConcurrentSubscribe(t *testing.T) {
	f := newFixture(t)
	a := f.account(t, "race@example.com", "basic")
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "same"
			if i%2 == 1 {
				key = "other-" + string(rune('a'+i))
			}
			ans, err := f.svc.Subscribe(context.Background(), a.ID, "basic", billing.Card{Number: cardOK}, idem(key, "basic"))
			if err != nil {
				statuses <- http.StatusConflict
				return
			}
			statuses <- ans.Status
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		if s == http.StatusCreated {
			created++
		}
	}
	if created == 0 {
		t.Fatal("no request subscribed")
	}
	if n := f.succeeded(t); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	f.verify(t)
}
