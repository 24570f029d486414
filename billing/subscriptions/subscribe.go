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
// The Idempotency-Key is required; the charge's own key derives from the
// account's subscription as it stood (its id and version), so two
// requests racing from the same state charge once, and a retry after a
// crash finds the charge (LookupCharge) instead of making another.
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
	now := s.now()
	var replaced []billing.Subscription
	key := "acct:" + account + ":subscribe:none"
	switch cur, err := s.d.Store.CurrentSubscription(ctx, account); {
	case errors.Is(err, billing.ErrNotFound):
	case err != nil:
		return Answer{}, err
	case cur.Status == billing.Active || cur.Status == billing.PastDue:
		return Answer{}, fmt.Errorf("subscriptions: %w: the account is subscribed already (%s, on plan %s); change its plan instead", ErrConflict, cur.Status, cur.Plan)
	default:
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
	ch := billing.Change{At: now}
	prior, found, err := s.d.Provider.LookupCharge(ctx, key)
	if err != nil {
		return Answer{}, fmt.Errorf("subscriptions: payment provider: %w", err)
	}
	pm, err := s.d.Provider.AttachCard(ctx, account, card)
	switch {
	case errors.Is(err, billing.ErrDeclined) && !found:
		ch.Subscriptions = append(replaced, sub)
		v := ViewOf(sub, nil)
		v.Error = declined(err)
		return s.commit(ctx, ch, account, idem, http.StatusPaymentRequired, v)
	case errors.Is(err, billing.ErrDeclined):
	case errors.Is(err, billing.ErrInvalidCard):
		return Answer{}, fmt.Errorf("subscriptions: %w: %w", ErrInvalid, err)
	case err != nil:
		return Answer{}, fmt.Errorf("subscriptions: payment provider: %w", err)
	}
	if found {
		pm.ID = prior.PaymentMethod
	}
	sub.PaymentMethod = pm
	inv, err := s.invoice(derivedID("in_", key), sub, []billing.Line{billing.PlanLine(plan, sub.CurrentPeriodStart, sub.CurrentPeriodEnd)}, now)
	if err != nil {
		return Answer{}, err
	}
	ch.Entries = append(ch.Entries, finalized(inv))
	var made *billing.Charge
	if found {
		made = &prior
	}
	c, _, err := s.chargeOnce(ctx, key, sub, inv, "Fillcast "+plan.Name, made)
	if err != nil {
		return Answer{}, err
	}
	status := http.StatusCreated
	if c.Status == billing.ChargeSucceeded {
		if sub, err = billing.PaymentSucceeded(sub, plan, now); err != nil {
			return Answer{}, err
		}
		inv, _ = billing.Pay(inv, now)
		ch.Entries = append(ch.Entries, paid(inv, c))
	} else {
		status = http.StatusPaymentRequired
		if sub, err = billing.PaymentFailed(sub, now); err != nil {
			return Answer{}, err
		}
		var voided []billing.Entry
		inv, voided = void(inv, c)
		ch.Entries = append(ch.Entries, voided...)
	}
	sub.Version = 1 // created by this change, in its state after the charge
	ch.Subscriptions, ch.Invoice = append(replaced, sub), &inv
	v := ViewOf(sub, &inv)
	if status == http.StatusPaymentRequired {
		v.Error = "your card was declined: " + c.DeclineReason
	}
	return s.commit(ctx, ch, account, idem, status, v)
}

// declined returns the provider's reason for refusing a card, for the
// viewer.
func declined(err error) string {
	return "your card was declined: " + errors.Unwrap(err).Error()
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

// charge asks the provider for inv's total from sub's card with key,
// counting the outcome. A charge of nothing succeeds without the
// provider.
func (s *Service) charge(ctx context.Context, key string, sub billing.Subscription, inv billing.Invoice, what string) (billing.Charge, error) {
	if inv.Total.Amount == 0 {
		return billing.Charge{IdempotencyKey: key, Status: billing.ChargeSucceeded, Amount: inv.Total}, nil
	}
	if sub.PaymentMethod.ID == "" {
		s.d.Metrics.charged("no_card")
		return billing.Charge{IdempotencyKey: key, Status: billing.ChargeDeclined, Amount: inv.Total,
			DeclineReason: "no card on file"}, nil
	}
	c, err := s.d.Provider.Charge(ctx, billing.ChargeRequest{IdempotencyKey: key, Customer: sub.Account,
		PaymentMethod: sub.PaymentMethod.ID, Description: what + " (invoice " + inv.ID + ")", Amount: inv.Total})
	if errors.Is(err, billing.ErrIdempotencyMismatch) {
		return c, fmt.Errorf("subscriptions: %w: another request from the same state is paying for something else; look at the subscription and try again", ErrConflict)
	}
	if err != nil {
		s.d.Metrics.charged("error")
		return c, fmt.Errorf("subscriptions: payment provider: %w", err)
	}
	s.d.Metrics.charged(string(c.Status))
	return c, nil
}

// errOtherAmount is a charge found by its key for another amount than
// the one due now.
var errOtherAmount = errors.New("charged another amount")

// chargeOnce returns the charge of inv's total with key: made, when the
// caller found it already, else the one the provider has with key, else
// a new one, and whether it was made already. A charge made already for
// another amount is a request from the same state paying for something
// else: ErrConflict.
func (s *Service) chargeOnce(ctx context.Context, key string, sub billing.Subscription, inv billing.Invoice, what string, made *billing.Charge) (billing.Charge, bool, error) {
	c, found := billing.Charge{}, made != nil
	if found {
		c = *made
	} else {
		var err error
		if c, found, err = s.d.Provider.LookupCharge(ctx, key); err != nil {
			return c, false, fmt.Errorf("subscriptions: payment provider: %w", err)
		}
	}
	if !found {
		c, err := s.charge(ctx, key, sub, inv, what)
		return c, false, err
	}
	if c.Amount != inv.Total {
		return c, true, fmt.Errorf("subscriptions: %w: %w: a request from the same state charged %s, not %s; look at the subscription and try again", ErrConflict, errOtherAmount, billing.Format(c.Amount), billing.Format(inv.Total))
	}
	return c, true, nil
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
func void(inv billing.Invoice, c billing.Charge) (billing.Invoice, []billing.Entry) {
	at := inv.Finalized
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
	sub, err := s.d.Store.CurrentSubscription(ctx, account)
	if err != nil {
		return Answer{}, err
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
		if sub, err = billing.Downgrade(sub, cur, next); err != nil {
			return Answer{}, transitionError(err)
		}
		ch.Subscriptions = []billing.Subscription{sub}
		return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(sub, nil))
	}
	key := fmt.Sprintf("sub:%s:v%d:upgrade", sub.ID, sub.Version)
	changed, lines, err := billing.Upgrade(sub, cur, next, now)
	if err != nil {
		return Answer{}, transitionError(err)
	}
	ch.Subscriptions = []billing.Subscription{changed}
	if len(lines) == 0 {
		return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(changed, nil))
	}
	inv, err := s.invoice(derivedID("in_", key), sub, lines, now)
	if err != nil {
		return Answer{}, err
	}
	ch.Entries = []billing.Entry{finalized(inv)}
	c, _, err := s.chargeOnce(ctx, key, sub, inv, "Fillcast upgrade to "+next.Name, nil)
	if err != nil {
		return Answer{}, err
	}
	if c.Status != billing.ChargeSucceeded {
		// Nothing changes but the record of the attempt; the version
		// moves so that the next attempt has a key of its own.
		sub.Version++
		var entries []billing.Entry
		inv, entries = void(inv, c)
		ch.Subscriptions, ch.Invoice, ch.Entries = []billing.Subscription{sub}, &inv, append(ch.Entries, entries...)
		v := ViewOf(sub, &inv)
		v.Error = "your card was declined: " + c.DeclineReason
		return s.commit(ctx, ch, account, idem, http.StatusPaymentRequired, v)
	}
	inv, _ = billing.Pay(inv, now)
	ch.Invoice, ch.Entries = &inv, append(ch.Entries, paid(inv, c))
	return s.commit(ctx, ch, account, idem, http.StatusOK, ViewOf(changed, &inv))
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
	sub, err := s.d.Store.CurrentSubscription(ctx, account)
	if err != nil {
		return Answer{}, err
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
