package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/billing/testprovider"
)

// auditPage is how many records the audit reads at a time.
const auditPage = 5000

// audit is what a completed pass left, checked against the provider.
type audit struct {
	Subscriptions int `json:"subscriptions"`
	// Renewed are active, with no charge pending, in the period the
	// passes so far renewed them into, and not due as of the pass.
	Renewed int `json:"renewed"`
	// NotRenewed names the first subscription that is not, and why.
	NotRenewed string `json:"not_renewed,omitempty"`
	// Charges and Succeeded count the provider's renewal charges.
	Charges   int `json:"charges"`
	Succeeded int `json:"succeeded"`
	// Duplicates are succeeded charges beyond the first for one
	// subscription and period.
	Duplicates int    `json:"duplicates"`
	Duplicate  string `json:"duplicate,omitempty"`
	// Unrecorded are succeeded charges no payment in the ledger names:
	// money taken and not recorded.
	Unrecorded int `json:"unrecorded"`
	// Unknown are ledger payments naming a charge the provider does not
	// have, or naming one charge twice.
	Unknown int `json:"unknown"`
	// Problems are what Service.Verify found; Problem is the first.
	Problems int     `json:"problems"`
	Problem  string  `json:"problem,omitempty"`
	Seconds  float64 `json:"seconds"`
}

// ok reports whether the audit found nothing wrong with subs
// subscriptions.
func (a audit) ok(subs int) bool {
	return a.Renewed == subs && a.Duplicates == 0 && a.Unrecorded == 0 && a.Unknown == 0 && a.Problems == 0
}

// runAudit checks the store of svc and the provider on providerDir after
// a completed pass as of asOf, when every subscription should have been
// renewed renewals times since it was seeded.
func runAudit(ctx context.Context, svc *subscriptions.Service, providerDir string, asOf time.Time, renewals int) (audit, error) {
	start := time.Now()
	var a audit
	store := svc.Store()
	for after := ""; ; {
		page, err := store.Subscriptions(ctx, after, auditPage)
		if err != nil {
			return a, err
		}
		for _, s := range page {
			a.Subscriptions++
			want := renewedEnd(s.Anchor, renewals)
			if s.Status == billing.Active && s.Pending == nil && s.CurrentPeriodEnd.Equal(want) && !billing.Due(s, asOf) {
				a.Renewed++
			} else if a.NotRenewed == "" {
				a.NotRenewed = fmt.Sprintf("%s: %s, pending %v, period to %s, want to %s", s.ID, s.Status, s.Pending != nil,
					s.CurrentPeriodEnd.Format(time.RFC3339), want.Format(time.RFC3339))
			}
		}
		if len(page) < auditPage {
			break
		}
		after = page[len(page)-1].ID
	}
	charges, err := providerCharges(ctx, providerDir)
	if err != nil {
		return a, err
	}
	paid := map[string]int{} // charge id → payments in the ledger
	for after := uint64(0); ; {
		page, err := store.Entries(ctx, after, auditPage)
		if err != nil {
			return a, err
		}
		for _, e := range page {
			if e.Kind == billing.EntryPaymentSucceeded {
				paid[e.ChargeID]++
			}
		}
		if len(page) < auditPage {
			break
		}
		after = page[len(page)-1].Seq
	}
	a.countCharges(charges, paid)
	v, err := svc.Verify(ctx)
	if err != nil {
		return a, err
	}
	if a.Problems = len(v.Problems); a.Problems > 0 {
		p := v.Problems[0]
		a.Problem = fmt.Sprintf("invoice %s, seq %d: %s", p.Invoice, p.Seq, p.Message)
	}
	a.Seconds = time.Since(start).Seconds()
	return a, nil
}

// renewedEnd is the end of the period a seeded subscription anchored at
// anchor is in after renewals renewals: its first period started at the
// anchor.
func renewedEnd(anchor time.Time, renewals int) time.Time {
	end := billing.NextPeriodEnd(anchor, billing.PeriodMonth)
	for range renewals {
		end = billing.AnchoredPeriodEnd(end, anchor, billing.PeriodMonth)
	}
	return end
}

// countCharges counts the renewal charges, the duplicates among them,
// and how they match paid, the ledger's payments by charge id.
func (a *audit) countCharges(charges []billing.Charge, paid map[string]int) {
	perPeriod := map[string]int{} // subscription and period → succeeded charges
	known := map[string]bool{}
	for _, c := range charges {
		known[c.ID] = true
		period, ok := chargePeriod(c.IdempotencyKey)
		if !ok {
			continue
		}
		a.Charges++
		if c.Status != billing.ChargeSucceeded {
			continue
		}
		a.Succeeded++
		if perPeriod[period]++; perPeriod[period] > 1 {
			a.Duplicates++
			if a.Duplicate == "" {
				a.Duplicate = c.IdempotencyKey
			}
		}
		if paid[c.ID] == 0 {
			a.Unrecorded++
		}
	}
	for id, n := range paid {
		if !known[id] {
			a.Unknown += n
		} else if n > 1 {
			a.Unknown += n - 1
		}
	}
}

// chargePeriod returns the subscription and period of a renewal charge's
// key (billing.ChargeKey: sub:ID:PERIOD_END:ATTEMPT), without the
// attempt: dunning retries of one period are charges for the same thing.
func chargePeriod(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "sub:")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", false
	}
	return rest[:i], true
}

// providerCharges reads every charge of the provider on dir, with a
// Provider of its own (several may share a directory).
func providerCharges(ctx context.Context, dir string) ([]billing.Charge, error) {
	p, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Charges(ctx)
}
