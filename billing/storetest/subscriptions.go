package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// subscriptions returns every stored subscription, by id.
func (f *fixture) subscriptions() []billing.Subscription {
	f.t.Helper()
	got, err := f.s.Subscriptions(f.ctx, "", 1000)
	storecheck.OK(f.t, "Subscriptions", err)
	return got
}

func testCreateSubscription(t *testing.T, f *fixture) {
	_, err := f.s.Subscription(f.ctx, "sub-1")
	storecheck.WantErr(t, "Subscription of an empty store", err, billing.ErrNotFound)
	storecheck.Same(t, "Subscriptions of an empty store", f.subscriptions(), nil)

	// Every field set, on the statuses that set them.
	s1 := subscription("sub-1", "acct-1", billing.PastDue)
	s1.CancelAtPeriodEnd, s1.PendingPlan = true, "cheap"
	s2 := subscription("sub-2", "acct-2", billing.Trialing)
	s3 := subscription("sub-3", "acct-3", billing.Canceled)
	s3.PaymentMethod = billing.PaymentMethod{}
	got := f.commit("Commit creating sub-1", change(s1))
	storecheck.Same(t, "Committed of a change without invoice or entries", got, billing.Committed{})
	f.commit("Commit creating sub-2 and sub-3", change(s3, s2))
	for _, want := range []billing.Subscription{s1, s2, s3} {
		got, err := f.s.Subscription(f.ctx, want.ID)
		storecheck.OK(t, "Subscription "+want.ID, err)
		storecheck.Same(t, "Subscription "+want.ID, got, want)
	}
	storecheck.Same(t, "Subscriptions", f.subscriptions(), []billing.Subscription{s1, s2, s3})
}

func testCreateSubscriptionTaken(t *testing.T, f *fixture) {
	s1 := subscription("sub-1", "acct-1", billing.Active)
	f.commit("Commit creating sub-1", change(s1))
	again := subscription("sub-1", "acct-1", billing.Trialing)
	f.refused("Commit creating sub-1 again", change(again), billing.ErrExists)
	other := canceled(subscription("sub-1", "acct-2", billing.Incomplete), 0)
	other.Version = 1
	f.refused("Commit creating sub-1 again, of another account", change(other), billing.ErrExists)
	storecheck.Same(t, "Subscriptions after refused creates", f.subscriptions(), []billing.Subscription{s1})
}

func testReplaceSubscription(t *testing.T, f *fixture) {
	v1 := subscription("sub-1", "acct-1", billing.Active)
	f.commit("Commit creating sub-1", change(v1))
	v2 := next(v1)
	v2.Status, v2.PastDueSince, v2.Attempts = billing.PastDue, v1.CurrentPeriodEnd, 1
	f.commit("Commit of version 2", change(v2))
	got, err := f.s.Subscription(f.ctx, "sub-1")
	storecheck.OK(t, "Subscription", err)
	storecheck.Same(t, "Subscription after version 2", got, v2)

	for _, c := range []struct {
		name string
		sub  billing.Subscription
		want error
	}{
		{"version 2 again", v2, billing.ErrConflict},
		{"version 4, skipping 3", next(next(v2)), billing.ErrConflict},
		{"version 3 of another account", func() billing.Subscription { s := next(v2); s.Account = "acct-2"; return s }(), billing.ErrConflict},
		{"version 2 of an unknown id", func() billing.Subscription { s := v2; s.ID = "sub-9"; return s }(), billing.ErrNotFound},
	} {
		f.refused("Commit of "+c.name, change(c.sub), c.want)
	}
	storecheck.Same(t, "Subscriptions after refused replacements", f.subscriptions(), []billing.Subscription{v2})

	v3 := next(v2)
	v3.Status, v3.PastDueSince, v3.Attempts = billing.Active, time.Time{}, 0
	v3.CurrentPeriodStart, v3.CurrentPeriodEnd = v2.CurrentPeriodEnd, v2.CurrentPeriodEnd.AddDate(0, 1, 0)
	f.commit("Commit of version 3", change(v3))
	got, err = f.s.Subscription(f.ctx, "sub-1")
	storecheck.OK(t, "Subscription", err)
	storecheck.Same(t, "Subscription after version 3", got, v3)
}

func testOneLiveSubscription(t *testing.T, f *fixture) {
	old := subscription("sub-1", "acct-1", billing.Active)
	f.commit("Commit creating sub-1", change(old))
	other := subscription("sub-o", "acct-2", billing.Active)
	f.commit("Commit of another account's live subscription", change(other))

	for _, c := range []struct {
		name string
		c    billing.Change
	}{
		{"a second active one", change(subscription("sub-2", "acct-1", billing.Active))},
		{"a second trialing one", change(subscription("sub-2", "acct-1", billing.Trialing))},
		{"a second one, the first replaced but live", change(next(old), subscription("sub-2", "acct-1", billing.Incomplete))},
		{"two new live ones", change(subscription("sub-2", "acct-3", billing.Active), subscription("sub-3", "acct-3", billing.Incomplete))},
	} {
		f.refused("Commit of "+c.name, c.c, billing.ErrConflict)
	}
	storecheck.Same(t, "Subscriptions after refused changes", f.subscriptions(), []billing.Subscription{old, other})

	// A canceled one may be added beside a live one.
	gone := subscription("sub-0", "acct-1", billing.Canceled)
	f.commit("Commit of a canceled subscription beside a live one", change(gone))

	// A new one with the old one canceled in the same change, whichever
	// comes first in it.
	oldC, newer := canceled(old, 60), subscription("sub-2", "acct-1", billing.Active)
	f.commit("Commit of a new subscription after the old one canceled", change(oldC, newer))
	otherC, otherNew := canceled(other, 60), subscription("sub-p", "acct-2", billing.Trialing)
	f.commit("Commit of a new subscription before the old one canceled", change(otherNew, otherC))

	back := next(oldC)
	back.Status, back.CanceledAt = billing.Active, time.Time{}
	f.refused("Commit bringing a canceled one back beside a live one", change(back), billing.ErrConflict)
	storecheck.Same(t, "Subscriptions", f.subscriptions(), []billing.Subscription{gone, oldC, newer, otherC, otherNew})
}

func testCurrentSubscription(t *testing.T, f *fixture) {
	_, err := f.s.CurrentSubscription(f.ctx, "acct-1")
	storecheck.WantErr(t, "CurrentSubscription of an account without any", err, billing.ErrNotFound)

	// Written newest first: the order of Created counts, not of writing.
	newest := subscription("sub-b", "acct-1", billing.Canceled)
	newest.Created = at(200)
	oldest := subscription("sub-a", "acct-1", billing.Canceled)
	f.commit("Commit of the newest", change(newest))
	f.commit("Commit of the oldest", change(oldest))
	f.current("all canceled", "acct-1", newest)

	// Created at the same time as the newest: the greatest id wins.
	twin := subscription("sub-c", "acct-1", billing.Canceled)
	twin.Created = at(200)
	f.commit("Commit of the twin", change(twin))
	f.current("all canceled, two newest", "acct-1", twin)

	// A live one, older than the canceled, is the current one.
	live := subscription("sub-0", "acct-1", billing.Active)
	f.commit("Commit of the live one", change(live))
	f.current("one live", "acct-1", live)
	other := subscription("sub-z", "acct-2", billing.Trialing)
	other.Created = at(900)
	f.commit("Commit of another account's", change(other))
	f.current("one live, another account's newer", "acct-1", live)

	liveC := canceled(live, 60)
	f.commit("Commit canceling the live one", change(liveC))
	f.current("all canceled again", "acct-1", twin)
	f.current("of acct-2", "acct-2", other)
}

// current checks the account's current subscription.
func (f *fixture) current(what, account string, want billing.Subscription) {
	f.t.Helper()
	got, err := f.s.CurrentSubscription(f.ctx, account)
	storecheck.OK(f.t, "CurrentSubscription, "+what, err)
	storecheck.Same(f.t, "CurrentSubscription, "+what, got, want)
}

func testSubscriptionsPaging(t *testing.T, f *fixture) {
	// Bytewise order: upper case before lower case, "10" before "9".
	ids := []string{"sub-9", "Sub-1", "sub-10", "sub-a", "sub-B"}
	var all []billing.Subscription
	for i, id := range ids {
		s := subscription(id, fmt.Sprintf("acct-%d", i), billing.Active)
		f.commit("Commit creating "+id, change(s))
		all = append(all, s)
	}
	checkPaging(t, "Subscriptions", all, "sub-2", func(s billing.Subscription) string { return s.ID }, func(after string, limit int) ([]billing.Subscription, error) {
		return f.s.Subscriptions(f.ctx, after, limit)
	})
}

// checkPaging checks list, which pages records by id, against all of
// them (five, in any order): pages of two, the end, everything, a
// cursor between (an id after the second and before the third) and a
// limit of 0.
func checkPaging[T any](t *testing.T, what string, all []T, between string, id func(T) string, list func(after string, limit int) ([]T, error)) {
	t.Helper()
	all = slices.Clone(all)
	slices.SortFunc(all, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	for _, c := range []struct {
		after string
		limit int
		want  []T
	}{
		{"", 2, all[:2]},
		{id(all[1]), 2, all[2:4]},
		{id(all[3]), 2, all[4:]},
		{id(all[4]), 2, nil},
		{"", 100, all},
		{between, 100, all[2:]},
		{"", 0, nil},
	} {
		got, err := list(c.after, c.limit)
		storecheck.OK(t, what, err)
		storecheck.Same(t, fmt.Sprintf("%s after %q, limit %d", what, c.after, c.limit), got, c.want)
	}
}

func testDueSubscriptions(t *testing.T, f *fixture) {
	end := T0.AddDate(0, 1, 0) // every period's end
	exhausted := subscription("sub-exhausted", "acct-5", billing.PastDue)
	exhausted.Attempts = len(billing.RetryDays()) + 1
	ending := subscription("sub-ending", "acct-6", billing.PastDue)
	ending.CancelAtPeriodEnd = true
	subs := []billing.Subscription{
		subscription("sub-trialing", "acct-1", billing.Trialing), // due at end
		subscription("sub-active", "acct-2", billing.Active),     // due at end
		subscription("sub-past-due", "acct-3", billing.PastDue),  // due a day after end
		subscription("sub-canceled", "acct-4", billing.Canceled), // never
		exhausted, // never
		ending,    // due at end
		subscription("sub-incomplete", "acct-7", billing.Incomplete), // never
	}
	f.commit("Commit creating the subscriptions", change(subs...))
	// check compares with billing.DueAt, having checked that n are due.
	check := func(what string, asOf time.Time, n int) {
		t.Helper()
		var want []billing.Subscription
		for _, s := range f.subscriptions() {
			if d := billing.DueAt(s); !d.IsZero() && !d.After(asOf) {
				want = append(want, s)
			}
		}
		if len(want) != n {
			t.Fatalf("the suite expects %d due %s, billing.DueAt says %d", n, what, len(want))
		}
		got, err := f.s.DueSubscriptions(f.ctx, asOf, "", 100)
		storecheck.OK(t, "DueSubscriptions", err)
		storecheck.Same(t, "DueSubscriptions "+what, got, want)
		// One at a time, by id.
		var paged []billing.Subscription
		for after := ""; ; {
			page, err := f.s.DueSubscriptions(f.ctx, asOf, after, 1)
			storecheck.OK(t, "DueSubscriptions", err)
			if len(page) == 0 || len(paged) > len(subs) {
				break
			}
			paged, after = append(paged, page...), page[len(page)-1].ID
		}
		storecheck.Same(t, "DueSubscriptions "+what+", a page of 1 at a time", paged, want)
	}
	check("a second before the periods end", end.Add(-time.Second), 0)
	check("as the periods end", end, 3)
	check("as the periods end, asked in another zone", end.In(time.FixedZone("UTC+5", 5*3600)), 3)
	check("an hour later", end.Add(time.Hour), 3)
	check("a day later", end.AddDate(0, 0, 1), 4)
	check("a year later", end.AddDate(1, 0, 0), 4)
	if got, err := f.s.DueSubscriptions(f.ctx, end, "", 0); err != nil || len(got) != 0 {
		t.Errorf("DueSubscriptions with limit 0: got %d, %v; want none", len(got), err)
	}

	// A renewal moves the due date: the store follows the record.
	renewed := next(subs[1])
	renewed.CurrentPeriodStart, renewed.CurrentPeriodEnd = end, end.AddDate(0, 1, 0)
	f.commit("Commit renewing sub-active", change(renewed))
	check("after a renewal, as the old period ends", end, 2)
	check("after a renewal, as the new period ends", end.AddDate(0, 1, 0), 4)
}
