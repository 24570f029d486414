package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

func testInvalidChange(t *testing.T, f *fixture) {
	sub := subscription("sub-1", "acct-1", billing.Active)
	inv := draft("inv-1", "acct-1", "sub-1", 0)
	e := credit("acct-1", "goodwill-1", 0)
	r := request("acct-1", "key-1", 0)
	with := func(edit func(c *billing.Change)) billing.Change {
		s, i, q := sub, inv, r
		c := billing.Change{At: at(0), Subscriptions: []billing.Subscription{s}, Invoice: &i, Entries: []billing.Entry{e}, Request: &q}
		edit(&c)
		return c
	}
	for _, c := range []struct {
		name string
		c    billing.Change
	}{
		{"without a time", with(func(c *billing.Change) { c.At = time.Time{} })},
		{"empty", billing.Change{At: at(0)}},
		{"a subscription without an account", with(func(c *billing.Change) { c.Subscriptions[0].Account = "" })},
		{"a subscription without an id", with(func(c *billing.Change) { c.Subscriptions[0].ID = "" })},
		{"a subscription of version 0", with(func(c *billing.Change) { c.Subscriptions[0].Version = 0 })},
		{"a subscription of an unknown status", with(func(c *billing.Change) { c.Subscriptions[0].Status = "paused" })},
		{"a subscription twice", with(func(c *billing.Change) { c.Subscriptions = append(c.Subscriptions, sub) })},
		{"an invoice without lines", with(func(c *billing.Change) { c.Invoice.Lines = nil })},
		{"an open invoice never finalized", with(func(c *billing.Change) { c.Invoice.Status = billing.Open })},
		{"an entry of a negative amount", with(func(c *billing.Change) { c.Entries[0].Amount.Amount = -1 })},
		{"an entry of an unknown kind", with(func(c *billing.Change) { c.Entries[0].Kind = "gift" })},
		{"a payment without an invoice", with(func(c *billing.Change) { c.Entries[0].Kind = billing.EntryPaymentSucceeded })},
		{"a request without a key", with(func(c *billing.Change) { c.Request.Key = "" })},
		{"a request with too long a key", with(func(c *billing.Change) { c.Request.Key = strings.Repeat("k", billing.MaxIdempotencyKeyLen+1) })},
	} {
		f.refused("Commit of a change "+c.name, c.c, billing.ErrInvalid)
	}
	f.nothingWritten("after invalid changes")
	f.commit("Commit of the change made valid", with(func(*billing.Change) {}))
}

// nothingWritten checks that the store is empty.
func (f *fixture) nothingWritten(what string) {
	f.t.Helper()
	storecheck.Same(f.t, "Subscriptions "+what, f.subscriptions(), nil)
	invs, err := f.s.Invoices(f.ctx, "", 100)
	storecheck.OK(f.t, "Invoices", err)
	storecheck.Same(f.t, "Invoices "+what, invs, nil)
	storecheck.Same(f.t, "Entries "+what, f.entries(), nil)
	_, err = f.s.Request(f.ctx, "acct-1", "key-1")
	storecheck.WantErr(f.t, "Request "+what, err, billing.ErrNotFound)
}

func testAllOrNothing(t *testing.T, f *fixture) {
	s1, s2 := subscription("sub-1", "acct-1", billing.Active), subscription("sub-2", "acct-2", billing.Active)
	inv := draft("inv-1", "acct-1", "sub-1", 0)
	f.commit("Commit of sub-1 with its draft", billing.Change{At: at(0), Subscriptions: []billing.Subscription{s1}, Invoice: &inv})
	f.commit("Commit of sub-2", change(s2))
	r0 := request("acct-1", "req-0", 0)
	e0 := f.commit("Commit of a credit and its request",
		billing.Change{At: at(0), Entries: []billing.Entry{credit("acct-1", "goodwill-1", 0)}, Request: &r0}).Entries

	// A renewal's change: the subscription, its invoice finalized, the
	// ledger entry and the request's answer.
	good := func() billing.Change {
		s := next(s1)
		s.CancelAtPeriodEnd = true
		fin := finalized(inv, at(10))
		r := request("acct-1", "req-1", 10)
		return billing.Change{At: at(10), Subscriptions: []billing.Subscription{s}, Invoice: &fin,
			Entries: []billing.Entry{owed(fin, 10)}, Request: &r}
	}
	for _, c := range []struct {
		name string
		edit func(c *billing.Change)
		want error
	}{
		{"a stale subscription version", func(c *billing.Change) { c.Subscriptions[0] = next(next(s1)) }, billing.ErrConflict},
		{"a subscription of an unknown id", func(c *billing.Change) { c.Subscriptions[0].ID = "sub-9" }, billing.ErrNotFound},
		{"a taken subscription id", func(c *billing.Change) {
			c.Subscriptions = append(c.Subscriptions, subscription("sub-2", "acct-1", billing.Canceled))
		}, billing.ErrExists},
		{"a second live subscription", func(c *billing.Change) {
			c.Subscriptions = append(c.Subscriptions, subscription("sub-3", "acct-1", billing.Trialing))
		}, billing.ErrConflict},
		{"a recorded entry", func(c *billing.Change) { c.Entries = append(c.Entries, e0...) }, billing.ErrDuplicate},
		{"an entry twice", func(c *billing.Change) { c.Entries = append(c.Entries, owed(*c.Invoice, 11)) }, billing.ErrDuplicate},
		{"a recorded request key", func(c *billing.Change) { c.Request.Key = "req-0" }, billing.ErrExists},
		{"an invoice of another account", func(c *billing.Change) { c.Invoice.Account = "acct-2" }, billing.ErrConflict},
		{"an invoice number the store did not give", func(c *billing.Change) { c.Invoice.Number = billing.Number(2026, 1) }, billing.ErrInvalid},
	} {
		ch := good()
		c.edit(&ch)
		f.refused("Commit of a change with "+c.name, ch, c.want)
		// Nothing of it is written.
		what := "after a change with " + c.name
		storecheck.Same(t, "Subscriptions "+what, f.subscriptions(), []billing.Subscription{s1, s2})
		storecheck.Same(t, "Invoice "+what, f.invoice("inv-1"), inv)
		storecheck.Same(t, "Entries "+what, f.entries(), e0)
		_, err := f.s.Request(f.ctx, "acct-1", "req-1")
		storecheck.WantErr(t, "Request "+what, err, billing.ErrNotFound)
		f.request(what, r0)
	}

	// The refused changes took no invoice number.
	ch := good()
	got := f.commit("Commit of the change", ch)
	want := *ch.Invoice
	want.Number = billing.Number(2026, 1)
	storecheck.Same(t, "Committed invoice", got.Invoice, &want)
	storecheck.Same(t, "Subscription", f.subscriptions()[0], ch.Subscriptions[0])
	if len(got.Entries) != 1 || got.Entries[0].Seq <= e0[0].Seq {
		t.Errorf("Committed entries: got %+v, want one after Seq %d", got.Entries, e0[0].Seq)
	}
	f.request("of the change", *ch.Request)
}
