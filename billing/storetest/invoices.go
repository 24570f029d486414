package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// invoice returns the stored invoice of id.
func (f *fixture) invoice(id string) billing.Invoice {
	f.t.Helper()
	got, err := f.s.Invoice(f.ctx, id)
	storecheck.OK(f.t, "Invoice "+id, err)
	return got
}

// invoiceAlone commits a change of inv alone and returns it as stored.
func (f *fixture) invoiceAlone(what string, inv billing.Invoice) billing.Invoice {
	f.t.Helper()
	got := f.commit(what, billing.Change{At: at(0), Invoice: &inv})
	if got.Invoice == nil {
		f.t.Fatalf("%s: Committed has no invoice", what)
	}
	return *got.Invoice
}

// numbered checks that committing inv numbers it want, and that the store
// returns it so.
func (f *fixture) numbered(what string, inv billing.Invoice, want string) billing.Invoice {
	f.t.Helper()
	got := f.invoiceAlone(what, inv)
	inv.Number = want
	storecheck.Same(f.t, what+": Committed", got, inv)
	storecheck.Same(f.t, what+": Invoice", f.invoice(inv.ID), inv)
	return inv
}

func testCreateInvoice(t *testing.T, f *fixture) {
	s := subscription("sub-1", "acct-1", billing.Active)
	inv := draft("inv-1", "acct-1", "sub-1", 10)
	got := f.commit("Commit of a subscription with its draft invoice",
		billing.Change{At: at(10), Subscriptions: []billing.Subscription{s}, Invoice: &inv})
	storecheck.Same(t, "Committed", got, billing.Committed{Invoice: &inv})
	storecheck.Same(t, "Invoice", f.invoice("inv-1"), inv)
	_, err := f.s.Invoice(f.ctx, "inv-9")
	storecheck.WantErr(t, "Invoice of an unknown id", err, billing.ErrNotFound)

	// Replaced whole, by another draft with other lines.
	lines := append(slices.Clone(inv.Lines), billing.Line{Kind: billing.LineProrationDebit, Description: "Remaining time",
		Amount: billing.Money{Amount: 250, Currency: "EUR"}, PeriodStart: at(20), PeriodEnd: at(3600)})
	again, err := billing.NewInvoice("inv-1", "acct-1", "sub-1", "other-key", lines, at(20))
	storecheck.OK(t, "NewInvoice", err)
	f.numbered("Commit replacing the draft", again, "")
	invs, err := f.s.Invoices(f.ctx, "", 100)
	storecheck.OK(t, "Invoices", err)
	storecheck.Same(t, "Invoices", invs, []billing.Invoice{again})
}

func testInvoiceNumbers(t *testing.T, f *fixture) {
	a, b, c := draft("inv-a", "acct-1", "sub-1", 0), draft("inv-b", "acct-1", "sub-1", 0), draft("inv-c", "acct-2", "sub-2", 0)
	for _, inv := range []billing.Invoice{a, b, c} {
		f.numbered("Commit of draft "+inv.ID, inv, "")
	}
	fa := f.numbered("Commit finalizing inv-a", finalized(a, at(100)), billing.Number(2026, 1))
	f.numbered("Commit finalizing inv-b", finalized(b, at(110)), billing.Number(2026, 2))

	// A replaced invoice keeps its number, given or not.
	paid, err := billing.Pay(fa, at(200))
	storecheck.OK(t, "Pay", err)
	paid.Number = ""
	f.numbered("Commit paying inv-a, without its number", paid, billing.Number(2026, 1))
	paid.Number = billing.Number(2026, 1)
	paid.PaidAt = at(201)
	f.numbered("Commit paying inv-a again, with its number", paid, billing.Number(2026, 1))
	c.Lines = slices.Clone(c.Lines) // the store may keep the committed slice
	c.Lines[0].Description = "Basic, renamed"
	f.numbered("Commit replacing draft inv-c", c, "")

	// Those took no number.
	f.numbered("Commit finalizing inv-c", finalized(c, at(120)), billing.Number(2026, 3))
	d := finalized(draft("inv-d", "acct-3", "sub-3", 130), at(130))
	f.numbered("Commit of an invoice open from the start", d, billing.Number(2026, 4))
	void := finalized(draft("inv-e", "acct-3", "sub-3", 140), at(140))
	void.Status = billing.Void
	f.numbered("Commit of an invoice void from the start", void, billing.Number(2026, 5))
}

func testInvoiceNumbersPerYear(t *testing.T, f *fixture) {
	newYear := time.Date(2027, time.January, 1, 0, 0, 0, 0, time.UTC)
	// Still 2026 in UTC, the year numbers go by; 2027 where it is told.
	eve := time.Date(2026, time.December, 31, 23, 30, 0, 0, time.UTC).In(time.FixedZone("UTC+2", 2*3600))
	for i, c := range []struct {
		fin  time.Time
		want string
	}{
		{newYear, billing.Number(2027, 1)},
		{eve, billing.Number(2026, 1)},
		{at(0), billing.Number(2026, 2)},
		{newYear.Add(time.Hour), billing.Number(2027, 2)},
		{time.Date(2025, time.June, 1, 0, 0, 0, 0, time.UTC), billing.Number(2025, 1)},
		{eve.Add(-time.Hour), billing.Number(2026, 3)},
	} {
		id := fmt.Sprintf("inv-%d", i)
		f.numbered("Commit finalizing "+id+" at "+c.fin.String(), finalized(draft(id, "acct-1", "sub-1", 0), c.fin), c.want)
	}
}

func testInvoiceNumberNotTheStores(t *testing.T, f *fixture) {
	a := draft("inv-a", "acct-1", "sub-1", 0)
	f.numbered("Commit of draft inv-a", a, "")
	fa := f.numbered("Commit finalizing inv-a", finalized(a, at(10)), billing.Number(2026, 1))
	withNumber := func(inv billing.Invoice, n string) *billing.Invoice { inv.Number = n; return &inv }
	for _, c := range []struct {
		name string
		inv  *billing.Invoice
		want error
	}{
		{"a new draft with a number", withNumber(draft("inv-b", "acct-1", "sub-1", 0), billing.Number(2026, 2)), billing.ErrInvalid},
		{"a new open invoice with a number", withNumber(finalized(draft("inv-b", "acct-1", "sub-1", 0), at(20)), billing.Number(2026, 2)), billing.ErrInvalid},
		{"a draft given another's number", withNumber(draft("inv-b", "acct-1", "sub-1", 0), fa.Number), billing.ErrInvalid},
		{"inv-a of another account", func() *billing.Invoice { inv := fa; inv.Account = "acct-2"; return &inv }(), billing.ErrConflict},
		{"an invoice finalized in year 10000", withNumber(finalized(draft("inv-b", "acct-1", "sub-1", 0), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)), ""), billing.ErrInvalid},
	} {
		f.refused("Commit of "+c.name, billing.Change{At: at(30), Invoice: c.inv}, c.want)
	}
	invs, err := f.s.Invoices(f.ctx, "", 100)
	storecheck.OK(t, "Invoices", err)
	storecheck.Same(t, "Invoices after refused changes", invs, []billing.Invoice{fa})
	f.numbered("Commit finalizing inv-b", finalized(draft("inv-b", "acct-1", "sub-1", 0), at(40)), billing.Number(2026, 2))

	// A replaced invoice keeps its number, whatever the change says.
	paid, err := billing.Pay(fa, at(50))
	storecheck.OK(t, "Pay", err)
	f.numbered("Commit paying inv-a with another number", *withNumber(paid, billing.Number(2026, 7)), fa.Number)
	f.numbered("Commit finalizing inv-c", finalized(draft("inv-c", "acct-1", "sub-1", 0), at(60)), billing.Number(2026, 3))
}

func testAccountInvoices(t *testing.T, f *fixture) {
	got, err := f.s.AccountInvoices(f.ctx, "acct-1")
	storecheck.OK(t, "AccountInvoices of an account without any", err)
	storecheck.Same(t, "AccountInvoices of an account without any", got, nil)

	old := draft("inv-1", "acct-1", "sub-1", 10)
	newB, newA := draft("inv-3", "acct-1", "sub-1", 30), draft("inv-2", "acct-1", "sub-1", 30)
	other := draft("inv-0", "acct-2", "sub-2", 40)
	for _, inv := range []billing.Invoice{old, other, newB, newA} {
		f.invoiceAlone("Commit of "+inv.ID, inv)
	}
	newB = f.invoiceAlone("Commit finalizing inv-3", finalized(newB, at(50)))
	got, err = f.s.AccountInvoices(f.ctx, "acct-1")
	storecheck.OK(t, "AccountInvoices", err)
	storecheck.Same(t, "AccountInvoices, newest first, then by id", got, []billing.Invoice{newA, newB, old})
	got, err = f.s.AccountInvoices(f.ctx, "acct-2")
	storecheck.OK(t, "AccountInvoices", err)
	storecheck.Same(t, "AccountInvoices of acct-2", got, []billing.Invoice{other})
}

func testInvoicesPaging(t *testing.T, f *fixture) {
	var all []billing.Invoice
	for i, id := range []string{"inv-9", "Inv-1", "inv-10", "inv-a", "inv-B"} {
		inv := draft(id, fmt.Sprintf("acct-%d", i), "sub-1", i)
		f.invoiceAlone("Commit of "+id, inv)
		all = append(all, inv)
	}
	checkPaging(t, "Invoices", all, "inv-2", func(i billing.Invoice) string { return i.ID }, func(after string, limit int) ([]billing.Invoice, error) {
		return f.s.Invoices(f.ctx, after, limit)
	})
}
