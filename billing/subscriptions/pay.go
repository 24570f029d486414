package subscriptions

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/failpoint"
)

// payment is a money step about to be taken: the subscription with its
// Pending charge set (a new one, or the stored one a Version higher),
// the open invoice the charge pays, and what else its first commit
// writes (subscriptions it replaces, the invoice's finalization).
type payment struct {
	sub      billing.Subscription
	inv      billing.Invoice
	replaced []billing.Subscription
	entries  []billing.Entry
}

// chargeTimeout bounds one call to the provider: a pending charge is
// settled by the renewal pass once PendingSettleAfter has passed, and
// the charge it asks for is the same one.
const chargeTimeout = 30 * time.Second

// pay takes a money step: it commits the pending charge (with the
// invoice), charges, and commits the outcome, returning the answer
// recorded for the request that asked, if any. A first commit that loses
// means another request or pass changed the subscription first: nothing
// was charged. A crash after it leaves the pending charge, which the
// request's retry or the renewal pass settles (settle).
func (s *Service) pay(ctx context.Context, p payment) (Answer, renewal, error) {
	subs := append(p.replaced, p.sub)
	ch := billing.Change{At: p.sub.Pending.Since, Subscriptions: subs, Invoice: &p.inv, Entries: p.entries}
	if _, err := s.d.Store.Commit(ctx, ch); err != nil {
		return Answer{}, renewal{}, err
	}
	s.entitlements.drop(p.sub.Account)
	return s.settle(ctx, p.sub, p.inv)
}

// settle asks the provider for sub's pending charge (the one made with
// its key, else a new one: the same request, so at most one charge) and
// commits its outcome with the invoice, the ledger entries and the
// request's answer. A charge the provider made already (by a step that
// died, or one still running) is reconciled: recorded, not made again.
func (s *Service) settle(ctx context.Context, sub billing.Subscription, inv billing.Invoice) (Answer, renewal, error) {
	p := sub.Pending
	failpoint.Hit(FailBeforeCharge)
	c, found, err := s.chargeOnce(ctx, sub, inv)
	if err != nil {
		return Answer{}, renewal{}, err
	}
	failpoint.Hit(FailAfterCharge)
	at := s.now()
	if at.Before(p.Since) {
		at = p.Since // a pass dated ahead of the clock
	}
	ch, status, v, result, err := s.outcome(sub, inv, c, at)
	if err != nil {
		return Answer{}, renewal{}, err
	}
	ans, err := s.commit(ctx, ch, sub.Account, Idem{Key: p.RequestKey, Hash: p.RequestHash}, status, v)
	failpoint.Hit(FailAfterCommit)
	return ans, renewal{result: result, reconciled: found}, err
}

// chargeOnce returns the charge of sub's pending charge: the one the
// provider made with its key already (found), or a new one.
func (s *Service) chargeOnce(ctx context.Context, sub billing.Subscription, inv billing.Invoice) (billing.Charge, bool, error) {
	p := sub.Pending
	ctx, cancel := context.WithTimeout(ctx, chargeTimeout)
	defer cancel()
	c, found, err := s.d.Provider.LookupCharge(ctx, p.Key)
	switch {
	case err != nil:
		return c, false, fmt.Errorf("subscriptions: payment provider: %w", err)
	case found:
		return c, true, nil
	case p.Amount.Amount == 0:
		return billing.Charge{IdempotencyKey: p.Key, Status: billing.ChargeSucceeded, Amount: p.Amount}, false, nil
	case sub.PaymentMethod.ID == "":
		s.d.Metrics.charged("no_card")
		return billing.Charge{IdempotencyKey: p.Key, Status: billing.ChargeDeclined, Amount: p.Amount, DeclineReason: "no card on file"}, false, nil
	}
	c, err = s.d.Provider.Charge(ctx, billing.ChargeRequest{IdempotencyKey: p.Key, Customer: sub.Account,
		PaymentMethod: sub.PaymentMethod.ID, Description: p.Description, Amount: p.Amount})
	if err != nil {
		s.d.Metrics.charged("error")
		return c, false, fmt.Errorf("subscriptions: payment provider: %w", err)
	}
	s.d.Metrics.charged(string(c.Status))
	return c, false, nil
}

// outcome is what the charge c of sub's pending charge changes, at at:
// the subscription (its pending charge cleared), the invoice, the ledger
// entries, and the answer of the request that asked for it.
func (s *Service) outcome(sub billing.Subscription, inv billing.Invoice, c billing.Charge, at time.Time) (billing.Change, int, View, string, error) {
	p := *sub.Pending
	sub.Pending = nil
	ok := c.Status == billing.ChargeSucceeded
	var entries []billing.Entry
	status, result := http.StatusOK, "renewed"
	var err error
	switch {
	case ok:
		inv, _ = billing.Pay(inv, at)
		entries = []billing.Entry{paid(inv, c)}
	case p.Purpose == billing.PurposeRenewal:
		entries = []billing.Entry{failed(inv, c, at)}
	default: // a subscription or an upgrade that did not start
		inv, entries = void(inv, c, at)
	}
	switch {
	case p.Purpose == billing.PurposeSubscribe && ok:
		status = http.StatusCreated
		sub, err = billing.PaymentSucceeded(sub, planOf(p, sub), at)
	case p.Purpose == billing.PurposeSubscribe:
		sub, err = billing.PaymentFailed(sub, at)
	case p.Purpose == billing.PurposeUpgrade && ok:
		sub.Plan, sub.PendingPlan = p.Plan, ""
		sub.Version++
	case p.Purpose == billing.PurposeUpgrade:
		sub.Version++
	case ok:
		sub, err = billing.PaymentSucceeded(sub, planOf(p, sub), at)
	default:
		result = "past_due"
		if sub, err = billing.PaymentFailed(sub, at); err == nil && sub.Status == billing.Canceled {
			inv, _ = billing.MarkUncollectible(inv)
			result = "canceled"
		}
	}
	if err != nil {
		return billing.Change{}, 0, View{}, "", err
	}
	v := ViewOf(sub, &inv)
	if !ok {
		status = http.StatusPaymentRequired
		v.Error = declinedMessage(c.DeclineReason)
	}
	return billing.Change{At: at, Subscriptions: []billing.Subscription{sub}, Invoice: &inv, Entries: entries}, status, v, result, nil
}

// planOf returns the plan a pending charge of sub pays for, as the
// transitions need it: its id, its period (the subscription's, which a
// plan change keeps) and its price.
func planOf(p billing.PendingCharge, sub billing.Subscription) accounts.Plan {
	return accounts.Plan{ID: p.Plan, Period: sub.Period, Price: p.Amount}
}

// settlePending settles sub's pending charge, if it has one, and returns
// the subscription as it is then. A request that finds another's charge
// pending completes it first: whoever started it meant it.
func (s *Service) settlePending(ctx context.Context, sub billing.Subscription) (billing.Subscription, error) {
	if sub.Pending == nil {
		return sub, nil
	}
	inv, err := s.d.Store.Invoice(ctx, sub.Pending.Invoice)
	if err != nil {
		return sub, err
	}
	if _, _, err := s.settle(ctx, sub, inv); err != nil && !isLost(err) {
		return sub, err
	}
	return s.d.Store.Subscription(ctx, sub.ID)
}

// declinedMessage tells the viewer their card was declined, and why.
func declinedMessage(reason string) string {
	reason = strings.TrimPrefix(strings.TrimPrefix(reason, "your card was declined"), ": ")
	if reason == "" {
		return "your card was declined"
	}
	return "your card was declined: " + reason
}

// declined is declinedMessage of the reason an AttachCard error wraps.
func declined(err error) string {
	reason := err.Error()
	if i := strings.LastIndex(reason, "card declined: "); i >= 0 {
		return declinedMessage(reason[i+len("card declined: "):])
	}
	return declinedMessage("")
}
