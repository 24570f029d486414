// Package billing is the rules of Fillcast's money: subscriptions to the
// accounts' plans, the invoices they raise, the append-only ledger of
// every money movement, and the PaymentProvider interface through which
// money actually moves. It is pure: values in, values out, no I/O and no
// clock, so the control plane's replicated state machine and the
// PostgreSQL store apply the same rules to the same result, and a renewal
// pass can be rerun after a crash without a second charge.
//
// Money is integer minor units with an ISO 4217 currency (accounts.Money);
// arithmetic is overflow-checked and refuses to mix currencies, and
// proration rounds half to even on exact integer arithmetic.
//
// A subscription (see Subscription) moves trialing|incomplete → active →
// past_due → canceled by pure transition functions that return the new
// value with Version one higher, for a compare-and-set write. An invoice
// moves draft → open → paid|void|uncollectible and gets its gap-free
// number per year when finalized (Numberer). The Ledger refuses a second
// entry with the same (kind, invoice, idempotency key), and Verify proves
// the invoices agree with it.
//
// # Payment providers
//
// PaymentProvider is declared here, by its consumer; billing/testprovider
// implements it with the test cards processors offer, its records in an
// append-only file so that they survive a crash. A real
// provider (a card processor's API) needs:
//
//   - an idempotency key on every call that can move money — ChargeKey
//     gives one per due charge and retry — so a retried or concurrent
//     call charges once; the provider keeps the key with its first answer
//     and returns that answer again (ErrIdempotencyMismatch for the same
//     key with other parameters);
//   - reconciliation through LookupCharge: when the process dies between
//     the provider's answer and the local write, the next renewal pass
//     asks for the charge of the same key and records it instead of
//     charging again, so a payment is never lost nor taken twice;
//   - webhooks for the outcomes that arrive later (3-D Secure or other
//     customer authentication, disputes and chargebacks, refunds made in
//     the provider's dashboard): each event's signature verified with
//     the endpoint's secret and its timestamp checked against replay,
//     de-duplicated by event id (the event id as the ledger entry's
//     idempotency key), and applied as ledger entries and transitions
//     like the synchronous answers.
package billing

import (
	"context"
	"errors"
	"time"

	"github.com/fillcast/fillcast/accounts"
)

// Card is a card number as typed, digits only. It reaches only the
// provider; Fillcast keeps the PaymentMethod.
type Card struct{ Number string }

// PaymentMethod is a card attached to a provider's customer: what
// Fillcast stores instead of the number.
type PaymentMethod struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Brand    string `json:"brand"`
	Last4    string `json:"last4"`
}

// ChargeRequest asks a provider to take Amount from a customer's payment
// method, once per IdempotencyKey.
type ChargeRequest struct {
	IdempotencyKey, Customer, PaymentMethod, Description string
	Amount                                               accounts.Money
}

// ChargeStatus is the outcome of a charge.
type ChargeStatus string

// The outcomes of a charge.
const (
	ChargeSucceeded ChargeStatus = "succeeded"
	ChargeDeclined  ChargeStatus = "declined"
)

// Charge is a provider's record of a charge attempt.
type Charge struct {
	ID, IdempotencyKey, Customer, PaymentMethod string
	Amount                                      accounts.Money
	Status                                      ChargeStatus
	DeclineReason                               string
	Created                                     time.Time
}

// Errors of a PaymentProvider.
var (
	// ErrDeclined is AttachCard's refusal of a card, wrapped with the
	// reason.
	ErrDeclined = errors.New("billing: card declined")
	// ErrIdempotencyMismatch is an idempotency key reused with other
	// parameters.
	ErrIdempotencyMismatch = errors.New("billing: idempotency key reused with other parameters")
	// ErrInvalidCard is a number that is not a card's (wrapped with
	// why): the viewer mistyped it.
	ErrInvalidCard = errors.New("billing: invalid card number")
)

// PaymentProvider moves money: it keeps customers' cards and charges
// them.
type PaymentProvider interface {
	// AttachCard checks a card and keeps it for customer; ErrDeclined
	// (wrapped with the reason) if the card is refused.
	AttachCard(ctx context.Context, customer string, card Card) (PaymentMethod, error)
	// Charge is idempotent by IdempotencyKey: the same key and request
	// return the first charge and move no more money; the same key with
	// another request returns ErrIdempotencyMismatch. A declined charge is
	// a Charge with Status ChargeDeclined and a nil error; errors are for
	// the provider being unreachable or refusing the request.
	Charge(ctx context.Context, r ChargeRequest) (Charge, error)
	// LookupCharge finds the charge made with an idempotency key, for
	// reconciling after a crash between the provider's answer and the
	// local write.
	LookupCharge(ctx context.Context, idempotencyKey string) (Charge, bool, error)
}
