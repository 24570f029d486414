package subscriptions

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// Report is the operators' view of billing.
type Report struct {
	AsOf time.Time `json:"as_of"`
	// Subscriptions counts the subscriptions by status.
	Subscriptions map[billing.Status]int `json:"subscriptions"`
	// ActiveByPlan counts the active subscriptions by plan.
	ActiveByPlan map[string]int `json:"active_by_plan"`
	// MRR is the monthly recurring revenue of the active and past-due
	// subscriptions, per currency: yearly plans count a twelfth.
	MRR []billing.Money `json:"mrr"`
	// Canceled30d counts the subscriptions that ended in the last 30
	// days; Churn is their share of those that were paying or trialing
	// 30 days ago (Canceled30d over itself plus the active, past-due and
	// trialing ones now).
	Canceled30d int     `json:"canceled_30d"`
	Churn       float64 `json:"churn"`
	// FailedPayments30d counts the declined charges of the last 30 days.
	FailedPayments30d int `json:"failed_payments_30d"`
}

// scanPage is how many records a report or a verification reads at a
// time.
const scanPage = 5000

// each calls fn with every record list returns, a page at a time.
func each[T any](ctx context.Context, list func(ctx context.Context, after string, limit int) ([]T, error), id func(T) string, fn func(T)) error {
	for after := ""; ; {
		page, err := list(ctx, after, scanPage)
		if err != nil {
			return err
		}
		for _, x := range page {
			fn(x)
		}
		if len(page) < scanPage {
			return nil
		}
		after = id(page[len(page)-1])
	}
}

// eachEntry calls fn with every ledger entry.
func (s *Service) eachEntry(ctx context.Context, fn func(billing.Entry)) error {
	for after := uint64(0); ; {
		page, err := s.d.Store.Entries(ctx, after, scanPage)
		if err != nil {
			return err
		}
		for _, e := range page {
			fn(e)
		}
		if len(page) < scanPage {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}

// Report returns the billing report as of now.
func (s *Service) Report(ctx context.Context) (Report, error) {
	if err := s.sync(ctx); err != nil {
		return Report{}, err
	}
	now := s.now()
	since := now.AddDate(0, 0, -30)
	r := Report{AsOf: now, Subscriptions: map[billing.Status]int{}, ActiveByPlan: map[string]int{}}
	mrr := map[string]int64{}
	plans := map[string]accounts.Plan{}
	var err error
	// Ended subscriptions count as churn unless their account has a
	// live one now (a trial or a failed start replaced by a paid one).
	live := map[string]bool{}
	var ended []string
	visit := func(sub billing.Subscription) {
		r.Subscriptions[sub.Status]++
		switch sub.Status {
		case billing.Canceled:
			if !sub.CanceledAt.Before(since) {
				ended = append(ended, sub.Account)
			}
			return
		case billing.Active:
			r.ActiveByPlan[sub.Plan]++
		case billing.PastDue:
		case billing.Trialing:
			live[sub.Account] = true
			return
		default:
			return
		}
		live[sub.Account] = true
		p, ok := plans[sub.Plan]
		if !ok {
			var perr error
			if p, perr = s.d.Plans.Plan(ctx, sub.Plan); perr != nil {
				err = perr
				return
			}
			plans[sub.Plan] = p
		}
		monthly := p.Price.Amount
		if p.Period == billing.PeriodYear {
			monthly = (monthly + 6) / 12
		}
		mrr[p.Price.Currency] += monthly
	}
	if serr := each(ctx, s.d.Store.Subscriptions, func(x billing.Subscription) string { return x.ID }, visit); serr != nil {
		return r, serr
	}
	if err != nil {
		return r, err
	}
	for _, acct := range ended {
		if !live[acct] {
			r.Canceled30d++
		}
	}
	if base := r.Canceled30d + r.Subscriptions[billing.Active] + r.Subscriptions[billing.PastDue] + r.Subscriptions[billing.Trialing]; base > 0 {
		r.Churn = float64(r.Canceled30d) / float64(base)
	}
	for c, a := range mrr {
		r.MRR = append(r.MRR, billing.Money{Amount: a, Currency: c})
	}
	slices.SortFunc(r.MRR, func(a, b billing.Money) int { return strings.Compare(a.Currency, b.Currency) })
	err = s.eachEntry(ctx, func(e billing.Entry) {
		if e.Kind == billing.EntryPaymentFailed && !e.At.Before(since) {
			r.FailedPayments30d++
		}
	})
	return r, err
}

// Verification is what Verify read and found.
type Verification struct {
	Entries       int               `json:"entries"`
	Invoices      int               `json:"invoices"`
	Subscriptions int               `json:"subscriptions"`
	Balances      []billing.Balance `json:"balances,omitempty"`
	Problems      []billing.Problem `json:"problems"`
}

// Verify rebuilds the ledger from the store's entries and checks it
// against the invoices (billing.Verify), and that every subscription's
// invoices are its account's. No problems means they agree.
func (s *Service) Verify(ctx context.Context) (Verification, error) {
	var v Verification
	if err := s.sync(ctx); err != nil {
		return v, err
	}
	var l billing.Ledger
	err := s.eachEntry(ctx, func(e billing.Entry) {
		v.Entries++
		if _, err := l.Append(e); err != nil {
			v.Problems = append(v.Problems, billing.Problem{Invoice: e.Invoice, Seq: e.Seq, Message: err.Error()})
		}
	})
	if err != nil {
		return v, err
	}
	subs := map[string]string{} // subscription → account
	if err := each(ctx, s.d.Store.Subscriptions, func(x billing.Subscription) string { return x.ID }, func(x billing.Subscription) {
		v.Subscriptions++
		subs[x.ID] = x.Account
	}); err != nil {
		return v, err
	}
	var invoices []billing.Invoice
	if err := each(ctx, s.d.Store.Invoices, func(x billing.Invoice) string { return x.ID }, func(x billing.Invoice) {
		invoices = append(invoices, x)
		if acct, ok := subs[x.Subscription]; !ok || acct != x.Account {
			v.Problems = append(v.Problems, billing.Problem{Invoice: x.ID,
				Message: fmt.Sprintf("of subscription %s, which is not one of account %s", x.Subscription, x.Account)})
		}
	}); err != nil {
		return v, err
	}
	v.Invoices = len(invoices)
	v.Problems = append(v.Problems, billing.Verify(&l, invoices)...)
	v.Balances = l.Balances()
	if v.Problems == nil {
		v.Problems = []billing.Problem{}
	}
	return v, nil
}
