// Package subscriptions is billing's service: it puts the rules of
// package billing to work over a billing.Store and a
// billing.PaymentProvider. Viewers subscribe, change plan and cancel;
// the renewal pass charges what is due; playback asks it whether an
// account is entitled to its plan.
//
// Every step that moves money follows one pattern, so that a crash or a
// retry at any point neither charges twice nor loses a payment:
//
//  1. read the subscription (its Version) and derive the provider's
//     idempotency key from what is being paid for — the subscription and
//     period and attempt (billing.ChargeKey) for a renewal, the
//     subscription and its version for a plan change, the client's
//     Idempotency-Key for a new subscription — never from the time or a
//     random number;
//  2. ask the provider for the charge made with that key
//     (LookupCharge), and charge only if there is none: after a crash
//     between the provider's answer and step 3, this finds the payment;
//  3. commit the subscription's new state (compare-and-set on its
//     Version), the invoice's, the ledger entries and, for a request,
//     its answer, in one billing.Change. A pass or request that loses
//     the compare-and-set charged with the same key, so the provider
//     moved money once; the winner recorded it.
package subscriptions

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/billing"
)

// Config configures a Service. Zero values mean the defaults named.
type Config struct {
	// TrialDays is the trial of a plan that does not set its own
	// (accounts.Plan.TrialDays). Zero means 7; negative, none.
	TrialDays int
	// Grace is how long a past-due subscription still plays. Zero means
	// billing.DefaultGrace (3 days).
	Grace time.Duration
	// RequestTTL is how long an idempotent request's answer is kept.
	// Zero means 48 h; at least 24 h.
	RequestTTL time.Duration
	// PassWorkers is how many subscriptions a renewal pass charges at
	// once. Zero means 16.
	PassWorkers int
	// PassPage is how many due subscriptions a pass reads at a time.
	// Zero means 10,000: the embedded store scans its whole table for a
	// page, so fewer, larger pages cost less.
	PassPage int
	// EntitlementTTL is how long an account's entitlement is trusted
	// without asking the store again. Zero means 5 s.
	EntitlementTTL time.Duration
}

// Validate reports the first problem of c as a *fillcast.ConfigError.
func (c Config) Validate() error {
	switch {
	case c.Grace < 0:
		return fillcast.ConfigErrorf("subscriptions", "Grace", "%v is negative", c.Grace)
	case c.RequestTTL != 0 && c.RequestTTL < 24*time.Hour:
		return fillcast.ConfigErrorf("subscriptions", "RequestTTL", "%v: at least 24h, as the API promises", c.RequestTTL)
	case c.PassWorkers < 0 || c.PassWorkers > 1024:
		return fillcast.ConfigErrorf("subscriptions", "PassWorkers", "%d: want 1 to 1024", c.PassWorkers)
	case c.PassPage < 0:
		return fillcast.ConfigErrorf("subscriptions", "PassPage", "%d is negative", c.PassPage)
	case c.EntitlementTTL < 0:
		return fillcast.ConfigErrorf("subscriptions", "EntitlementTTL", "%v is negative", c.EntitlementTTL)
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.TrialDays = cmp.Or(c.TrialDays, 7)
	c.Grace = cmp.Or(c.Grace, billing.DefaultGrace)
	c.RequestTTL = cmp.Or(c.RequestTTL, 48*time.Hour)
	c.PassWorkers = cmp.Or(c.PassWorkers, 16)
	c.PassPage = cmp.Or(c.PassPage, 10_000)
	c.EntitlementTTL = cmp.Or(c.EntitlementTTL, 5*time.Second)
	return c
}

// Plans looks up the plans subscriptions are for (accounts.Service).
type Plans interface {
	Plan(ctx context.Context, id string) (accounts.Plan, error)
}

// Deps are what a Service works with.
type Deps struct {
	// Store keeps the records. Required.
	Store billing.Store
	// Provider moves the money. Required.
	Provider billing.PaymentProvider
	// Plans finds plans by id. Required.
	Plans Plans
	// Log receives what fails outside a request. Required.
	Log *slog.Logger
	// Metrics, if set, counts charges and renewals.
	Metrics *Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Errors of the Service, beside the Store's.
var (
	// ErrPaymentRequired is an account whose subscription does not
	// entitle it to play (wrapped with why).
	ErrPaymentRequired = errors.New("payment required")
	// ErrDeclined is a subscription or plan change whose payment was
	// declined (wrapped with the provider's reason). The subscription's
	// state is in the answer.
	ErrDeclined = billing.ErrDeclined
	// ErrKeyReused is an Idempotency-Key sent again with another request.
	ErrKeyReused = errors.New("idempotency key reused with another request")
	// ErrInvalid wraps a malformed request.
	ErrInvalid = billing.ErrInvalid
	// ErrConflict is a request that the subscription's state does not
	// allow, or that lost to another at once.
	ErrConflict = billing.ErrConflict
)

// Service is billing over a Store and a PaymentProvider. It is safe for
// concurrent use.
type Service struct {
	cfg          Config
	d            Deps
	entitlements *entitlementCache
}

// New returns a Service; it does no I/O.
func New(cfg Config, d Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.Provider == nil || d.Plans == nil || d.Log == nil {
		return nil, errors.New("subscriptions: store, provider, plans and logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg = cfg.withDefaults()
	return &Service{cfg: cfg, d: d, entitlements: newEntitlementCache()}, nil
}

// TrialDays returns the trial a new account on plan gets.
func (s *Service) TrialDays(plan accounts.Plan) int {
	if plan.TrialDays != nil {
		return *plan.TrialDays
	}
	return max(s.cfg.TrialDays, 0)
}

// StartTrial records the subscription an account created with a plan
// starts with: trialing for the plan's trial days from the account's
// creation, or, for a plan without a trial, incomplete until it pays.
// An account that has a subscription already keeps it.
func (s *Service) StartTrial(ctx context.Context, a accounts.Account) error {
	sub, err := s.signUpSubscription(ctx, a)
	if err != nil {
		return err
	}
	_, err = s.d.Store.Commit(ctx, billing.Change{At: s.d.Now().UTC(), Subscriptions: []billing.Subscription{sub}})
	if errors.Is(err, billing.ErrExists) || errors.Is(err, billing.ErrConflict) {
		return nil
	}
	return err
}

// signUpSubscription is the subscription an account begins with, with
// an id derived from the account's, so that it is recorded once.
func (s *Service) signUpSubscription(ctx context.Context, a accounts.Account) (billing.Subscription, error) {
	plan, err := s.d.Plans.Plan(ctx, a.Plan)
	if err != nil {
		return billing.Subscription{}, fmt.Errorf("subscriptions: plan of account %s: %w", a.ID, err)
	}
	return billing.Start(derivedID("sub_", "signup", a.ID), a.ID, plan, s.TrialDays(plan), a.Created)
}

// derivedID returns prefix and 24 hex digits of a hash of parts: the
// same parts, the same id, so that a retried step finds what the first
// made.
func derivedID(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:12])
}

// now returns the service's time in UTC, to the microsecond (what every
// store keeps).
func (s *Service) now() time.Time { return s.d.Now().UTC().Truncate(time.Microsecond) }

// isLost reports whether a commit lost to another write of the same
// records: a compare-and-set, or a record or entry already made.
func isLost(err error) bool {
	return errors.Is(err, billing.ErrConflict) || errors.Is(err, billing.ErrExists)
}

// syncer is a store whose copy may lag the writes made elsewhere
// (billing/embedded): Sync catches it up.
type syncer interface {
	Sync(ctx context.Context) error
}

// sync catches the store up, if it can lag.
func (s *Service) sync(ctx context.Context) error {
	if sy, ok := s.d.Store.(syncer); ok {
		return sy.Sync(ctx)
	}
	return nil
}
