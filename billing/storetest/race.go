package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/storecheck"
)

// racers is how many goroutines race in each concurrency test.
const racers = 20

// race commits changes[i] from goroutine i, all let go at once; every
// commit must succeed or fail with lose. It returns which succeeded.
func (f *fixture) race(what string, lose error, changes []billing.Change) []bool {
	f.t.Helper()
	won := make([]bool, len(changes))
	storecheck.Race(f.t, what, len(changes), lose, func(i int) error {
		_, err := f.s.Commit(f.ctx, changes[i])
		won[i] = err == nil
		return err
	})
	return won
}

// winners returns the indexes of won that are true.
func winners(won []bool) []int {
	var out []int
	for i, w := range won {
		if w {
			out = append(out, i)
		}
	}
	return out
}

func testConcurrentReplace(t *testing.T, f *fixture) {
	s1 := subscription("sub-1", "acct-1", billing.Active)
	f.commit("Commit creating sub-1", change(s1))
	changes := make([]billing.Change, racers)
	for i := range changes {
		s := next(s1)
		s.PendingPlan = fmt.Sprintf("plan-%02d", i)
		r := request("acct-1", fmt.Sprintf("req-%02d", i), 0)
		changes[i] = billing.Change{At: at(0), Subscriptions: []billing.Subscription{s},
			Entries: []billing.Entry{credit("acct-1", fmt.Sprintf("goodwill-%02d", i), 0)}, Request: &r}
	}
	won := winners(f.race("Commit of version 2 racing", billing.ErrConflict, changes))
	if len(won) != 1 {
		t.Fatalf("Commit of version 2 from %d goroutines: %d succeeded, want 1", racers, len(won))
	}
	w := changes[won[0]]
	storecheck.Same(t, "Subscriptions after the race", f.subscriptions(), w.Subscriptions)
	es := f.entries()
	if len(es) != 1 || es[0].IdempotencyKey != w.Entries[0].IdempotencyKey {
		t.Errorf("Entries after the race: got %+v, want only the winner's %s", es, w.Entries[0].IdempotencyKey)
	}
	for i, c := range changes {
		_, err := f.s.Request(f.ctx, c.Request.Account, c.Request.Key)
		if (err == nil) != (i == won[0]) {
			t.Errorf("Request of racer %d (the winner was %d): got %v", i, won[0], err)
		}
	}
}

func testConcurrentCreate(t *testing.T, f *fixture) {
	changes := make([]billing.Change, racers)
	for i := range changes {
		changes[i] = change(subscription(fmt.Sprintf("sub-%02d", i), "acct-1", billing.Active))
	}
	won := winners(f.race("Commit of a live subscription of one account racing", billing.ErrConflict, changes))
	if len(won) != 1 {
		t.Fatalf("Commit of a live subscription of one account from %d goroutines: %d succeeded, want 1", racers, len(won))
	}
	storecheck.Same(t, "Subscriptions after the race", f.subscriptions(), changes[won[0]].Subscriptions)

	for i := range changes {
		changes[i] = change(subscription("sub-x", fmt.Sprintf("acct-x%02d", i), billing.Trialing))
	}
	won = winners(f.race("Commit of one subscription id racing", billing.ErrExists, changes))
	if len(won) != 1 {
		t.Fatalf("Commit of one subscription id from %d goroutines: %d succeeded, want 1", racers, len(won))
	}
	got, err := f.s.Subscription(f.ctx, "sub-x")
	storecheck.OK(t, "Subscription", err)
	storecheck.Same(t, "Subscription after the race", got, changes[won[0]].Subscriptions[0])
}

func testConcurrentRequest(t *testing.T, f *fixture) {
	changes := make([]billing.Change, racers)
	for i := range changes {
		r := request("acct-1", "key-1", i)
		r.Hash = fmt.Sprintf("sha256:%02d", i)
		changes[i] = billing.Change{At: at(i), Request: &r}
	}
	won := winners(f.race("Commit of one request key racing", billing.ErrExists, changes))
	if len(won) != 1 {
		t.Fatalf("Commit of one request key from %d goroutines: %d succeeded, want 1", racers, len(won))
	}
	f.request("after the race", *changes[won[0]].Request)
}

// finalizing stores n subscriptions, each of its own account, with a
// draft invoice each, and returns the changes that renew them: the
// subscription's next version, its invoice finalized and the ledger
// entry of it.
func (f *fixture) finalizing(n int) []billing.Change {
	f.t.Helper()
	changes := make([]billing.Change, n)
	for i := range changes {
		s := subscription(fmt.Sprintf("sub-%02d", i), fmt.Sprintf("acct-%02d", i), billing.Active)
		inv := draft(fmt.Sprintf("inv-%02d", i), s.Account, s.ID, 0)
		f.commit("Commit of "+s.ID+" with its draft",
			billing.Change{At: at(0), Subscriptions: []billing.Subscription{s}, Invoice: &inv})
		fin := finalized(inv, at(100+i))
		changes[i] = billing.Change{At: at(100 + i), Subscriptions: []billing.Subscription{next(s)},
			Invoice: &fin, Entries: []billing.Entry{owed(fin, 100+i)}}
	}
	return changes
}

// checkNumbers checks that the invoices of the changes that won have the
// numbers 1 to len(won) of 2026, each once, and that the ledger has their
// entries, in increasing Seq.
func (f *fixture) checkNumbers(changes []billing.Change, won []int) {
	f.t.Helper()
	var got, want []string
	for i, w := range won {
		inv := f.invoice(changes[w].Invoice.ID)
		got = append(got, inv.Number)
		want = append(want, billing.Number(2026, uint64(i+1)))
	}
	slices.Sort(got)
	storecheck.Same(f.t, "the numbers of the invoices finalized at once", got, want)
	es := f.entries()
	if len(es) < len(won) {
		f.t.Fatalf("Entries: got %d, want at least %d", len(es), len(won))
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq <= es[i-1].Seq {
			f.t.Errorf("Entries: Seq %d after %d", es[i].Seq, es[i-1].Seq)
		}
	}
}

func testConcurrentNumbers(t *testing.T, f *fixture) {
	changes := f.finalizing(racers)
	won := winners(f.race("Commit finalizing invoices racing", nil, changes))
	if len(won) != racers {
		t.Fatalf("Commit finalizing %d invoices at once: %d succeeded, want all", racers, len(won))
	}
	f.checkNumbers(changes, won)
	if es := f.entries(); len(es) != racers {
		t.Errorf("Entries: got %d, want %d", len(es), racers)
	}
}

func testConcurrentNumbersWithFailures(t *testing.T, f *fixture) {
	dup := credit("acct-00", "goodwill-1", 0)
	f.commit("Commit of a credit", billing.Change{At: at(0), Entries: []billing.Entry{dup}})
	changes := f.finalizing(racers)
	failing := slices.Clone(changes)
	for i := 1; i < racers; i += 2 {
		// After its invoice was numbered, the change fails.
		failing[i].Entries = append(slices.Clone(changes[i].Entries), dup)
	}
	won := winners(f.race("Commit finalizing invoices racing, half of them failing", billing.ErrDuplicate, failing))
	var even []int
	for i := 0; i < racers; i += 2 {
		even = append(even, i)
	}
	storecheck.Same(t, "the changes that succeeded", won, even)
	f.checkNumbers(changes, won)
	// The next number follows, with no gap.
	c := f.commit("Commit finalizing inv-01", changes[1])
	if c.Invoice == nil || c.Invoice.Number != billing.Number(2026, uint64(len(won)+1)) {
		t.Errorf("Commit finalizing inv-01 after the race: got %+v, want number %s", c.Invoice, billing.Number(2026, uint64(len(won)+1)))
	}
}
