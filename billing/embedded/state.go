// Package embedded is the billing store that needs nothing beside the
// control plane: subscriptions, invoices, the ledger and idempotent
// requests in the control plane's replicated state machine, changed by
// one typed command per billing.Change through raft. A Change is checked
// whole (compare-and-set versions, one live subscription per account,
// duplicate ledger entries, taken request keys) and applied whole on
// every node in log order, so a charge's outcome, its invoice and its
// ledger entries commit together, and two renewal passes racing through
// two nodes have one winner. Invoice numbers come from a counter in the
// same state, so they have no gaps.
package embedded

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	acctembedded "github.com/fillcast/fillcast/accounts/embedded"
	"github.com/fillcast/fillcast/billing"
)

// Command operations.
const (
	// OpCommit applies Change.
	OpCommit = "commit"
	// OpPruneRequests forgets the requests recorded before Before.
	OpPruneRequests = "prune_requests"
)

// Command is one change to the billing records.
type Command struct {
	Op     string          `json:"op"`
	Change *billing.Change `json:"change,omitempty"`
	Before time.Time       `json:"before,omitzero"`
}

// Validate checks a command before it is proposed and when it is applied.
func (c Command) Validate() error {
	switch c.Op {
	case OpCommit:
		if c.Change == nil {
			return fmt.Errorf("billing: %w: commit without a change", billing.ErrInvalid)
		}
		return billing.CheckChange(*c.Change)
	case OpPruneRequests:
		if c.Before.IsZero() {
			return fmt.Errorf("billing: %w: prune_requests without a time", billing.ErrInvalid)
		}
		return nil
	}
	return fmt.Errorf("billing: %w: unknown op %q", billing.ErrInvalid, c.Op)
}

// State is billing's part of the replicated state. Records are immutable
// once stored (a change replaces them whole), so a snapshot shares them;
// the tables copy on write after Clone, and Entries only grows.
type State struct {
	Subscriptions *acctembedded.Table[*billing.Subscription] `json:"subscriptions"`
	Invoices      *acctembedded.Table[*billing.Invoice]      `json:"invoices"`
	Entries       []billing.Entry                            `json:"entries"`
	Numbers       billing.Numberer                           `json:"numbers"`
	// Requests are keyed by requestKey.
	Requests *acctembedded.Table[*billing.Request] `json:"requests"`

	// Indexes, rebuilt from the records after a restore.
	accountSubs     map[string][]string // account → subscription ids, oldest first
	accountInvoices map[string][]string // account → invoice ids
	entryKeys       map[entryKey]uint64 // → Seq
}

type entryKey struct {
	kind                billing.EntryKind
	invoice, idempotent string
}

func keyOf(e billing.Entry) entryKey { return entryKey{e.Kind, e.Invoice, e.IdempotencyKey} }

func requestKey(account, key string) string { return account + "\x00" + key }

// NewState returns an empty State.
func NewState() *State {
	s := &State{}
	s.Rebuild()
	return s
}

// Rebuild gives missing tables their empty value and recomputes the
// indexes after the records were decoded.
func (s *State) Rebuild() {
	if s.Subscriptions == nil {
		s.Subscriptions = acctembedded.NewTable[*billing.Subscription]()
	}
	if s.Invoices == nil {
		s.Invoices = acctembedded.NewTable[*billing.Invoice]()
	}
	if s.Requests == nil {
		s.Requests = acctembedded.NewTable[*billing.Request]()
	}
	s.accountSubs = map[string][]string{}
	for id, sub := range s.Subscriptions.All {
		s.accountSubs[sub.Account] = append(s.accountSubs[sub.Account], id)
	}
	for acct, ids := range s.accountSubs {
		slices.SortFunc(ids, func(a, b string) int {
			x, y := s.Subscriptions.At(a), s.Subscriptions.At(b)
			return cmp.Or(x.Created.Compare(y.Created), strings.Compare(a, b))
		})
		s.accountSubs[acct] = ids
	}
	s.accountInvoices = map[string][]string{}
	for id, inv := range s.Invoices.All {
		s.accountInvoices[inv.Account] = append(s.accountInvoices[inv.Account], id)
	}
	s.entryKeys = make(map[entryKey]uint64, len(s.Entries))
	for _, e := range s.Entries {
		s.entryKeys[keyOf(e)] = e.Seq
	}
}

// Clone returns a copy of the records for a snapshot to encode, sharing
// them; it has no indexes.
func (s *State) Clone() *State {
	return &State{
		Subscriptions: s.Subscriptions.Clone(), Invoices: s.Invoices.Clone(),
		Entries: slices.Clip(s.Entries), Numbers: billing.Numberer{Last: cloneMap(s.Numbers.Last)},
		Requests: s.Requests.Clone(),
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Current returns the account's subscription that is not canceled, else
// its newest, else nil.
func (s *State) Current(account string) *billing.Subscription {
	ids := s.accountSubs[account]
	for _, id := range ids {
		if sub := s.Subscriptions.At(id); sub.Status != billing.Canceled {
			return sub
		}
	}
	var newest *billing.Subscription
	for _, id := range ids {
		sub := s.Subscriptions.At(id)
		if newest == nil || cmp.Or(sub.Created.Compare(newest.Created), strings.Compare(sub.ID, newest.ID)) > 0 {
			newest = sub
		}
	}
	return newest
}

// AccountInvoices returns the ids of an account's invoices.
func (s *State) AccountInvoices(account string) []string { return s.accountInvoices[account] }

// Check reports whether c may apply to s. It changes nothing.
func (s *State) Check(c Command) error {
	if c.Op != OpCommit {
		return nil
	}
	ch := c.Change
	live := map[string]int{} // account → live subscriptions after the change
	writing := map[string]bool{}
	for _, sub := range ch.Subscriptions {
		writing[sub.ID] = true
		cur := s.Subscriptions.At(sub.ID)
		switch {
		case sub.Version == 1 && cur != nil:
			return fmt.Errorf("billing: subscription %s: %w", sub.ID, billing.ErrExists)
		case sub.Version > 1 && cur == nil:
			return fmt.Errorf("billing: subscription %s: %w", sub.ID, billing.ErrNotFound)
		case sub.Version > 1 && cur.Version != sub.Version-1:
			return fmt.Errorf("billing: subscription %s is at version %d, not %d: %w", sub.ID, cur.Version, sub.Version-1, billing.ErrConflict)
		case cur != nil && cur.Account != sub.Account:
			return fmt.Errorf("billing: subscription %s belongs to another account: %w", sub.ID, billing.ErrConflict)
		}
		if sub.Status != billing.Canceled {
			live[sub.Account]++
		}
	}
	for acct := range live {
		for _, id := range s.accountSubs[acct] {
			if !writing[id] && s.Subscriptions.At(id).Status != billing.Canceled {
				live[acct]++
			}
		}
		if live[acct] > 1 {
			return fmt.Errorf("billing: account %s would have %d subscriptions that are not canceled: %w", acct, live[acct], billing.ErrConflict)
		}
	}
	seen := map[entryKey]bool{}
	for _, e := range ch.Entries {
		k := keyOf(e)
		if _, dup := s.entryKeys[k]; dup || seen[k] {
			return fmt.Errorf("billing: %s of invoice %q with key %q: %w", e.Kind, e.Invoice, e.IdempotencyKey, billing.ErrDuplicate)
		}
		seen[k] = true
	}
	if inv := ch.Invoice; inv != nil {
		if cur := s.Invoices.At(inv.ID); cur != nil && cur.Account != inv.Account {
			return fmt.Errorf("billing: invoice %s belongs to another account: %w", inv.ID, billing.ErrConflict)
		}
		cur := s.Invoices.At(inv.ID)
		if inv.Number != "" && (cur == nil || cur.Number == "") {
			return fmt.Errorf("billing: %w: invoice %s carries number %s, which the store did not give it", billing.ErrInvalid, inv.ID, inv.Number)
		}
		if inv.Status != billing.Draft && (cur == nil || cur.Number == "") {
			if y := inv.Finalized.UTC().Year(); y < 1 || y > 9999 {
				return fmt.Errorf("billing: %w: invoice %s finalized in year %d", billing.ErrInvalid, inv.ID, y)
			}
		}
	}
	if r := ch.Request; r != nil && s.Requests.At(requestKey(r.Account, r.Key)) != nil {
		return fmt.Errorf("billing: request with idempotency key %q: %w", r.Key, billing.ErrExists)
	}
	return nil
}

// Apply makes a change Check allowed.
func (s *State) Apply(c Command) {
	switch c.Op {
	case OpPruneRequests:
		var old []string
		for k, r := range s.Requests.All {
			if r.Created.Before(c.Before) {
				old = append(old, k)
			}
		}
		for _, k := range old {
			s.Requests.Delete(k)
		}
	case OpCommit:
		s.commit(c.Change)
	}
}

func (s *State) commit(ch *billing.Change) {
	for _, sub := range ch.Subscriptions {
		sub := sub
		if sub.Version == 1 {
			s.accountSubs[sub.Account] = append(s.accountSubs[sub.Account], sub.ID)
		}
		s.Subscriptions.Set(sub.ID, &sub)
	}
	if ch.Invoice != nil {
		inv := *ch.Invoice
		cur := s.Invoices.At(inv.ID)
		switch {
		case cur != nil && cur.Number != "":
			inv.Number = cur.Number
		case inv.Status != billing.Draft && inv.Number == "":
			inv.Number, _ = s.Numbers.Next(inv.Finalized) // the year was checked
		}
		if cur == nil {
			s.accountInvoices[inv.Account] = append(s.accountInvoices[inv.Account], inv.ID)
		}
		s.Invoices.Set(inv.ID, &inv)
	}
	for _, e := range ch.Entries {
		e.Seq = uint64(len(s.Entries)) + 1
		e.At = e.At.UTC()
		s.Entries = append(s.Entries, e)
		s.entryKeys[keyOf(e)] = e.Seq
	}
	if r := ch.Request; r != nil {
		req := *r
		s.Requests.Set(requestKey(r.Account, r.Key), &req)
	}
}

// EntrySeq returns the Seq of the recorded entry like e.
func (s *State) EntrySeq(e billing.Entry) uint64 { return s.entryKeys[keyOf(e)] }

// Request returns an account's recorded request by key, or nil.
func (s *State) Request(account, key string) *billing.Request {
	return s.Requests.At(requestKey(account, key))
}
