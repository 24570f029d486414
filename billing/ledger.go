package billing

import (
	"fmt"
	"slices"
	"time"
)

// EntryKind is the kind of money movement a ledger entry records.
type EntryKind string

// The kinds of ledger entry. Amounts are never negative; the kind says
// which way the money went.
const (
	// EntryInvoiceFinalized: the account owes the invoice's total.
	EntryInvoiceFinalized EntryKind = "invoice_finalized"
	// EntryPaymentSucceeded: the account paid (ChargeID says which charge).
	EntryPaymentSucceeded EntryKind = "payment_succeeded"
	// EntryPaymentFailed: a charge was declined; no money moved. Recorded
	// so the audit trail has every attempt.
	EntryPaymentFailed EntryKind = "payment_failed"
	// EntryRefund: money went back to the account.
	EntryRefund EntryKind = "refund"
	// EntryCredit: the account owes less (a goodwill credit, or the
	// credit note that goes with a refund).
	EntryCredit EntryKind = "credit"
)

// ErrDuplicate is an Append of an entry whose (kind, invoice, idempotency
// key) the ledger holds already; Append returns the first entry with it.
// It is an ErrExists, which is what it becomes when a store's write is
// forwarded to another node.
var ErrDuplicate = fmt.Errorf("billing: duplicate ledger entry: %w", ErrExists)

// Entry is one money movement. Seq is given by the ledger, from 1.
type Entry struct {
	Seq            uint64    `json:"seq"`
	At             time.Time `json:"at"`
	Account        string    `json:"account"`
	Invoice        string    `json:"invoice,omitempty"`
	Kind           EntryKind `json:"kind"`
	Amount         Money     `json:"amount"`
	ChargeID       string    `json:"charge_id,omitempty"`
	IdempotencyKey string    `json:"idempotency_key"`
}

// Balance is an account's totals in one currency, in minor units.
type Balance struct {
	Account  string `json:"account"`
	Currency string `json:"currency"`
	Invoiced int64  `json:"invoiced"`
	Paid     int64  `json:"paid"`
	Refunded int64  `json:"refunded"`
	Credited int64  `json:"credited"`
}

// Owed returns what the account owes: invoiced − credited − (paid −
// refunded). Negative is money held in the account's favour. A refund
// that is not to be owed again is recorded with a credit of the same
// amount.
func (b Balance) Owed() Money {
	// Append keeps every partial sum within int64 range.
	return Money{Amount: b.Invoiced - b.Credited - b.Paid + b.Refunded, Currency: b.Currency}
}

type entryKey struct {
	kind         EntryKind
	invoice, key string
}

type balanceKey struct{ account, currency string }

// Ledger is the append-only record of every money movement. It is plain
// data that changes only in Append, so a replicated state machine (or a
// store replaying its rows through Append) holds the same ledger on every
// node. The zero value is empty and ready; it is not safe for concurrent
// use.
type Ledger struct {
	entries  []Entry
	index    map[entryKey]int
	balances map[balanceKey]*Balance
}

// Append adds e with the next Seq and returns it as stored. An entry with
// the (kind, invoice, idempotency key) of one already held is not added:
// Append returns the held entry and ErrDuplicate (wrapped), which is what
// makes a replayed payment harmless. It refuses an entry with an unknown
// kind, no account or idempotency key, a negative amount, an invalid
// currency, a payment with money but no charge id, or one that would
// overflow the account's totals.
func (l *Ledger) Append(e Entry) (Entry, error) {
	k := entryKey{e.Kind, e.Invoice, e.IdempotencyKey}
	if i, ok := l.index[k]; ok {
		return l.entries[i], fmt.Errorf("billing: %s of invoice %q with key %q: %w", e.Kind, e.Invoice, e.IdempotencyKey, ErrDuplicate)
	}
	if err := checkEntry(e); err != nil {
		return Entry{}, err
	}
	bk := balanceKey{e.Account, e.Amount.Currency}
	b := Balance{Account: e.Account, Currency: e.Amount.Currency}
	if old := l.balances[bk]; old != nil {
		b = *old
	}
	field := map[EntryKind]*int64{EntryInvoiceFinalized: &b.Invoiced, EntryPaymentSucceeded: &b.Paid,
		EntryRefund: &b.Refunded, EntryCredit: &b.Credited}[e.Kind]
	if field != nil {
		s, ok := addInt64(*field, e.Amount.Amount)
		if !ok || !fits(b.Invoiced, b.Credited, b.Paid, b.Refunded, e.Kind, e.Amount.Amount) {
			return Entry{}, fmt.Errorf("%w: %s of %s for account %s", ErrOverflow, e.Kind, Format(e.Amount), e.Account)
		}
		*field = s
	}
	if l.index == nil {
		l.index = make(map[entryKey]int)
		l.balances = make(map[balanceKey]*Balance)
	}
	e.Seq = uint64(len(l.entries)) + 1
	e.At = e.At.UTC()
	l.index[k] = len(l.entries)
	l.entries = append(l.entries, e)
	l.balances[bk] = &b
	return e, nil
}

// fits reports whether adding amount to the total of kind keeps
// Balance.Owed's partial sums within int64 range: each total, and
// invoiced+refunded and credited+paid, stay below 2^63.
func fits(invoiced, credited, paid, refunded int64, kind EntryKind, amount int64) bool {
	switch kind {
	case EntryInvoiceFinalized:
		invoiced += amount
	case EntryRefund:
		refunded += amount
	case EntryPaymentSucceeded:
		paid += amount
	case EntryCredit:
		credited += amount
	}
	_, ok1 := addInt64(invoiced, refunded)
	_, ok2 := addInt64(credited, paid)
	return invoiced >= 0 && refunded >= 0 && paid >= 0 && credited >= 0 && ok1 && ok2
}

// checkEntry returns an error unless e may be appended.
func checkEntry(e Entry) error {
	switch e.Kind {
	case EntryInvoiceFinalized, EntryPaymentSucceeded, EntryPaymentFailed, EntryRefund, EntryCredit:
	default:
		return fmt.Errorf("billing: ledger entry kind %q is unknown", e.Kind)
	}
	if e.Account == "" {
		return fmt.Errorf("billing: %s entry has no account", e.Kind)
	}
	if e.IdempotencyKey == "" {
		return fmt.Errorf("billing: %s entry has no idempotency key", e.Kind)
	}
	if err := CheckCurrency(e.Amount.Currency); err != nil {
		return fmt.Errorf("billing: %s entry: %w", e.Kind, err)
	}
	if e.Amount.Amount < 0 {
		return fmt.Errorf("billing: %s entry of %s is negative; the kind gives the direction", e.Kind, Format(e.Amount))
	}
	if e.Kind != EntryCredit && e.Invoice == "" {
		return fmt.Errorf("billing: %s entry has no invoice", e.Kind)
	}
	if e.Kind == EntryPaymentSucceeded && e.Amount.Amount > 0 && e.ChargeID == "" {
		return fmt.Errorf("billing: payment of %s has no charge id", Format(e.Amount))
	}
	return nil
}

// Entries returns a copy of the entries in Seq order.
func (l *Ledger) Entries() []Entry { return slices.Clone(l.entries) }

// Len returns the number of entries.
func (l *Ledger) Len() int { return len(l.entries) }

// Balance returns the account's totals in currency (zero if none).
func (l *Ledger) Balance(account, currency string) Balance {
	if b := l.balances[balanceKey{account, currency}]; b != nil {
		return *b
	}
	return Balance{Account: account, Currency: currency}
}

// Balances returns every account's totals, ordered by account then
// currency.
func (l *Ledger) Balances() []Balance {
	out := make([]Balance, 0, len(l.balances))
	for _, b := range l.balances {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Balance) int {
		if a.Account != b.Account {
			if a.Account < b.Account {
				return -1
			}
			return 1
		}
		if a.Currency < b.Currency {
			return -1
		}
		if a.Currency > b.Currency {
			return 1
		}
		return 0
	})
	return out
}

// Problem is a disagreement Verify found between the ledger and the
// invoices.
type Problem struct {
	Invoice string `json:"invoice,omitempty"`
	// Seq is the ledger entry concerned, 0 for none.
	Seq     uint64 `json:"seq,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	s := "billing verify:"
	if p.Invoice != "" {
		s += " invoice " + p.Invoice
	}
	if p.Seq != 0 {
		s += fmt.Sprintf(" entry %d", p.Seq)
	}
	return s + ": " + p.Message
}

// Verify checks that the invoices' statuses and totals agree with the
// ledger and returns every disagreement (none when they agree), in a
// stable order: invoices first, in the order given, then entries by Seq.
//
//   - an invoice id appears once;
//   - every entry with an invoice names a known one, of its account and
//     currency;
//   - a draft invoice has no entries; any other has exactly one
//     invoice_finalized, of its total;
//   - a paid invoice has exactly one payment_succeeded, of its total
//     (none is also fine when the total is zero); any other has none;
//   - refunds of an invoice do not exceed what was paid;
//   - no charge id is on two payment_succeeded entries.
func Verify(l *Ledger, invoices []Invoice) []Problem {
	var ps []Problem
	add := func(inv string, seq uint64, format string, args ...any) {
		ps = append(ps, Problem{Invoice: inv, Seq: seq, Message: fmt.Sprintf(format, args...)})
	}
	byID := make(map[string]Invoice, len(invoices))
	byInvoice := make(map[string][]Entry)
	for _, e := range l.entries {
		if e.Invoice != "" {
			byInvoice[e.Invoice] = append(byInvoice[e.Invoice], e)
		}
	}
	for _, inv := range invoices {
		if _, dup := byID[inv.ID]; dup {
			add(inv.ID, 0, "the invoice id appears twice")
			continue
		}
		byID[inv.ID] = inv
		var finalized, paid []Entry
		var refunded int64
		for _, e := range byInvoice[inv.ID] {
			switch e.Kind {
			case EntryInvoiceFinalized:
				finalized = append(finalized, e)
			case EntryPaymentSucceeded:
				paid = append(paid, e)
			case EntryRefund:
				refunded += e.Amount.Amount
			}
		}
		if inv.Status == Draft {
			if n := len(byInvoice[inv.ID]); n > 0 {
				add(inv.ID, 0, "draft but has %d ledger entries", n)
			}
			continue
		}
		if len(finalized) != 1 {
			add(inv.ID, 0, "%s but has %d invoice_finalized entries, want 1", inv.Status, len(finalized))
		} else if finalized[0].Amount != inv.Total {
			add(inv.ID, finalized[0].Seq, "finalized for %s but the invoice's total is %s", Format(finalized[0].Amount), Format(inv.Total))
		}
		switch {
		case inv.Status == Paid && len(paid) == 0 && inv.Total.Amount == 0:
		case inv.Status == Paid && len(paid) != 1:
			add(inv.ID, 0, "paid but has %d payment_succeeded entries, want 1", len(paid))
		case inv.Status == Paid && paid[0].Amount != inv.Total:
			add(inv.ID, paid[0].Seq, "paid %s but the invoice's total is %s", Format(paid[0].Amount), Format(inv.Total))
		case inv.Status != Paid && len(paid) > 0:
			add(inv.ID, paid[0].Seq, "%s but has %d payment_succeeded entries, want 0", inv.Status, len(paid))
		}
		var paidAmount int64
		for _, e := range paid {
			paidAmount += e.Amount.Amount
		}
		if refunded > paidAmount {
			add(inv.ID, 0, "refunded %d minor units of %d paid", refunded, paidAmount)
		}
	}
	charges := make(map[string]uint64)
	for _, e := range l.entries {
		if e.Invoice != "" {
			inv, ok := byID[e.Invoice]
			switch {
			case !ok:
				add(e.Invoice, e.Seq, "%s entry for an invoice that does not exist", e.Kind)
			case inv.Account != e.Account:
				add(e.Invoice, e.Seq, "entry of account %s for an invoice of account %s", e.Account, inv.Account)
			case inv.Total.Currency != e.Amount.Currency:
				add(e.Invoice, e.Seq, "entry in %s for an invoice in %s", e.Amount.Currency, inv.Total.Currency)
			}
		}
		if e.Kind == EntryPaymentSucceeded && e.ChargeID != "" {
			if first, dup := charges[e.ChargeID]; dup {
				add(e.Invoice, e.Seq, "charge %s is recorded as paid already by entry %d", e.ChargeID, first)
			} else {
				charges[e.ChargeID] = e.Seq
			}
		}
	}
	return ps
}
