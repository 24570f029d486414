package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fillcast/fillcast/billing"
)

// PassResult counts what a renewal pass did.
type PassResult struct {
	AsOf time.Time `json:"as_of"`
	// Due is how many subscriptions were due.
	Due int `json:"due"`
	// Renewed were charged and are active for their next period.
	Renewed int `json:"renewed"`
	// PastDue were declined and will be retried.
	PastDue int `json:"past_due"`
	// Canceled ended: at their period's end as asked, or after the last
	// retry.
	Canceled int `json:"canceled"`
	// Reconciled were charged by an earlier pass that died before
	// recording it: found by the charge's key, recorded, not charged
	// again. They count in Renewed or PastDue too.
	Reconciled int `json:"reconciled"`
	// Skipped were taken care of by another pass meanwhile.
	Skipped int `json:"skipped"`
	// Settled are charges a request asked for and did not see through
	// (its client gave up, or its node died), completed by the pass.
	Settled int `json:"settled"`
	// TrialsEnded are trials that ended without a card: incomplete now.
	TrialsEnded int `json:"trials_ended"`
	// Failed could not be charged or recorded (the provider or the store
	// failing); the next pass tries again.
	Failed  int     `json:"failed"`
	Seconds float64 `json:"seconds"`
}

// Failpoints of a renewal, for the crash tests (internal/failpoint).
const (
	FailBeforeCharge = "billing-renew-before-charge"
	FailAfterCharge  = "billing-renew-after-charge"
	FailAfterCommit  = "billing-renew-after-commit"
)

// Renew runs the renewal pass for every subscription due by asOf:
// charges renewals and dunning retries (days 1, 3 and 5 after a failed
// one, then cancels), and ends subscriptions canceled at their period's
// end. It is safe to run twice, at once or after a crash (see the
// package doc). Transitions are dated asOf, or now if later. It also
// forgets idempotent requests older than Config.RequestTTL.
func (s *Service) Renew(ctx context.Context, asOf time.Time) (PassResult, error) {
	start := time.Now()
	at := asOf.UTC().Truncate(time.Microsecond)
	if now := s.now(); now.After(at) {
		at = now
	}
	res := PassResult{AsOf: asOf.UTC()}
	// A pass on a follower reads its own copy: first the writes made
	// through the others.
	if err := s.sync(ctx); err != nil {
		return res, fmt.Errorf("subscriptions: renewal pass: %w", err)
	}
	var mu sync.Mutex
	count := func(r renewal) {
		mu.Lock()
		defer mu.Unlock()
		res.Due++
		switch r.result {
		case "renewed":
			res.Renewed++
		case "past_due":
			res.PastDue++
		case "canceled":
			res.Canceled++
		case "skipped":
			res.Skipped++
		case "settled":
			res.Settled++
		case "trial_ended":
			res.TrialsEnded++
		case "failed":
			res.Failed++
		}
		if r.reconciled {
			res.Reconciled++
			s.d.Metrics.renewed("reconciled", 1)
		}
		s.d.Metrics.renewed(r.result, 1)
	}
	work := make(chan billing.Subscription)
	var wg sync.WaitGroup
	for range s.cfg.PassWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sub := range work {
				r := s.renewOne(ctx, sub, at)
				if r.err != nil {
					s.d.Log.Warn("billing: renewal", "subscription", sub.ID, "err", r.err)
				}
				count(r)
			}
		}()
	}
	var err error
	for after := ""; ctx.Err() == nil; {
		var due []billing.Subscription
		if due, err = s.d.Store.DueSubscriptions(ctx, asOf, after, s.cfg.PassPage); err != nil || len(due) == 0 {
			break
		}
		for _, sub := range due {
			work <- sub
		}
		after = due[len(due)-1].ID
	}
	close(work)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	if _, perr := s.d.Store.PruneRequests(ctx, s.now().Add(-s.cfg.RequestTTL)); perr != nil && err == nil {
		s.d.Log.Warn("billing: forget old idempotent requests", "err", perr)
	}
	res.Seconds = time.Since(start).Seconds()
	s.d.Metrics.pass(res.Seconds)
	if err != nil {
		return res, fmt.Errorf("subscriptions: renewal pass: %w", err)
	}
	return res, nil
}

// renewal is what renewOne did.
type renewal struct {
	result     string // renewed, past_due, canceled, trial_ended, settled, skipped, failed
	reconciled bool
	err        error
}

// renewOne acts on one subscription due at at.
func (s *Service) renewOne(ctx context.Context, sub billing.Subscription, at time.Time) renewal {
	r := s.renewStep(ctx, sub, at)
	if isLost(r.err) {
		return renewal{result: "skipped"} // another pass or a request got there first
	}
	if r.err != nil {
		r.result = "failed"
	}
	s.entitlements.drop(sub.Account)
	return r
}

func (s *Service) renewStep(ctx context.Context, sub billing.Subscription, at time.Time) renewal {
	if p := sub.Pending; p != nil {
		inv, err := s.d.Store.Invoice(ctx, p.Invoice)
		if err != nil {
			return renewal{err: err}
		}
		_, r, err := s.settle(ctx, sub, inv)
		if err != nil || p.Purpose == billing.PurposeRenewal {
			r.err = err
			return r
		}
		// A request's charge, which its request did not see through:
		// settled, go on with the subscription as it is now.
		if sub, err = s.d.Store.Subscription(ctx, sub.ID); err != nil {
			return renewal{err: err}
		}
		if billing.NextAction(sub, at) == billing.ActionNone {
			return renewal{result: "settled", reconciled: r.reconciled}
		}
	}
	inv, err := s.d.Store.Invoice(ctx, periodInvoice(sub))
	if err != nil && !errors.Is(err, billing.ErrNotFound) {
		return renewal{err: err}
	}
	haveInvoice := err == nil
	ch := billing.Change{At: at}
	switch {
	case billing.NextAction(sub, at) == billing.ActionNone:
		return renewal{result: "skipped"}
	case billing.NextAction(sub, at) == billing.ActionCancel:
		next, err := billing.EndPeriod(sub, at)
		if err != nil {
			return renewal{err: err}
		}
		ch.Subscriptions = []billing.Subscription{next}
		if haveInvoice && inv.Status == billing.Open {
			inv, _ = billing.MarkUncollectible(inv)
			ch.Invoice = &inv
		}
		_, err = s.d.Store.Commit(ctx, ch)
		return renewal{result: "canceled", err: err}
	case sub.Status == billing.Trialing && sub.PaymentMethod.ID == "":
		next, err := billing.EndTrial(sub, at)
		if err != nil {
			return renewal{err: err}
		}
		ch.Subscriptions = []billing.Subscription{next}
		_, err = s.d.Store.Commit(ctx, ch)
		return renewal{result: "trial_ended", err: err}
	}
	plan, err := s.d.Plans.Plan(ctx, billing.RenewalPlan(sub))
	if err != nil {
		return renewal{err: fmt.Errorf("plan %s: %w", billing.RenewalPlan(sub), err)}
	}
	renewed, err := billing.PaymentSucceeded(sub, plan, at)
	if err != nil {
		return renewal{err: err}
	}
	var entries []billing.Entry
	if !haveInvoice {
		line := billing.PlanLine(plan, renewed.CurrentPeriodStart, renewed.CurrentPeriodEnd)
		if inv, err = s.invoice(periodInvoice(sub), sub, []billing.Line{line}, at); err != nil {
			return renewal{err: err}
		}
		entries = []billing.Entry{finalized(inv)}
	}
	sub.Pending = pending(billing.ChargeKey(sub), billing.PurposeRenewal, inv, "Fillcast "+plan.Name, plan.ID, at, Idem{})
	sub.Version++
	_, r, err := s.pay(ctx, payment{sub: sub, inv: inv, entries: entries})
	r.err = err
	return r
}

// periodInvoice is the id of the invoice of the period sub is due to
// renew into: one per period, however many retries charge it.
func periodInvoice(sub billing.Subscription) string {
	return derivedID("in_", "renew", sub.ID, sub.CurrentPeriodEnd.UTC().Format(time.RFC3339Nano))
}

// Store returns the store the service writes to.
func (s *Service) Store() billing.Store { return s.d.Store }
