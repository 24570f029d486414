package embedded

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fillcast/fillcast/billing"
)

// FuzzApply: a log entry from a buggy or hostile node is refused by
// Validate or Check, or applied without a panic, and a state snapshot
// of the result restores to the same records.
func FuzzApply(f *testing.F) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sub := billing.Subscription{ID: "s1", Account: "a1", Plan: "basic", Period: "month", Status: billing.Active,
		CurrentPeriodStart: at, CurrentPeriodEnd: at.AddDate(0, 1, 0), Version: 1, Created: at}
	inv := billing.Invoice{ID: "i1", Account: "a1", Subscription: "s1", Status: billing.Open, Finalized: at, Created: at,
		Lines: []billing.Line{{Kind: billing.LinePlan, Amount: billing.Money{Amount: 799, Currency: "EUR"}}}, Total: billing.Money{Amount: 799, Currency: "EUR"}}
	for _, c := range []Command{
		{Op: OpCommit, Change: &billing.Change{At: at, Subscriptions: []billing.Subscription{sub}, Invoice: &inv,
			Entries: []billing.Entry{{At: at, Account: "a1", Invoice: "i1", Kind: billing.EntryInvoiceFinalized, Amount: inv.Total, IdempotencyKey: "i1"}},
			Request: &billing.Request{Account: "a1", Key: "k", Hash: "h", Status: 201, Body: []byte("{}"), Created: at}}},
		{Op: OpPruneRequests, Before: at},
	} {
		b, _ := json.Marshal(c)
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s := NewState()
		for _, raw := range [][]byte{first, second} {
			var c Command
			if json.Unmarshal(raw, &c) != nil || c.Validate() != nil || s.Check(c) != nil {
				continue
			}
			s.Apply(c)
		}
		b, err := json.Marshal(s.Clone())
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		back := NewState()
		if err := json.Unmarshal(b, back); err != nil {
			t.Fatalf("restore: %v", err)
		}
		back.Rebuild()
		if back.Subscriptions.Len() != s.Subscriptions.Len() || back.Invoices.Len() != s.Invoices.Len() || len(back.Entries) != len(s.Entries) {
			t.Fatal("the restored state differs")
		}
	})
}
