// Package testprovider is Fillcast's built-in test payment provider: a
// billing.PaymentProvider that behaves like the test mode of a payment
// processor, so that subscriptions, invoices and the reconciliation of a
// crashed renewal can be exercised end to end without a real processor.
//
// Card 4242424242424242 is accepted and every charge on it succeeds;
// 4000000000000002 is declined when attached; 4000000000000341 is attached
// but every charge on it is declined. Any other number that is a card
// number (13 to 19 digits passing the Luhn check) is declined as not
// supported in test mode, and anything else is refused with ErrInvalidCard.
// Only the brand, the last four digits and the test behaviour of a card are
// kept; the full number is never stored, logged or put in an error.
//
// The provider keeps its records the way a processor would: durably. Every
// payment method and every charge is one JSON line appended to
// testprovider.log in Config.Dir and fsync'd before the call returns, so a
// charge made just before the control plane is SIGKILLed is found by
// LookupCharge after the restart; that is how package billing reconciles a
// crash between the provider's answer and its own write. Opening the log
// replays it; a torn last line (a write the crash interrupted, which was
// therefore never acknowledged) is ignored and truncated away.
//
// Charges are idempotent by key, like the processors' idempotency keys: a
// retry with the same key and the same request returns the stored charge,
// a stored decline included, and moves no money; the same key with another
// request fails with billing.ErrIdempotencyMismatch. Keys are kept for ever
// (at least the 24 hours billing needs); the log grows by one line per charge,
// which is fine for a test provider.
//
// Any number of Providers, in one process or in several, may use one
// directory at once, and they behave as one provider, as the nodes of the
// control plane share a real processor's API: a renewal may run on any node
// after a leader change, and its retry still finds the first attempt's
// charge. Each call holds a flock on the log for as long as it runs,
// exclusive for AttachCard and Charge, shared for LookupCharge. Under it the
// call first replays the records the other Providers appended since this
// one last read (it keeps the byte offset it has read to, so it reads only
// the new bytes, and nothing when the size has not changed), then decides,
// then appends and fsyncs its own record, then unlocks. So two Providers
// charging with one key make one charge, and a torn last line left by a
// process killed mid-write is cut, under the exclusive lock, by the next
// writer before it appends. The lock is released between calls and by the
// kernel when a process dies. Where flock is not available (outside unix)
// nothing coordinates Providers: use one per directory there.
package testprovider

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fillcast/fillcast/billing"
)

// LogName is the name of the provider's log file inside Config.Dir.
const LogName = "testprovider.log"

// Errors callers may branch on, besides billing.ErrDeclined and
// billing.ErrIdempotencyMismatch.
var (
	// ErrUnknownPaymentMethod: a charge names a payment method that was
	// never attached, or that belongs to another customer.
	ErrUnknownPaymentMethod = errors.New("testprovider: unknown payment method")
	// ErrClosed: the provider was closed.
	ErrClosed = errors.New("testprovider: closed")
)

// declineReason is the reason given for every decline of a test card, as
// processors word it.
const declineReason = "your card was declined"

// maxKeyLen bounds idempotency keys, as the API does.
const maxKeyLen = 255

// Config configures a Provider.
type Config struct {
	// Dir is the directory holding the log (LogName). Required; created
	// with mode 0700 on open if absent.
	Dir string
	// Now is the clock for the charges' Created times. Nil means time.Now.
	Now func() time.Time
	// Rand is the source of the random part of charge and payment method
	// ids. Nil means crypto/rand.Reader.
	Rand io.Reader
}

// DefaultConfig returns a Config with the defaults filled in; Dir, which
// has none, is left for the caller.
func DefaultConfig() Config {
	return Config{Now: time.Now, Rand: rand.Reader}
}

// Validate reports what is wrong with c, if anything.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("testprovider: Config.Dir is empty: set the directory where the test provider keeps its records")
	}
	return nil
}

// Provider is the test payment provider. It is safe for concurrent use;
// its calls are serialised, each waiting for its record's fsync, and with
// those of the other Providers on its directory by the log's lock.
type Provider struct {
	cfg Config

	mu     sync.Mutex
	closed bool
	f      *os.File // nil until opened
	broken error    // set when a write or an unlock failed: p refuses every call
	off    int64    // bytes of the log replayed into st; always the end of a line
	st     state    // as of off
	buf    []byte   // reused to read the log's new bytes
}

var _ billing.PaymentProvider = (*Provider)(nil)

// New returns a Provider for cfg. It does no I/O: the log is opened by
// Open, or by the first call that needs it.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Provider{cfg: cfg}, nil
}

// Open opens and replays the log, truncating a torn last line. Calling it
// is optional, since every other method opens the log when first needed,
// but it surfaces a bad directory or a corrupt log at start-up. Open after
// a successful Open does nothing. Like every call, it waits for the log's
// lock while another Provider's call holds it; that wait does not heed ctx,
// but calls are short.
func (p *Provider) Open(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("testprovider: open: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.openLocked()
}

// Close closes the log. It is safe to call twice; every later call fails
// with ErrClosed. The other Providers on the directory carry on.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.f == nil {
		return nil
	}
	err := p.f.Close() // releases the lock
	p.f = nil
	if err != nil {
		return fmt.Errorf("testprovider: close: %w", err)
	}
	return nil
}

// AttachCard checks card and, if it is a test card that can be attached,
// records a payment method for customer. A declined card fails with an
// error wrapping billing.ErrDeclined and saying why; a number that is not a
// card number fails with one wrapping ErrInvalidCard.
func (p *Provider) AttachCard(ctx context.Context, customer string, card billing.Card) (billing.PaymentMethod, error) {
	if err := ctx.Err(); err != nil {
		return billing.PaymentMethod{}, fmt.Errorf("testprovider: attach card: %w", err)
	}
	if customer == "" {
		return billing.PaymentMethod{}, errors.New("testprovider: attach card: the customer is empty")
	}
	info, err := parseCard(card.Number)
	if err != nil {
		return billing.PaymentMethod{}, err
	}
	var b behavior
	switch card.Number {
	case cardSucceeds:
		b = behaviorSucceeds
	case cardDeclineCharges:
		b = behaviorDeclineCharges
	case cardDeclined:
		return billing.PaymentMethod{}, fmt.Errorf("testprovider: %w: %s", billing.ErrDeclined, declineReason)
	default:
		return billing.PaymentMethod{}, fmt.Errorf("testprovider: %w: card not supported in test mode; use %s for payments that succeed", billing.ErrDeclined, cardSucceeds)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.acquire(true); err != nil {
		return billing.PaymentMethod{}, err
	}
	defer p.release()
	id, err := p.newID("pm_")
	if err != nil {
		return billing.PaymentMethod{}, err
	}
	if _, dup := p.st.methods[id]; dup {
		// Replay would refuse the log with this id twice in it.
		return billing.PaymentMethod{}, fmt.Errorf("testprovider: attach card: random id %s is taken; is Config.Rand random?", id)
	}
	pm := pmRecord{ID: id, Customer: customer, Brand: info.brand, Last4: info.last4, Behavior: b}
	if err := p.appendLocked(record{Kind: kindPaymentMethod, PaymentMethod: &pm}); err != nil {
		return billing.PaymentMethod{}, err
	}
	p.st.methods[id] = pm
	return pm.paymentMethod(), nil
}

// Charge charges r.Amount to r.PaymentMethod, which must be one of
// r.Customer's. The charge is on disk before Charge returns. A declined
// charge is recorded too, and returned, as billing.PaymentProvider asks,
// with Status billing.ChargeDeclined, its DeclineReason and a nil error.
// A retry with the same
// idempotency key and the same request returns the first answer, decline
// included; the same key with another customer, payment method, amount,
// currency or description fails with billing.ErrIdempotencyMismatch.
//
// An error from writing the log leaves the outcome unknown (the record may
// have reached the disk) and p refusing every later call: LookupCharge with
// the key on a new Provider, or on another one open on the directory,
// answers. Other errors (a refused request) record nothing.
func (p *Provider) Charge(ctx context.Context, r billing.ChargeRequest) (billing.Charge, error) {
	if err := ctx.Err(); err != nil {
		return billing.Charge{}, fmt.Errorf("testprovider: charge: %w", err)
	}
	if r.IdempotencyKey == "" {
		return billing.Charge{}, errors.New("testprovider: charge: the idempotency key is empty")
	}
	if len(r.IdempotencyKey) > maxKeyLen {
		return billing.Charge{}, fmt.Errorf("testprovider: charge: the idempotency key has %d bytes, more than %d", len(r.IdempotencyKey), maxKeyLen)
	}
	hash := requestHash(r)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.acquire(true); err != nil {
		return billing.Charge{}, err
	}
	defer p.release()
	if c, ok := p.st.charges[r.IdempotencyKey]; ok {
		if c.RequestHash != hash {
			return billing.Charge{}, fmt.Errorf("testprovider: charge with idempotency key %q: %w", r.IdempotencyKey, billing.ErrIdempotencyMismatch)
		}
		return c.charge(), nil
	}
	if r.Amount.Amount <= 0 {
		return billing.Charge{}, fmt.Errorf("testprovider: charge: the amount is %d; it must be more than 0", r.Amount.Amount)
	}
	if billing.CheckCurrency(r.Amount.Currency) != nil {
		return billing.Charge{}, fmt.Errorf("testprovider: charge: currency %q is not an ISO 4217 code such as EUR", r.Amount.Currency)
	}
	pm, ok := p.st.methods[r.PaymentMethod]
	if !ok || pm.Customer != r.Customer {
		return billing.Charge{}, fmt.Errorf("%w %q for customer %q", ErrUnknownPaymentMethod, r.PaymentMethod, r.Customer)
	}
	id, err := p.newID("ch_")
	if err != nil {
		return billing.Charge{}, err
	}
	c := chargeRecord{
		ID:             id,
		IdempotencyKey: r.IdempotencyKey,
		RequestHash:    hash,
		Customer:       r.Customer,
		PaymentMethod:  r.PaymentMethod,
		Amount:         r.Amount.Amount,
		Currency:       r.Amount.Currency,
		Status:         billing.ChargeSucceeded,
		Created:        p.cfg.Now().UTC(),
	}
	if pm.Behavior == behaviorDeclineCharges {
		c.Status = billing.ChargeDeclined
		c.DeclineReason = declineReason
	}
	if err := p.appendLocked(record{Kind: kindCharge, Charge: &c}); err != nil {
		return billing.Charge{}, err
	}
	p.st.charges[c.IdempotencyKey] = c
	return c.charge(), nil
}

// LookupCharge returns the charge made with idempotencyKey, succeeded or
// declined, and whether there was one. Keys are never forgotten.
func (p *Provider) LookupCharge(ctx context.Context, idempotencyKey string) (billing.Charge, bool, error) {
	if err := ctx.Err(); err != nil {
		return billing.Charge{}, false, fmt.Errorf("testprovider: lookup charge: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.acquire(false); err != nil {
		return billing.Charge{}, false, err
	}
	defer p.release()
	c, ok := p.st.charges[idempotencyKey]
	if !ok {
		return billing.Charge{}, false, nil
	}
	return c.charge(), true, nil
}

// Charges returns every charge made, succeeded or declined, ordered by
// time then id: what a test or a benchmark counts to prove that no money
// moved twice.
func (p *Provider) Charges(ctx context.Context) ([]billing.Charge, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("testprovider: charges: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.acquire(false); err != nil {
		return nil, err
	}
	defer p.release()
	out := make([]billing.Charge, 0, len(p.st.charges))
	for _, c := range p.st.charges {
		out = append(out, c.charge())
	}
	slices.SortFunc(out, func(a, b billing.Charge) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Succeeded returns how many of the charges made moved money: what a test
// counts to prove that a step charged once.
func (p *Provider) Succeeded(ctx context.Context) (int, error) {
	cs, err := p.Charges(ctx)
	n := 0
	for _, c := range cs {
		if c.Status == billing.ChargeSucceeded {
			n++
		}
	}
	return n, err
}

// newID returns prefix and 24 random hex digits.
func (p *Provider) newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(p.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("testprovider: random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// requestHash identifies what a charge request asks for, so that a reused
// idempotency key can be told from a retry.
func requestHash(r billing.ChargeRequest) string {
	b, _ := json.Marshal(struct {
		Customer, PaymentMethod, Description, Currency string
		Amount                                         int64
	}{r.Customer, r.PaymentMethod, r.Description, r.Amount.Currency, r.Amount.Amount})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
