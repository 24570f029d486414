package subscriptions

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// Entitlement returns the id of the plan account a may play on now: its
// subscription's, while billing.Entitled says so (active, trialing, or
// past due within Config.Grace). Otherwise it returns an error wrapping
// ErrPaymentRequired that says why and what to do. An account whose
// sign-up subscription was never recorded (the write failed) is judged by
// the trial it would have. Answers are cached for Config.EntitlementTTL;
// this node's own changes to a subscription drop its account's.
func (s *Service) Entitlement(ctx context.Context, a accounts.Account) (string, error) {
	now := s.d.Now()
	if e, ok := s.entitlements.get(a.ID, now); ok {
		return e.plan, e.err
	}
	sub, err := s.d.Store.CurrentSubscription(ctx, a.ID)
	if errors.Is(err, billing.ErrNotFound) {
		sub, err = s.signUpSubscription(ctx, a)
	}
	if err != nil {
		return "", err
	}
	e := entitlement{plan: sub.Plan}
	if !billing.Entitled(sub, now, s.cfg.Grace) {
		e.plan, e.err = "", fmt.Errorf("%w: %s", ErrPaymentRequired, why(sub, now))
	}
	s.entitlements.put(a.ID, e, now.Add(s.cfg.EntitlementTTL))
	return e.plan, e.err
}

// why says why sub does not entitle to play, and what to do.
func why(sub billing.Subscription, now time.Time) string {
	day := func(t time.Time) string { return t.UTC().Format("2 January 2006") }
	switch {
	case sub.Status == billing.Incomplete && sub.PaymentMethod.ID == "" && !sub.TrialEnd.IsZero():
		return "your free trial ended on " + day(sub.TrialEnd) + "; choose a plan and add a card to keep watching"
	}
	switch sub.Status {
	case billing.Incomplete:
		return "the first payment of your subscription has not gone through; subscribe again with another card"
	case billing.Canceled:
		return "your subscription ended on " + day(sub.CanceledAt) + "; choose a plan to subscribe again"
	case billing.PastDue:
		return "the payment due on " + day(sub.PastDueSince) + " failed and the grace period is over; it is tried again 1, 3 and 5 days after it was due"
	}
	return "your subscription's renewal on " + day(sub.CurrentPeriodEnd) + " has not been paid"
}

type entitlement struct {
	plan  string
	err   error
	until time.Time
}

// entitlementCache keeps recent answers of Entitlement, up to
// maxEntitlements accounts (emptied when full: a cache, not a store).
type entitlementCache struct {
	mu sync.Mutex
	m  map[string]entitlement
}

const maxEntitlements = 100_000

func newEntitlementCache() *entitlementCache {
	return &entitlementCache{m: map[string]entitlement{}}
}

func (c *entitlementCache) get(account string, now time.Time) (entitlement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[account]
	return e, ok && now.Before(e.until)
}

func (c *entitlementCache) put(account string, e entitlement, until time.Time) {
	e.until = until
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxEntitlements {
		clear(c.m)
	}
	c.m[account] = e
}

func (c *entitlementCache) drop(account string) {
	c.mu.Lock()
	delete(c.m, account)
	c.mu.Unlock()
}
