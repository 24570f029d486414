package billing

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func paidInvoice(t *testing.T, l *Ledger, n *Numberer, id string, total int64) Invoice {
	t.Helper()
	at := date(2026, 3, 1)
	inv := must(NewInvoice(id, "a1", "s1", "k-"+id, []Line{{Kind: LinePlan, Amount: eur(total)}}, at))
	inv = must(n.Finalize(inv, at))
	must(l.Append(Entry{At: at, Account: "a1", Invoice: id, Kind: EntryInvoiceFinalized, Amount: eur(total), IdempotencyKey: "fin-" + id}))
	inv = must(Pay(inv, at))
	must(l.Append(Entry{At: at, Account: "a1", Invoice: id, Kind: EntryPaymentSucceeded, Amount: eur(total), ChargeID: "ch-" + id, IdempotencyKey: "pay-" + id}))
	return inv
}

func TestAppendDuplicate(t *testing.T) {
	var l Ledger
	e := Entry{Account: "a1", Invoice: "i1", Kind: EntryPaymentSucceeded, Amount: eur(799), ChargeID: "ch1", IdempotencyKey: "k"}
	first := must(l.Append(e))
	if first.Seq != 1 {
		t.Errorf("seq %d", first.Seq)
	}
	replay := e
	replay.ChargeID = "ch2"
	got, err := l.Append(replay)
	if !errors.Is(err, ErrDuplicate) || got != first || l.Len() != 1 {
		t.Errorf("replay: got %+v, %v, len %d; want the first entry and ErrDuplicate", got, err, l.Len())
	}
	if b := l.Balance("a1", "EUR"); b.Paid != 799 || b.Owed() != eur(-799) {
		t.Errorf("balance %+v", b)
	}
	other := e
	other.Kind = EntryRefund
	if got := must(l.Append(other)); got.Seq != 2 {
		t.Errorf("refund with the same key is another entry: seq %d", got.Seq)
	}
}

func TestAppendRefuses(t *testing.T) {
	ok := Entry{Account: "a1", Invoice: "i1", Kind: EntryInvoiceFinalized, Amount: eur(1), IdempotencyKey: "k"}
	tests := []struct {
		name   string
		change func(*Entry)
	}{
		{"kind", func(e *Entry) { e.Kind = "gift" }},
		{"account", func(e *Entry) { e.Account = "" }},
		{"key", func(e *Entry) { e.IdempotencyKey = "" }},
		{"negative", func(e *Entry) { e.Amount = eur(-1) }},
		{"currency", func(e *Entry) { e.Amount.Currency = "eu" }},
		{"invoice", func(e *Entry) { e.Invoice = "" }},
		{"charge id", func(e *Entry) { e.Kind = EntryPaymentSucceeded }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Ledger
			e := ok
			tt.change(&e)
			if _, err := l.Append(e); err == nil || l.Len() != 0 {
				t.Errorf("accepted %+v", e)
			}
		})
	}
	t.Run("overflow", func(t *testing.T) {
		var l Ledger
		big := ok
		big.Amount = eur(math.MaxInt64)
		must(l.Append(big))
		big.IdempotencyKey = "k2"
		big.Kind = EntryRefund
		if _, err := l.Append(big); !errors.Is(err, ErrOverflow) {
			t.Errorf("got %v; want ErrOverflow", err)
		}
	})
}

func TestVerify(t *testing.T) {
	var l Ledger
	var n Numberer
	paid := paidInvoice(t, &l, &n, "i1", 799)
	if ps := Verify(&l, []Invoice{paid}); len(ps) != 0 {
		t.Fatalf("consistent ledger: %v", ps)
	}
	open := must(n.Finalize(must(NewInvoice("i2", "a1", "s1", "k2", []Line{{Kind: LinePlan, Amount: eur(500)}}, date(2026, 3, 1))), date(2026, 3, 1)))
	must(l.Append(Entry{Account: "a1", Invoice: "i2", Kind: EntryInvoiceFinalized, Amount: eur(500), IdempotencyKey: "fin-i2"}))
	draft := must(NewInvoice("i3", "a1", "s1", "k3", []Line{{Kind: LinePlan, Amount: eur(0)}}, date(2026, 3, 1)))

	tests := []struct {
		name     string
		entries  []Entry
		invoices []Invoice
		want     []string // substrings of the problems, in order
	}{
		{"consistent", nil, []Invoice{paid, open, draft}, nil},
		{"paid claims unpaid", nil, []Invoice{withStatus(paid, Open), open}, []string{"open but has 1 payment_succeeded"}},
		{"open claims paid", nil, []Invoice{paid, withStatus(open, Paid)}, []string{"paid but has 0 payment_succeeded"}},
		{"total differs", nil, []Invoice{withTotal(paid, 800), open}, []string{"finalized for €7.99", "paid €7.99"}},
		{"missing invoice", nil, []Invoice{open}, []string{"invoice_finalized entry for an invoice that does not exist", "payment_succeeded entry for an invoice that does not exist"}},
		{"duplicate charge", []Entry{{Account: "a1", Invoice: "i2", Kind: EntryPaymentSucceeded, Amount: eur(500), ChargeID: "ch-i1", IdempotencyKey: "pay-i2"}},
			[]Invoice{paid, withStatus(open, Paid)}, []string{"recorded as paid already"}},
		{"two payments", []Entry{{Account: "a1", Invoice: "i1", Kind: EntryPaymentSucceeded, Amount: eur(799), ChargeID: "ch-x", IdempotencyKey: "pay-i1-again"}},
			[]Invoice{paid, open}, []string{"paid but has 2 payment_succeeded"}},
		{"over refund", []Entry{{Account: "a1", Invoice: "i1", Kind: EntryRefund, Amount: eur(800), IdempotencyKey: "r"}},
			[]Invoice{paid, open}, []string{"refunded 800"}},
		{"other account", []Entry{{Account: "a2", Invoice: "i2", Kind: EntryPaymentFailed, Amount: eur(500), IdempotencyKey: "f"}},
			[]Invoice{paid, open}, []string{"entry of account a2"}},
		{"draft with entries", []Entry{{Account: "a1", Invoice: "i3", Kind: EntryInvoiceFinalized, Amount: eur(0), IdempotencyKey: "f3"}},
			[]Invoice{paid, open, draft}, []string{"draft but has 1"}},
		{"duplicate invoice", nil, []Invoice{paid, open, paid}, []string{"appears twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lt Ledger
			for _, e := range append(l.Entries(), tt.entries...) {
				must(lt.Append(e))
			}
			ps := Verify(&lt, tt.invoices)
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems %v; want %d", len(ps), ps, len(tt.want))
			}
			for i, p := range ps {
				if !strings.Contains(p.String(), tt.want[i]) {
					t.Errorf("problem %d = %q; want it to say %q", i, p, tt.want[i])
				}
			}
		})
	}
}

func withStatus(inv Invoice, s InvoiceStatus) Invoice { inv.Status = s; return inv }
func withTotal(inv Invoice, n int64) Invoice          { inv.Total = eur(n); return inv }
