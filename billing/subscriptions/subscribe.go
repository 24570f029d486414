package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// Subscribe starts account's paid subscription to planID, charged to
// card at once for its first period: 201 with the subscription active
// and its invoice paid, or 402 with it incomplete when the card or the
// charge is declined. A trial or an incomplete subscription the account
// has is replaced (a trial's remaining days are not carried over); an
// active or past-due one is a conflict (change its plan instead).
//
// The Idempotency-Key is required. The charge is written down (pending,
// with the new subscription and its invoice) before the provider is
// asked, under a key derived from the account's subscription as it
// stood (its id and version): two requests racing from one state meet at
// that write, and one charges; a retry of a request that died finds its
// pending charge and completes it.
func (s *Service) Subscribe(ctx context.Context, account, planID string, card billing.Card, idem Idem) (Answer, error) {
	if err := checkIdem(idem, true); err != nil {
		return Answer{}, err
	}
	if a, ok, err := s.replay(ctx, account, idem); err != nil || ok {
		return a, err
	}
	plan, err := s.d.Plans.Plan(ctx, planID)
	if errors.Is(err, accounts.ErrNotFound) {
		return Answer{}, fmt.Errorf("subscriptions: %w: plan %q does not exist", ErrInvalid, planID)
	}
	if err != nil {
		return Answer{}, err
	}
	cur, ans, done, err := s.current(ctx, account, idem)
	switch {
	case done:
		return ans, err
	case errors.Is(err, billing.ErrNotFound):
	case err != nil:
		return Answer{}, err
	}
	now := s.now()
	var replaced []billing.Subscription
	key := "acct:" + account + ":subscribe:none"
	if cur.ID != "" {
		if cur.Status == billing.Active || cur.Status == billing.PastDue {
			return Answer{}, fmt.Errorf("subscriptions: %w: the account is subscribed already (%s, on plan %s); change its plan instead", ErrConflict, cur.Status, cur.Plan)
		}
		key = fmt.Sprintf("acct:%s:subscribe:%s:%d", account, cur.ID, cur.Version)
		if cur.Status != billing.Canceled {
			old := cur
			old.Status, old.CanceledAt, old.Version = billing.Canceled, now, old.Version+1
			replaced = append(replaced, old)
		}
	}
	sub, err := billing.Start(derivedID("sub_", key), account, plan, 0, now)
	if err != nil {
		return Answer{}, err
	}
	pm, err := s.d.Provider.AttachCard(ctx, account, card)
	switch {
	case errors.Is(err, billing.ErrDeclined):
		v := ViewOf(sub, nil)
		v.Error = declined(err)
		return s.commit(ctx, billing.Change{At: now, Subscriptions: append(replaced, sub)}, account, idem, http.StatusPaymentRequired, v)
	case errors.Is(err, billing.ErrInvalidCard):
		return Answer{}, fmt.Errorf("subscriptions: %w: %w", ErrInvalid, err)
	case err != nil:
		return Answer{}, fmt.Errorf("subscriptions: payment provider: %w", err)
	}
	sub.PaymentMethod = pm
	inv, err := s.invoice(derivedID("in_", key), sub, []billing.Line{billing.PlanLine(plan, sub.CurrentPeriodStart, sub.CurrentPeriodEnd)}, now)
	if err != nil {
		return Answer{}, err
	}
	sub.Pending = pending(key, billing.PurposeSubscribe, inv, "Fillcast "+plan.Name, plan.ID, now, idem)
	return s.payRequest(ctx, payment{sub: sub, inv: inv, replaced: replaced, entries: []billing.Entry{finalized(inv)}}, idem)
}

// pending returns the pending charge of inv's total under key.
func pending(key, purpose string, inv billing.Invoice, what, plan string, now time.Time, idem Idem) *billing.PendingCharge {
	return &billing.PendingCharge{Key: key, Purpose: purpose, Invoice: inv.ID, Amount: inv.Total,
		Description: what + " (invoice " + inv.ID + ")", Plan: plan, Since: now, RequestKey: idem.Key, RequestHash: idem.Hash}
}

// payRequest is pay for a request: a first commit that lost to a retry
// of the same request replays its answer.
func (s *Service) payRequest(ctx context.Context, p payment, idem Idem) (Answer, error) {
	ans, _, err := s.pay(ctx, p)
	if isLost(err) {
		if a, ok, rerr := s.replay(ctx, p.sub.Account, idem); rerr != nil || ok {
			return a, rerr
		}
		return Answer{}, fmt.Errorf("subscriptions: %w: the subscription changed while the request ran; look at it and try again", ErrConflict)
	}
	return ans, err
}

// current returns account's subscription with its pending charge, if
// any, settled first. When the pending charge is this request's own (a
// retry of a request that died), done is set and ans is that request's
// answer, the charge completed.
func (s *Service) current(ctx context.Context, account string, idem Idem) (sub billing.Subscription, ans Answer, done bool, err error) {
	if sub, err = s.d.Store.CurrentSubscription(ctx, account); err != nil {
		return sub, Answer{}, false, err
	}
	if p := sub.Pending; p != nil && idem.Key != "" && p.RequestKey == idem.Key {
		if p.RequestHash != idem.Hash {
			return sub, Answer{}, true, fmt.Errorf("subscriptions: Idempotency-Key %q: %w", idem.Key, ErrKeyReused)
		}
		ans, err = s.resume(ctx, sub)
		return sub, ans, true, err
	}
	sub, err = s.settlePending(ctx, sub)
	return sub, Answer{}, false, err
}

// resume completes the pending charge of sub for the request that
// started it, and answers as that request would have.
func (s *Service) resume(ctx context.Context, sub billing.Subscription) (Answer, error) {
	inv, err := s.d.Store.Invoice(ctx, sub.Pending.Invoice)
	if err != nil {
		return Answer{}, err
	}
	idem := Idem{Key: sub.Pending.RequestKey, Hash: sub.Pending.RequestHash}
	ans, _, err := s.settle(ctx, sub, inv)
	if isLost(err) {
		if a, ok, rerr := s.replay(ctx, sub.Account, idem); rerr != nil || ok {
			return a, rerr
		}
	}
	return ans, err
}

// invoice returns a new open invoice of lines for sub, finalized at now;
// the store numbers it when it commits.
func (s *Service) invoice(id string, sub billing.Subscription, lines []billing.Line, now time.Time) (billing.Invoice, error) {
	inv, err := billing.NewInvoice(id, sub.Account, sub.ID, id, lines, now)
	if err != nil {
		return inv, err
	}
	inv.Status, inv.Finalized = billing.Open, now
	return inv, nil
}

// finalized is the ledger entry of inv's finalization.
func finalized(inv billing.Invoice) billing.Entry {
	return billing.Entry{At: inv.Finalized, Account: inv.Account, Invoice: inv.ID, Kind: billing.EntryInvoiceFinalized,
		Amount: inv.Total, IdempotencyKey: inv.ID}
}

// paid is the ledger entry of c paying inv.
func paid(inv billing.Invoice, c billing.Charge) billing.Entry {
	return billing.Entry{At: inv.PaidAt, Account: inv.Account, Invoice: inv.ID, Kind: billing.EntryPaymentSucceeded,
		Amount: inv.Total, ChargeID: c.ID, IdempotencyKey: c.IdempotencyKey}
}

// failed is the ledger entry of the declined charge c of inv.
func failed(inv billing.Invoice, c billing.Charge, at time.Time) billing.Entry {
	return billing.Entry{At: at, Account: inv.Account, Invoice: inv.ID, Kind: billing.EntryPaymentFailed,
		Amount: inv.Total, ChargeID: c.ID, IdempotencyKey: c.IdempotencyKey}
}

// void returns inv void after the declined charge c, which started
// nothing, with the entries: the failure, and the credit that cancels
// what the invoice made owed.
func void(inv billing.Invoice, c billing.Charge, at time.Time) (billing.Invoice, []billing.Entry) {
	inv, _ = billing.VoidInvoice(inv)
	return inv, []billing.Entry{failed(inv, c, at), {At: at, Account: inv.Account, Invoice: inv.ID,
		Kind: billing.EntryCredit, Amount: inv.Total, IdempotencyKey: "void:" + inv.ID}}
}

// ChangePlan moves account's subscription to planID: an upgrade (a
// dearer plan) at once, charging the prorated difference for the rest of
// the period (402, nothing changed, when declined); a downgrade at the
// period's end. A trialing subscription changes plan at once, free.
func (s *Service) ChangePlan(ctx context.Context, account, planID string, idem Idem) (Answer, error) {
	if err := checkIdem(idem, true); err != nil {
		return Answer{}, err
	}
	if a, ok, err := s.replay(ctx, account, idem); err != nil || ok {
		return a, err
	}
	sub, ans, done, err := s.current(ctx, account, idem)
	if done || err != nil {
		return ans, err
	}
	cur, err := s.d.Plans.Plan(ctx, sub.Plan)
	if err != nil {
		return Answer{}, err
	}
	next, err := s.d.Plans.Plan(ctx, planID)
	if errors.Is(err, accounts.ErrNotFound) {
		return Answer{}, fmt.Errorf("subscriptions: %w: plan %q does not exist", ErrInvalid, planID)
	}
	if err != nil {
		return Answer{}, err
	}
	now := s.now()
	ch := billing.Change{At: now}
	if up, err := billing.Compare(next.Price, cur.Price); err != nil || up <= 0 {
		changed, err := billing.Downgrade(sub, cur, next)
		if err != nil {
			return Answer{}, transitionError(err)
		}
		if changed.Version != sub.Version {
			ch.Subscriptions = []billing.Subscription{changed}
		}
		return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(changed, nil))
	}
	changed, lines, err := billing.Upgrade(sub, cur, next, now)
	if err != nil {
		return Answer{}, transitionError(err)
	}
	if len(lines) == 0 {
		ch.Subscriptions = []billing.Subscription{changed}
		return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(changed, nil))
	}
	key := fmt.Sprintf("sub:%s:v%d:upgrade", sub.ID, sub.Version)
	inv, err := s.invoice(derivedID("in_", key), sub, lines, now)
	if err != nil {
		return Answer{}, err
	}
	sub.Pending = pending(key, billing.PurposeUpgrade, inv, "Fillcast upgrade to "+next.Name, next.ID, now, idem)
	sub.Version++
	return s.payRequest(ctx, payment{sub: sub, inv: inv, entries: []billing.Entry{finalized(inv)}}, idem)
}

// transitionError maps a transition the subscription's state refuses to
// ErrConflict and a change the rules refuse to ErrInvalid.
func transitionError(err error) error {
	if errors.Is(err, billing.ErrIllegal) {
		return fmt.Errorf("subscriptions: %w: %w", ErrConflict, err)
	}
	return fmt.Errorf("subscriptions: %w: %w", ErrInvalid, err)
}

// Cancel sets account's subscription to end at its period's end (an
// incomplete one ends at once). Asking again changes nothing.
func (s *Service) Cancel(ctx context.Context, account string, idem Idem) (Answer, error) {
	if err := checkIdem(idem, false); err != nil {
		return Answer{}, err
	}
	if a, ok, err := s.replay(ctx, account, idem); err != nil || ok {
		return a, err
	}
	sub, ans, done, err := s.current(ctx, account, idem)
	if done || err != nil {
		return ans, err
	}
	next, err := billing.CancelAtPeriodEnd(sub, s.now())
	if err != nil {
		return Answer{}, transitionError(err)
	}
	if next.Version == sub.Version && idem.Key == "" {
		return s.answer(http.StatusOK, ViewOf(sub, nil))
	}
	ch := billing.Change{At: s.now()}
	if next.Version != sub.Version {
		ch.Subscriptions = []billing.Subscription{next}
	}
	return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(next, nil))
}
