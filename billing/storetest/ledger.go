package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// entries returns the whole ledger.
func (f *fixture) entries() []billing.Entry {
	f.t.Helper()
	got, err := f.s.Entries(f.ctx, 0, 10000)
	storecheck.OK(f.t, "Entries", err)
	return got
}

// appended commits es and checks that they come back with Seq after
// last, in the order given, increasing; it returns them as stored.
func (f *fixture) appended(what string, last uint64, es ...billing.Entry) []billing.Entry {
	f.t.Helper()
	got := f.commit(what, billing.Change{At: at(0), Entries: es}).Entries
	if len(got) != len(es) {
		f.t.Fatalf("%s: Committed %d entries, want %d", what, len(got), len(es))
	}
	for i, e := range got {
		if e.Seq <= last {
			f.t.Errorf("%s: entry %d has Seq %d, want more than %d", what, i, e.Seq, last)
		}
		last = e.Seq
		es[i].Seq = e.Seq
	}
	storecheck.Same(f.t, what+": Committed entries", got, es)
	return got
}

// lastSeq returns the Seq of the last of es, 0 for none.
func lastSeq(es []billing.Entry) uint64 {
	if len(es) == 0 {
		return 0
	}
	return es[len(es)-1].Seq
}

func testEntries(t *testing.T, f *fixture) {
	storecheck.Same(t, "Entries of an empty ledger", f.entries(), nil)

	inv := finalized(draft("inv-1", "acct-1", "sub-1", 0), at(10))
	fin := owed(inv, 10)
	fin.At = fin.At.In(time.FixedZone("UTC-7", -7*3600)) // returned in UTC
	failed := billing.Entry{At: at(20), Account: "acct-1", Invoice: "inv-1", Kind: billing.EntryPaymentFailed,
		Amount: inv.Total, ChargeID: "ch_declined", IdempotencyKey: "charge-1"}
	paid := billing.Entry{At: at(30), Account: "acct-1", Invoice: "inv-1", Kind: billing.EntryPaymentSucceeded,
		Amount: inv.Total, ChargeID: "ch_ok", IdempotencyKey: "charge-2"}
	refund := billing.Entry{At: at(40), Account: "acct-1", Invoice: "inv-1", Kind: billing.EntryRefund,
		Amount: accounts.Money{Amount: 99, Currency: "EUR"}, IdempotencyKey: "refund-1"}
	yen := credit("acct-2", "goodwill-yen", 50)
	yen.Amount = accounts.Money{Amount: 500, Currency: "JPY"}

	var all []billing.Entry
	all = append(all, f.appended("Commit of one entry", lastSeq(all), fin)...)
	all = append(all, f.appended("Commit of three entries", lastSeq(all), failed, paid, credit("acct-1", "goodwill-1", 35))...)
	all = append(all, f.appended("Commit of two entries", lastSeq(all), refund, yen)...)
	if all[0].Seq < 1 {
		t.Errorf("the first entry's Seq is %d, want 1 or more", all[0].Seq)
	}
	storecheck.Same(t, "Entries", f.entries(), all)
	for _, c := range []struct {
		name  string
		after uint64
		limit int
		want  []billing.Entry
	}{
		{"from the start, 2", 0, 2, all[:2]},
		{"after the second, 2", all[1].Seq, 2, all[2:4]},
		{"after the fourth", all[3].Seq, 100, all[4:]},
		{"after the fifth", all[4].Seq, 100, all[5:]},
		{"after the last", all[5].Seq, 100, nil},
		{"far after the last", 1 << 63, 100, nil},
		{"limit 0", 0, 0, nil},
	} {
		got, err := f.s.Entries(f.ctx, c.after, c.limit)
		storecheck.OK(t, "Entries "+c.name, err)
		storecheck.Same(t, "Entries "+c.name, got, c.want)
	}
}

func testDuplicateEntries(t *testing.T, f *fixture) {
	first := credit("acct-1", "goodwill-1", 0)
	all := f.appended("Commit of a credit", 0, first)
	paid := billing.Entry{At: at(30), Account: "acct-1", Invoice: "inv-1", Kind: billing.EntryPaymentSucceeded,
		Amount: accounts.Money{Amount: 799, Currency: "EUR"}, ChargeID: "ch_1", IdempotencyKey: "charge-1"}
	all = append(all, f.appended("Commit of a payment", lastSeq(all), paid)...)

	// The kind, invoice and idempotency key make an entry; the rest does
	// not count.
	alike := first
	alike.At, alike.Account, alike.Amount.Amount = at(60), "acct-2", 5000
	paidAgain := paid
	paidAgain.ChargeID, paidAgain.At = "ch_2", at(90)
	for _, c := range []struct {
		name string
		es   []billing.Entry
	}{
		{"the credit again", []billing.Entry{first}},
		{"a credit alike", []billing.Entry{alike}},
		{"the payment again, after a new entry", []billing.Entry{credit("acct-1", "goodwill-2", 90), paidAgain}},
		{"a new entry twice", []billing.Entry{credit("acct-1", "goodwill-3", 90), credit("acct-1", "goodwill-3", 91)}},
	} {
		f.refused("Commit of "+c.name, billing.Change{At: at(90), Entries: c.es}, billing.ErrDuplicate)
	}
	storecheck.Same(t, "Entries after refused duplicates", f.entries(), all)

	// Another kind, or another invoice, is another entry.
	otherInvoice := first
	otherInvoice.Invoice = "inv-1"
	failed := paid
	failed.Kind = billing.EntryPaymentFailed
	all = append(all, f.appended("Commit of entries with another kind or invoice", lastSeq(all), otherInvoice, failed)...)
	storecheck.Same(t, "Entries", f.entries(), all)
}

func testRequests(t *testing.T, f *fixture) {
	_, err := f.s.Request(f.ctx, "acct-1", "key-1")
	storecheck.WantErr(t, "Request of an empty store", err, billing.ErrNotFound)

	r := request("acct-1", "key-1", 0)
	got := f.commit("Commit of a request", billing.Change{At: at(0), Request: &r})
	storecheck.Same(t, "Committed of a request alone", got, billing.Committed{})
	f.request("the request", r)
	// The body comes back byte for byte, as first answered.
	if back, _ := f.s.Request(f.ctx, "acct-1", "key-1"); string(back.Body) != string(r.Body) {
		t.Errorf("Request body: got %s, want %s", back.Body, r.Body)
	}
	_, err = f.s.Request(f.ctx, "acct-2", "key-1")
	storecheck.WantErr(t, "Request of another account's key", err, billing.ErrNotFound)
	_, err = f.s.Request(f.ctx, "acct-1", "key-2")
	storecheck.WantErr(t, "Request of an unknown key", err, billing.ErrNotFound)

	again := request("acct-1", "key-1", 10)
	again.Hash, again.Status = "sha256:other", 409
	f.refused("Commit of a request with a recorded key", billing.Change{At: at(10), Request: &again}, billing.ErrExists)
	f.request("the request after a refused second", r)

	other := request("acct-2", "key-1", 20)
	other.Body, other.Status = nil, 204
	f.commit("Commit of another account's request with the same key", billing.Change{At: at(20), Request: &other})
	f.request("the other account's", other)
	long := request("acct-1", strings.Repeat("k", billing.MaxIdempotencyKeyLen), 30)
	f.commit("Commit of a request with the longest key", billing.Change{At: at(30), Request: &long})
	f.request("of the longest key", long)
}

// request checks the recorded request of want's account and key.
func (f *fixture) request(what string, want billing.Request) {
	f.t.Helper()
	got, err := f.s.Request(f.ctx, want.Account, want.Key)
	storecheck.OK(f.t, "Request, "+what, err)
	storecheck.Same(f.t, "Request, "+what, got, want)
}

func testPruneRequests(t *testing.T, f *fixture) {
	n, err := f.s.PruneRequests(f.ctx, at(100))
	if err != nil || n != 0 {
		t.Errorf("PruneRequests of an empty store: got %d, %v; want 0", n, err)
	}
	rs := []billing.Request{request("acct-1", "key-0", 0), request("acct-1", "key-10", 10), request("acct-2", "key-20", 20)}
	for _, r := range rs {
		f.commit("Commit of request "+r.Key, billing.Change{At: r.Created, Request: &r})
	}
	for _, c := range []struct {
		before time.Time
		want   int
	}{
		{at(10), 1}, // strictly before
		{at(10), 0},
		{at(21), 2},
	} {
		n, err := f.s.PruneRequests(f.ctx, c.before)
		storecheck.OK(t, "PruneRequests", err)
		if n != c.want {
			t.Errorf("PruneRequests before %v: got %d, want %d", c.before, n, c.want)
		}
	}
	for _, r := range rs {
		_, err := f.s.Request(f.ctx, r.Account, r.Key)
		storecheck.WantErr(t, "Request "+r.Key+" after pruning", err, billing.ErrNotFound)
	}
	// A forgotten key may be recorded again.
	r := request("acct-1", "key-0", 300)
	f.commit("Commit of a pruned key", billing.Change{At: at(300), Request: &r})
	f.request("of a pruned key recorded again", r)
}
