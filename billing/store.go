package billing

import (
	"context"
	"fmt"
	"time"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/accounts"
)

// Errors of a Store, beside ErrDuplicate (a ledger entry recorded
// already).
var (
	// ErrNotFound is a record the store does not have.
	ErrNotFound = accounts.ErrNotFound
	// ErrExists is a record created twice: a subscription id, or an
	// idempotent request's key.
	ErrExists = accounts.ErrExists
	// ErrConflict is a compare-and-set that lost: the subscription
	// changed since it was read, or the account has another subscription
	// that is not canceled.
	ErrConflict = fillcast.ErrConflict
	// ErrInvalid wraps a malformed change or request.
	ErrInvalid = accounts.ErrInvalid
)

// Change is what one step of billing writes, all or nothing: a charge's
// outcome together with the invoice's and the subscription's new state,
// its ledger entries and the answer of the request that caused it.
type Change struct {
	// At is when the change is made.
	At time.Time `json:"at"`
	// Subscriptions are written with compare-and-set: one of Version 1 is
	// created (ErrExists if its id is taken); any other replaces the
	// stored one of Version one lower (ErrConflict otherwise, and
	// ErrNotFound when there is none). After the change an account has at
	// most one subscription that is not Canceled (ErrConflict otherwise),
	// so a new subscription replacing an old one is written with the old
	// one canceled.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// Invoice, if set, is created or replaced whole. One that is not a
	// Draft and has no Number gets the next number of its Finalized year,
	// unless the stored one has a number already, which it keeps. Every
	// change that writes an invoice writes its subscription too, whose
	// compare-and-set orders the writes.
	Invoice *Invoice `json:"invoice,omitempty"`
	// Entries are appended to the ledger, given their Seq; ErrDuplicate
	// if one has the kind, invoice and idempotency key of a recorded one.
	Entries []Entry `json:"entries,omitempty"`
	// Request, if set, records the answer of the idempotent request that
	// made the change (ErrExists if its account and key are recorded).
	Request *Request `json:"request,omitempty"`
}

// Committed is what Commit stored: the invoice with its number and the
// entries with their Seq.
type Committed struct {
	Invoice *Invoice
	Entries []Entry
}

// Request is the first answer to an idempotent request: a retry with the
// same account, key and Hash gets Status and Body again; the same key with
// another Hash is refused.
type Request struct {
	Account string `json:"account"`
	// Key is the client's Idempotency-Key, at most MaxIdempotencyKeyLen
	// bytes.
	Key string `json:"key"`
	// Hash identifies the request: its method, route and body.
	Hash   string `json:"hash"`
	Status int    `json:"status"`
	// Body is kept byte for byte (base64 in JSON, so that no encoder
	// reformats it).
	Body    []byte    `json:"body"`
	Created time.Time `json:"created"`
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// Store keeps subscriptions, invoices, the ledger and idempotent
// requests. Times come from the caller, so that a replicated store applies
// the same change to the same result on every node. Records are returned
// by value, times in UTC.
type Store interface {
	// Commit writes c all or nothing (see Change) and returns what it
	// stored.
	Commit(ctx context.Context, c Change) (Committed, error)
	// Subscription returns a subscription by id.
	Subscription(ctx context.Context, id string) (Subscription, error)
	// CurrentSubscription returns the account's subscription that is not
	// Canceled, else its most recently created one; ErrNotFound if it has
	// none.
	CurrentSubscription(ctx context.Context, account string) (Subscription, error)
	// Subscriptions returns up to limit subscriptions with ids after
	// after, ordered by id.
	Subscriptions(ctx context.Context, after string, limit int) ([]Subscription, error)
	// DueSubscriptions is Subscriptions of those whose DueAt is set and
	// not after asOf.
	DueSubscriptions(ctx context.Context, asOf time.Time, after string, limit int) ([]Subscription, error)
	// Invoice returns an invoice by id.
	Invoice(ctx context.Context, id string) (Invoice, error)
	// AccountInvoices returns an account's invoices, newest (Created)
	// first, then by id.
	AccountInvoices(ctx context.Context, account string) ([]Invoice, error)
	// Invoices returns up to limit invoices with ids after after, ordered
	// by id.
	Invoices(ctx context.Context, after string, limit int) ([]Invoice, error)
	// Entries returns up to limit ledger entries with Seq after after, in
	// Seq order.
	Entries(ctx context.Context, after uint64, limit int) ([]Entry, error)
	// Request returns the recorded answer of an account's idempotent
	// request by key.
	Request(ctx context.Context, account, key string) (Request, error)
	// PruneRequests forgets the requests recorded before before and
	// returns how many.
	PruneRequests(ctx context.Context, before time.Time) (int, error)
}

// CheckChange returns an error, wrapping ErrInvalid, unless c is
// well formed: records with ids and accounts, entries that Ledger.Append
// would take, a request with a key. Stores check it before writing.
func CheckChange(c Change) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("billing: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if c.At.IsZero() {
		return bad("change without a time")
	}
	if len(c.Subscriptions) == 0 && c.Invoice == nil && len(c.Entries) == 0 && c.Request == nil {
		return bad("empty change")
	}
	seen := map[string]bool{}
	for _, s := range c.Subscriptions {
		if s.ID == "" || s.Account == "" || s.Plan == "" || s.Version == 0 || seen[s.ID] {
			return bad("subscription %q: want a unique id, an account, a plan and a version", s.ID)
		}
		seen[s.ID] = true
		switch s.Status {
		case Trialing, Active, PastDue, Canceled, Incomplete:
		default:
			return bad("subscription %s: status %q", s.ID, s.Status)
		}
	}
	if inv := c.Invoice; inv != nil {
		if inv.ID == "" || inv.Account == "" || len(inv.Lines) == 0 {
			return bad("invoice %q: want an id, an account and lines", inv.ID)
		}
		switch inv.Status {
		case Draft:
		case Open, Paid, Void, Uncollectible:
			if inv.Finalized.IsZero() {
				return bad("invoice %s is %s but was never finalized", inv.ID, inv.Status)
			}
			if y := inv.Finalized.UTC().Year(); y < 1 || y > 9999 {
				return bad("invoice %s finalized in year %d, which has no invoice numbers", inv.ID, y)
			}
		default:
			return bad("invoice %s: status %q", inv.ID, inv.Status)
		}
	}
	for _, e := range c.Entries {
		if err := checkEntry(e); err != nil {
			return bad("%v", err)
		}
	}
	if r := c.Request; r != nil {
		if r.Account == "" || r.Key == "" || len(r.Key) > MaxIdempotencyKeyLen || r.Hash == "" || r.Status == 0 {
			return bad("request: want an account, a key of 1 to %d bytes, a hash and a status", MaxIdempotencyKeyLen)
		}
	}
	return nil
}
