package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fillcast/fillcast/billing"
)

// Idem is an idempotent request: the client's Idempotency-Key and a hash
// of what the request asks (method, route, body).
type Idem struct{ Key, Hash string }

// Answer is the answer to a request that can move money, as recorded for
// its retries: an HTTP status and a JSON body.
type Answer struct {
	Status int
	Body   json.RawMessage
	// Replayed is set when the answer is the recorded one of an earlier
	// request with the same key.
	Replayed bool
}

// View is a subscription as the API shows it.
type View struct {
	ID                 string         `json:"id"`
	Status             billing.Status `json:"status"`
	Plan               string         `json:"plan"`
	CurrentPeriodStart time.Time      `json:"current_period_start"`
	CurrentPeriodEnd   time.Time      `json:"current_period_end"`
	CancelAtPeriodEnd  bool           `json:"cancel_at_period_end"`
	PendingPlan        string         `json:"pending_plan,omitempty"`
	TrialEnd           time.Time      `json:"trial_end,omitzero"`
	PastDueSince       time.Time      `json:"past_due_since,omitzero"`
	// Card is the brand and last four digits of the card charged.
	Card    string       `json:"card,omitempty"`
	Invoice *InvoiceView `json:"invoice,omitempty"`
	// Error says why a payment was declined (with status 402).
	Error string `json:"error,omitempty"`
}

// InvoiceView is an invoice in a subscription's answer.
type InvoiceView struct {
	ID       string                `json:"id"`
	Amount   int64                 `json:"amount"`
	Currency string                `json:"currency"`
	Status   billing.InvoiceStatus `json:"status"`
}

// ViewOf returns the API's view of sub, with inv if not nil.
func ViewOf(sub billing.Subscription, inv *billing.Invoice) View {
	v := View{ID: sub.ID, Status: sub.Status, Plan: sub.Plan, CurrentPeriodStart: sub.CurrentPeriodStart,
		CurrentPeriodEnd: sub.CurrentPeriodEnd, CancelAtPeriodEnd: sub.CancelAtPeriodEnd,
		PendingPlan: sub.PendingPlan, TrialEnd: sub.TrialEnd, PastDueSince: sub.PastDueSince}
	if pm := sub.PaymentMethod; pm.Last4 != "" {
		v.Card = pm.Brand + " •••• " + pm.Last4
	}
	if inv != nil {
		v.Invoice = &InvoiceView{ID: inv.ID, Amount: inv.Total.Amount, Currency: inv.Total.Currency, Status: inv.Status}
	}
	return v
}

// Current returns the account's subscription as the API shows it.
func (s *Service) Current(ctx context.Context, account string) (View, error) {
	sub, err := s.d.Store.CurrentSubscription(ctx, account)
	if err != nil {
		return View{}, err
	}
	return ViewOf(sub, nil), nil
}

// Invoices returns an account's invoices, newest first.
func (s *Service) Invoices(ctx context.Context, account string) ([]billing.Invoice, error) {
	return s.d.Store.AccountInvoices(ctx, account)
}

// Invoice returns one of an account's invoices: ErrNotFound for another
// account's, as for none.
func (s *Service) Invoice(ctx context.Context, account, id string) (billing.Invoice, error) {
	inv, err := s.d.Store.Invoice(ctx, id)
	if err == nil && inv.Account != account {
		err = fmt.Errorf("subscriptions: invoice %q: %w", id, billing.ErrNotFound)
	}
	return inv, err
}

// replay returns the recorded answer of the account's request with
// idem's key, if there is one: ErrKeyReused if it was another request.
func (s *Service) replay(ctx context.Context, account string, idem Idem) (Answer, bool, error) {
	if idem.Key == "" {
		return Answer{}, false, nil
	}
	r, err := s.d.Store.Request(ctx, account, idem.Key)
	switch {
	case errors.Is(err, billing.ErrNotFound):
		return Answer{}, false, nil
	case err != nil:
		return Answer{}, false, err
	case r.Hash != idem.Hash:
		return Answer{}, false, fmt.Errorf("subscriptions: Idempotency-Key %q: %w", idem.Key, ErrKeyReused)
	}
	return Answer{Status: r.Status, Body: r.Body, Replayed: true}, true, nil
}

// checkIdem refuses a request without a usable Idempotency-Key where one
// is required.
func checkIdem(idem Idem, required bool) error {
	switch {
	case idem.Key == "" && required:
		return fmt.Errorf("subscriptions: %w: an Idempotency-Key header is required on requests that can move money", ErrInvalid)
	case len(idem.Key) > billing.MaxIdempotencyKeyLen:
		return fmt.Errorf("subscriptions: %w: the Idempotency-Key is longer than %d characters", ErrInvalid, billing.MaxIdempotencyKeyLen)
	case idem.Key != "" && idem.Hash == "":
		return fmt.Errorf("subscriptions: %w: an idempotent request needs its hash", ErrInvalid)
	}
	return nil
}

// commit writes ch with the answer (status, v) recorded under idem's key,
// and returns the answer. When the commit loses to a retry of the same
// request, that request's recorded answer is returned instead; when it
// loses to another, ErrConflict.
func (s *Service) commit(ctx context.Context, ch billing.Change, account string, idem Idem, status int, v View) (Answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return Answer{}, fmt.Errorf("subscriptions: encode answer: %w", err)
	}
	if idem.Key != "" {
		ch.Request = &billing.Request{Account: account, Key: idem.Key, Hash: idem.Hash, Status: status, Body: body, Created: ch.At}
	}
	_, err = s.d.Store.Commit(ctx, ch)
	s.entitlements.drop(account)
	if isLost(err) {
		if a, ok, rerr := s.replay(ctx, account, idem); rerr != nil || ok {
			return a, rerr
		}
		return Answer{}, fmt.Errorf("subscriptions: %w: the subscription changed while the request ran; look at it and try again", ErrConflict)
	}
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: status, Body: body}, nil
}

// answer returns v as an answer with status, recording nothing.
func (s *Service) answer(status int, v View) (Answer, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return Answer{}, fmt.Errorf("subscriptions: encode answer: %w", err)
	}
	return Answer{Status: status, Body: body}, nil
}
