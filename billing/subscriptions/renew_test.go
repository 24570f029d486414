package subscriptions_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
)

func day(m time.Month, d int) time.Time { return time.Date(2026, m, d, 10, 0, 0, 0, time.UTC) }

func (f *fixture) renew(t *testing.T, asOf time.Time) subscriptions.PassResult {
	t.Helper()
	f.clock.Set(asOf)
	res, err := f.svc.Renew(context.Background(), asOf)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) current(t *testing.T, account string) billing.Subscription {
	t.Helper()
	s, err := f.store.CurrentSubscription(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// declineFrom makes the account's card decline every charge from now
// on, as a card replaced by 0341 would.
func (f *fixture) declineFrom(t *testing.T, account string) {
	t.Helper()
	ctx := context.Background()
	pm, err := f.provider.AttachCard(ctx, account, billing.Card{Number: cardDeclineLate})
	if err != nil {
		t.Fatal(err)
	}
	sub := f.current(t, account)
	sub.PaymentMethod, sub.Version = pm, sub.Version+1
	if _, err := f.store.Commit(ctx, billing.Change{At: f.clock.Now(), Subscriptions: []billing.Subscription{sub}}); err != nil {
		t.Fatal(err)
	}
}

// TestRenewalAndDunning: a paid subscription renews on its anchored
// day; one whose card declines goes past due, is retried on days 1, 3
// and 5, plays for the 3-day grace, and ends canceled with its invoice
// uncollectible; a trial without a card ends incomplete; invoice numbers
// have no gaps.
func TestRenewalAndDunning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	paying := f.account(t, "pay@example.com", "basic")
	f.subscribe(t, paying.ID, "basic", cardOK, "k")
	failing := f.account(t, "fail@example.com", "basic")
	f.subscribe(t, failing.ID, "basic", cardOK, "k")
	f.declineFrom(t, failing.ID)
	trial := f.account(t, "trial@example.com", "basic")
	if err := f.svc.StartTrial(ctx, trial); err != nil {
		t.Fatal(err)
	}
	if s := f.current(t, trial.ID); s.Status != billing.Trialing || !s.CurrentPeriodEnd.Equal(day(time.February, 7)) {
		t.Fatalf("trial: %+v", s)
	}
	if res := f.renew(t, day(time.February, 7)); res.Due != 1 || res.TrialsEnded != 1 {
		t.Fatalf("trial's end: %+v", res)
	}
	if s := f.current(t, trial.ID); s.Status != billing.Incomplete {
		t.Fatalf("after the trial: %+v, want incomplete", s)
	}
	if _, err := f.svc.Entitlement(ctx, trial); !errors.Is(err, subscriptions.ErrPaymentRequired) || !strings.Contains(err.Error(), "trial ended") {
		t.Fatalf("after the trial: %v, want payment required", err)
	}

	if res := f.renew(t, day(time.February, 28)); res.Due != 2 || res.Renewed != 1 || res.PastDue != 1 {
		t.Fatalf("renewals: %+v", res)
	}
	if s := f.current(t, paying.ID); s.Status != billing.Active || !s.CurrentPeriodEnd.Equal(day(time.March, 31)) {
		t.Fatalf("renewed: %+v, want active to 31 March", s)
	}
	if res := f.renew(t, day(time.February, 28)); res.Due != 0 {
		t.Fatalf("again: %+v, want nothing due", res)
	}
	if _, err := f.svc.Entitlement(ctx, failing); err != nil {
		t.Fatalf("within the grace: %v", err)
	}
	for i, d := range []time.Time{day(time.March, 1), day(time.March, 3)} {
		if res := f.renew(t, d); res.Due != 1 || res.PastDue != 1 {
			t.Fatalf("retry %d: %+v", i+1, res)
		}
	}
	if _, err := f.svc.Entitlement(ctx, failing); !errors.Is(err, subscriptions.ErrPaymentRequired) {
		t.Fatalf("after the grace: %v, want payment required", err)
	}
	if res := f.renew(t, day(time.March, 4)); res.Due != 0 {
		t.Fatalf("between retries: %+v", res)
	}
	if res := f.renew(t, day(time.March, 5)); res.Due != 1 || res.Canceled != 1 {
		t.Fatalf("last retry: %+v", res)
	}
	if s := f.current(t, failing.ID); s.Status != billing.Canceled || s.Attempts != 4 {
		t.Fatalf("after the last retry: %+v", s)
	}
	if n := f.succeeded(t); n != 3 {
		t.Fatalf("%d charges, want 3", n)
	}
	invs, err := f.store.Invoices(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	statuses := map[billing.InvoiceStatus]int{}
	for _, inv := range invs {
		numbers = append(numbers, inv.Number)
		statuses[inv.Status]++
	}
	slices.Sort(numbers)
	if want := []string{"2026-000001", "2026-000002", "2026-000003", "2026-000004"}; !slices.Equal(numbers, want) {
		t.Fatalf("invoice numbers %v, want %v", numbers, want)
	}
	if statuses[billing.Paid] != 3 || statuses[billing.Uncollectible] != 1 {
		t.Fatalf("invoice statuses %v", statuses)
	}
	f.verify(t)

	rep, err := f.svc.Report(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ActiveByPlan["basic"] != 1 || rep.Canceled30d != 1 || rep.FailedPayments30d != 4 ||
		len(rep.MRR) != 1 || rep.MRR[0] != (billing.Money{Amount: 799, Currency: "EUR"}) || rep.Churn != 0.5 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestConcurrentPasses: four passes at once charge each due renewal
// once.
func TestConcurrentPasses(t *testing.T) {
	f := newFixture(t)
	const n = 40
	for i := range n {
		a := f.account(t, fmt.Sprintf("v%d@example.com", i), "basic")
		f.subscribe(t, a.ID, "basic", cardOK, "k")
	}
	f.clock.Set(day(time.March, 1))
	var wg sync.WaitGroup
	results := make([]subscriptions.PassResult, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if results[i], err = f.svc.Renew(context.Background(), day(time.March, 1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	renewed := 0
	for _, r := range results {
		renewed += r.Renewed
		if r.Failed != 0 {
			t.Errorf("pass: %+v", r)
		}
	}
	if renewed != n {
		t.Fatalf("renewed %d times, want %d: %+v", renewed, n, results)
	}
	if got := f.succeeded(t); got != 2*n {
		t.Fatalf("%d charges, want %d", got, 2*n)
	}
	f.verify(t)
}

// TestReconcile: a charge made with the renewal's key before the pass
// (as by a pass that died before recording it) is found and recorded,
// not made again.
func TestReconcile(t *testing.T) {
	f := newFixture(t)
	a := f.account(t, "crash@example.com", "basic")
	f.subscribe(t, a.ID, "basic", cardOK, "k")
	sub := f.current(t, a.ID)
	f.clock.Set(sub.CurrentPeriodEnd)
	if _, err := f.provider.Charge(context.Background(), billing.ChargeRequest{IdempotencyKey: billing.ChargeKey(sub),
		Customer: a.ID, PaymentMethod: sub.PaymentMethod.ID, Amount: billing.Money{Amount: 799, Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	res := f.renew(t, sub.CurrentPeriodEnd)
	if res.Renewed != 1 || res.Reconciled != 1 {
		t.Fatalf("pass: %+v", res)
	}
	if n := f.succeeded(t); n != 2 {
		t.Fatalf("%d charges, want 2", n)
	}
	f.verify(t)
}

// TestChangePlan: an upgrade mid-period charges the prorated difference
// at once; a downgrade waits for the period's end; a cancellation ends
// the subscription there.
func TestChangePlan(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "up@example.com", "basic")
	f.subscribe(t, a.ID, "basic", cardOK, "k")
	f.clock.Set(day(time.February, 14)) // 14 of 28 days left
	ans, err := f.svc.ChangePlan(ctx, a.ID, "premium", idem("up", "premium"))
	if err != nil {
		t.Fatal(err)
	}
	v := view(t, ans)
	// Credit −399.5 → −400 (half to even), debit 899.5 → 900: 500.
	if ans.Status != http.StatusOK || v.Plan != "premium" || v.Invoice == nil || v.Invoice.Amount != 500 || v.Invoice.Status != billing.Paid {
		t.Fatalf("upgrade: %d %s", ans.Status, ans.Body)
	}
	if plan, _ := f.svc.Entitlement(ctx, a); plan != "premium" {
		t.Fatalf("entitled to %q after the upgrade", plan)
	}
	if ans, err = f.svc.ChangePlan(ctx, a.ID, "basic", idem("down", "basic")); err != nil || view(t, ans).PendingPlan != "basic" || view(t, ans).Plan != "premium" {
		t.Fatalf("downgrade: %v %s", err, ans.Body)
	}
	if res := f.renew(t, day(time.February, 28)); res.Renewed != 1 {
		t.Fatalf("renewal: %+v", res)
	}
	if s := f.current(t, a.ID); s.Plan != "basic" || s.PendingPlan != "" {
		t.Fatalf("after the renewal: %+v, want basic", s)
	}
	invs, _ := f.svc.Invoices(ctx, a.ID)
	if len(invs) != 3 || invs[0].Total.Amount != 799 {
		t.Fatalf("invoices %+v: want the renewal at the basic price first", invs)
	}
	if ans, err = f.svc.Cancel(ctx, a.ID, subscriptions.Idem{}); err != nil || !view(t, ans).CancelAtPeriodEnd {
		t.Fatalf("cancel: %v %s", err, ans.Body)
	}
	if res := f.renew(t, day(time.March, 31)); res.Canceled != 1 {
		t.Fatalf("period's end: %+v", res)
	}
	if _, err := f.svc.Entitlement(ctx, a); !errors.Is(err, subscriptions.ErrPaymentRequired) {
		t.Fatalf("after the end: %v, want payment required", err)
	}
	if n := f.succeeded(t); n != 3 {
		t.Fatalf("%d charges, want 3", n)
	}
	f.verify(t)
}

// TestUpgradeDeclined: the card declines the upgrade's charge: 402,
// the plan unchanged, the invoice void.
func TestUpgradeDeclined(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.account(t, "late@example.com", "basic")
	f.svc.StartTrial(ctx, a)
	ans, err := f.svc.ChangePlan(ctx, a.ID, "premium", idem("t", "premium"))
	if err != nil || ans.Status != http.StatusOK || view(t, ans).Plan != "premium" || view(t, ans).Invoice != nil {
		t.Fatalf("trial upgrade: %v %s, want free", err, ans.Body)
	}
	b := f.account(t, "b@example.com", "basic")
	f.subscribe(t, b.ID, "basic", cardOK, "k")
	f.declineFrom(t, b.ID)
	ans, err = f.svc.ChangePlan(ctx, b.ID, "premium", idem("u", "premium"))
	if err != nil || ans.Status != http.StatusPaymentRequired || view(t, ans).Invoice.Status != billing.Void || view(t, ans).Plan != "basic" {
		t.Fatalf("declined upgrade: %v %d %s", err, ans.Status, ans.Body)
	}
	if s := f.current(t, b.ID); s.Plan != "basic" {
		t.Fatalf("plan %s after a declined upgrade", s.Plan)
	}
	if n := f.succeeded(t); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	f.verify(t)
}

// pendingUpgrade writes what an upgrade of account to premium writes
// before it asks the provider, as a request that then died would leave
// it; with charged, the provider made the charge too.
func (f *fixture) pendingUpgrade(t *testing.T, account string, charged bool) billing.PendingCharge {
	t.Helper()
	ctx := context.Background()
	sub := f.current(t, account)
	now := f.clock.Now()
	key := fmt.Sprintf("sub:%s:v%d:upgrade", sub.ID, sub.Version)
	inv := billing.Invoice{ID: "in-up", Account: account, Subscription: sub.ID, Status: billing.Open, Created: now, Finalized: now, IdempotencyKey: "in-up",
		Lines: []billing.Line{{Kind: billing.LineProrationDebit, Amount: billing.Money{Amount: 500, Currency: "EUR"}}}, Total: billing.Money{Amount: 500, Currency: "EUR"}}
	p := billing.PendingCharge{Key: key, Purpose: billing.PurposeUpgrade, Invoice: inv.ID, Amount: inv.Total, Description: "up", Plan: "premium",
		Since: now, RequestKey: "died", RequestHash: "h-died"}
	sub.Pending, sub.Version = &p, sub.Version+1
	if _, err := f.store.Commit(ctx, billing.Change{At: now, Subscriptions: []billing.Subscription{sub}, Invoice: &inv,
		Entries: []billing.Entry{{At: now, Account: account, Invoice: inv.ID, Kind: billing.EntryInvoiceFinalized, Amount: inv.Total, IdempotencyKey: inv.ID}}}); err != nil {
		t.Fatal(err)
	}
	if charged {
		if _, err := f.provider.Charge(ctx, billing.ChargeRequest{IdempotencyKey: key, Customer: account,
			PaymentMethod: sub.PaymentMethod.ID, Description: p.Description, Amount: p.Amount}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestPendingCharges: a charge written down and left by a request that
// died (charged or not) is completed, once, by whatever touches the
// subscription next: another request (its own change then applies), the
// request's retry (the answer recorded), or the renewal pass.
func TestPendingCharges(t *testing.T) {
	ctx := context.Background()
	t.Run("another request", func(t *testing.T) {
		for _, charged := range []bool{false, true} {
			f := newFixture(t)
			a := f.account(t, "a@example.com", "basic")
			f.subscribe(t, a.ID, "basic", cardOK, "k")
			f.clock.Set(day(time.February, 14))
			f.pendingUpgrade(t, a.ID, charged)
			ans, err := f.svc.ChangePlan(ctx, a.ID, "notrial", idem("down", "notrial"))
			if err != nil || view(t, ans).Plan != "premium" || view(t, ans).PendingPlan != "notrial" {
				t.Fatalf("charged %v: a downgrade after the upgrade died: %v %s, want premium then notrial", charged, err, ans.Body)
			}
			if n := f.succeeded(t); n != 2 {
				t.Fatalf("charged %v: %d charges, want 2", charged, n)
			}
			f.verify(t)
		}
	})
	t.Run("the retry", func(t *testing.T) {
		f := newFixture(t)
		a := f.account(t, "a@example.com", "basic")
		f.subscribe(t, a.ID, "basic", cardOK, "k")
		f.clock.Set(day(time.February, 14))
		f.pendingUpgrade(t, a.ID, true)
		if _, err := f.svc.ChangePlan(ctx, a.ID, "premium", subscriptions.Idem{Key: "died", Hash: "other"}); !errors.Is(err, subscriptions.ErrKeyReused) {
			t.Fatalf("the key with another request: %v", err)
		}
		ans, err := f.svc.ChangePlan(ctx, a.ID, "premium", subscriptions.Idem{Key: "died", Hash: "h-died"})
		if err != nil || ans.Status != 200 || view(t, ans).Plan != "premium" || view(t, ans).Invoice.Status != billing.Paid {
			t.Fatalf("the retry: %v %d %s", err, ans.Status, ans.Body)
		}
		again, err := f.svc.ChangePlan(ctx, a.ID, "premium", subscriptions.Idem{Key: "died", Hash: "h-died"})
		if err != nil || !again.Replayed || string(again.Body) != string(ans.Body) {
			t.Fatalf("the retry again: %v %+v", err, again)
		}
		if n := f.succeeded(t); n != 2 {
			t.Fatalf("%d charges, want 2", n)
		}
		f.verify(t)
	})
	t.Run("the pass", func(t *testing.T) {
		f := newFixture(t)
		a := f.account(t, "a@example.com", "basic")
		f.subscribe(t, a.ID, "basic", cardOK, "k")
		f.clock.Set(day(time.February, 14))
		p := f.pendingUpgrade(t, a.ID, false)
		if res := f.renew(t, p.Since.Add(time.Minute)); res.Due != 0 {
			t.Fatalf("a minute on: %+v, want the request left to finish", res)
		}
		res := f.renew(t, p.Since.Add(billing.PendingSettleAfter))
		if res.Due != 1 || res.Settled != 1 {
			t.Fatalf("the pass: %+v, want the charge settled", res)
		}
		if s := f.current(t, a.ID); s.Plan != "premium" || s.Pending != nil {
			t.Fatalf("after the pass: %+v", s)
		}
		if r, err := f.store.Request(ctx, a.ID, "died"); err != nil || r.Status != 200 {
			t.Fatalf("the request's answer: %+v %v", r, err)
		}
		if n := f.succeeded(t); n != 2 {
			t.Fatalf("%d charges, want 2", n)
		}
		f.verify(t)
	})
}
