package billing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

// LineKind is what an invoice line charges or credits.
type LineKind string

// The kinds of invoice line.
const (
	LinePlan            LineKind = "plan"
	LineProrationCredit LineKind = "proration_credit" // negative: unused time on the old plan
	LineProrationDebit  LineKind = "proration_debit"  // positive: the rest of the period on the new plan
)

// Line is one line of an invoice.
type Line struct {
	Kind        LineKind  `json:"kind"`
	Description string    `json:"description"`
	Amount      Money     `json:"amount"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// PlanLine returns the line charging plan for the period [start, end).
func PlanLine(plan accounts.Plan, start, end time.Time) Line {
	return Line{Kind: LinePlan, Description: plan.Name, Amount: plan.Price, PeriodStart: start.UTC(), PeriodEnd: end.UTC()}
}

// InvoiceStatus is where an invoice is in its life.
type InvoiceStatus string

// The statuses of an invoice: Draft → Open → Paid | Void | Uncollectible.
const (
	Draft         InvoiceStatus = "draft"
	Open          InvoiceStatus = "open"
	Paid          InvoiceStatus = "paid"
	Void          InvoiceStatus = "void"
	Uncollectible InvoiceStatus = "uncollectible"
)

// Invoice is what an account is asked to pay. A draft has no Number; it
// gets one when finalized (Numberer.Finalize), so numbers have no gaps.
type Invoice struct {
	ID           string        `json:"id"`
	Number       string        `json:"number,omitempty"`
	Account      string        `json:"account"`
	Subscription string        `json:"subscription"`
	Lines        []Line        `json:"lines"`
	Total        Money         `json:"total"`
	Status       InvoiceStatus `json:"status"`
	Created      time.Time     `json:"created"`
	Finalized    time.Time     `json:"finalized,omitzero"`
	PaidAt       time.Time     `json:"paid_at,omitzero"`
	// IdempotencyKey is the key of the request (or the charge) that made
	// the invoice, so a retry finds it instead of making another.
	IdempotencyKey string `json:"idempotency_key"`
}

// NewInvoice returns a draft invoice of lines, which must be at least one
// and in one currency, with a total that is not negative.
func NewInvoice(id, account, subscription, idempotencyKey string, lines []Line, created time.Time) (Invoice, error) {
	if len(lines) == 0 {
		return Invoice{}, errors.New("billing: an invoice needs at least one line")
	}
	for _, l := range lines {
		switch l.Kind {
		case LinePlan, LineProrationCredit, LineProrationDebit:
		default:
			return Invoice{}, fmt.Errorf("billing: invoice line kind %q is unknown", l.Kind)
		}
	}
	total, err := LinesTotal(lines)
	if err != nil {
		return Invoice{}, err
	}
	if total.Amount < 0 {
		return Invoice{}, fmt.Errorf("billing: invoice total %s is negative", Format(total))
	}
	return Invoice{ID: id, Account: account, Subscription: subscription,
		Lines: append([]Line(nil), lines...), Total: total, Status: Draft,
		Created: created.UTC(), IdempotencyKey: idempotencyKey}, nil
}

// LinesTotal returns the sum of the lines' amounts, in the first line's
// currency: an error for mixed currencies, overflow, or no lines.
func LinesTotal(lines []Line) (Money, error) {
	if len(lines) == 0 {
		return Money{}, errors.New("billing: no lines to total")
	}
	ms := make([]Money, len(lines))
	for i, l := range lines {
		ms[i] = l.Amount
	}
	return Sum(lines[0].Amount.Currency, ms...)
}

// illegalInvoice returns ErrIllegal wrapped with what was tried.
func illegalInvoice(inv Invoice, what string) error {
	return fmt.Errorf("billing: invoice %s is %s and cannot %s: %w", inv.ID, inv.Status, what, ErrIllegal)
}

// Pay returns the open invoice inv paid at at.
func Pay(inv Invoice, at time.Time) (Invoice, error) {
	if inv.Status != Open {
		return inv, illegalInvoice(inv, "be paid")
	}
	inv.Status, inv.PaidAt = Paid, at.UTC()
	return inv, nil
}

// VoidInvoice returns the open invoice inv void: it was issued in error
// and is owed no more.
func VoidInvoice(inv Invoice) (Invoice, error) {
	if inv.Status != Open {
		return inv, illegalInvoice(inv, "be voided")
	}
	inv.Status = Void
	return inv, nil
}

// MarkUncollectible returns the open invoice inv uncollectible: dunning
// gave up on it.
func MarkUncollectible(inv Invoice) (Invoice, error) {
	if inv.Status != Open {
		return inv, illegalInvoice(inv, "be marked uncollectible")
	}
	inv.Status = Uncollectible
	return inv, nil
}

// Number formats an invoice number: the year and the sequence number
// within it, zero-padded to six digits ("2026-000123"); a seventh digit
// appears when a year needs it.
func Number(year int, seq uint64) string {
	return fmt.Sprintf("%04d-%06d", year, seq)
}

// ParseNumber returns the year and sequence number of an invoice number
// written by Number: a four-digit year from 1 and a sequence number of at
// least six digits, from 1, with no other leading zeros.
func ParseNumber(s string) (year int, seq uint64, err error) {
	y, q, ok := strings.Cut(s, "-")
	if !ok || len(y) != 4 || len(q) < 6 || (len(q) > 6 && q[0] == '0') {
		return 0, 0, fmt.Errorf("billing: invoice number %q is not YYYY-NNNNNN", s)
	}
	for _, part := range []string{y, q} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, 0, fmt.Errorf("billing: invoice number %q is not YYYY-NNNNNN", s)
			}
		}
	}
	year, _ = strconv.Atoi(y)
	seq, err = strconv.ParseUint(q, 10, 64)
	if err != nil || year == 0 || seq == 0 {
		return 0, 0, fmt.Errorf("billing: invoice number %q is not YYYY-NNNNNN", s)
	}
	return year, seq, nil
}

// Numberer hands out invoice numbers without gaps: per year (UTC), the
// last sequence number given. It is plain data that changes only in
// Finalize, so a replicated state machine can hold it and apply the same
// finalizations to the same numbers on every node. The zero value is
// ready; it is not safe for concurrent use.
type Numberer struct {
	// Last is the last sequence number given per year.
	Last map[int]uint64 `json:"last"`
}

// Peek returns the number the next invoice finalized at at would get,
// without taking it.
func (n *Numberer) Peek(at time.Time) string {
	y := at.UTC().Year()
	return Number(y, n.Last[y]+1)
}

// Finalize returns the draft inv open at at, with the next number of at's
// year, and takes that number. An error leaves the numberer unchanged, so
// no number is lost.
func (n *Numberer) Finalize(inv Invoice, at time.Time) (Invoice, error) {
	if inv.Status != Draft {
		return inv, illegalInvoice(inv, "be finalized")
	}
	num, err := n.Next(at)
	if err != nil {
		return inv, fmt.Errorf("billing: invoice %s: %w", inv.ID, err)
	}
	inv.Number, inv.Status, inv.Finalized = num, Open, at.UTC()
	return inv, nil
}

// Next takes and returns the next number of at's year (UTC): for a store
// that numbers an invoice finalized elsewhere. An error takes nothing.
func (n *Numberer) Next(at time.Time) (string, error) {
	y := at.UTC().Year()
	if y < 1 || y > 9999 {
		return "", fmt.Errorf("billing: year %d has no invoice numbers", y)
	}
	if n.Last == nil {
		n.Last = make(map[int]uint64)
	}
	n.Last[y]++
	return Number(y, n.Last[y]), nil
}
