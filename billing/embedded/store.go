package embedded

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fillcast/fillcast/billing"
)

// Store is billing.Store over the replicated state: writes go through
// apply (raft, forwarded to the leader), reads come from this node's copy
// through read.
type Store struct {
	apply   func(ctx context.Context, c Command) error
	read    func(fn func(s *State))
	catchUp func(ctx context.Context) error
}

var _ billing.Store = (*Store)(nil)

// NewStore returns a Store. apply replicates a command and returns its
// error; read calls fn with the state under the state machine's lock;
// catchUp, if not nil, waits until this copy has every write applied
// elsewhere so far: lookups that miss call it and look again, and Sync
// calls it.
func NewStore(apply func(ctx context.Context, c Command) error, read func(fn func(s *State)), catchUp func(ctx context.Context) error) *Store {
	return &Store{apply: apply, read: read, catchUp: catchUp}
}

// Sync waits until this node's copy has every write applied elsewhere so
// far, so that a compare-and-set that lost to a write made through
// another node is retried on the current version.
func (st *Store) Sync(ctx context.Context) error {
	if st.catchUp == nil {
		return nil
	}
	if err := st.catchUp(ctx); err != nil {
		return fmt.Errorf("billing: catching up with the leader: %w", err)
	}
	return nil
}

// lookup reads with find, and again after catching up if it found
// nothing.
func lookup[T any](ctx context.Context, st *Store, find func(s *State) (T, bool)) (T, bool, error) {
	var v T
	var ok bool
	st.read(func(s *State) { v, ok = find(s) })
	if ok || st.catchUp == nil {
		return v, ok, nil
	}
	if err := st.Sync(ctx); err != nil {
		return v, false, err
	}
	st.read(func(s *State) { v, ok = find(s) })
	return v, ok, nil
}

func found[T any](p *T) (T, bool) {
	if p == nil {
		var zero T
		return zero, false
	}
	return *p, true
}

// Commit implements billing.Store.
func (st *Store) Commit(ctx context.Context, ch billing.Change) (billing.Committed, error) {
	c := Command{Op: OpCommit, Change: &ch}
	if err := c.Validate(); err != nil {
		return billing.Committed{}, err
	}
	if err := st.apply(ctx, c); err != nil {
		return billing.Committed{}, err
	}
	var out billing.Committed
	st.read(func(s *State) {
		if ch.Invoice != nil {
			if inv := s.Invoices.At(ch.Invoice.ID); inv != nil {
				cp := *inv
				out.Invoice = &cp
			}
		}
		for _, e := range ch.Entries {
			e.Seq, e.At = s.EntrySeq(e), e.At.UTC()
			out.Entries = append(out.Entries, e)
		}
	})
	return out, nil
}

// Subscription implements billing.Store.
func (st *Store) Subscription(ctx context.Context, id string) (billing.Subscription, error) {
	sub, ok, err := lookup(ctx, st, func(s *State) (billing.Subscription, bool) { return found(s.Subscriptions.At(id)) })
	if err == nil && !ok {
		err = fmt.Errorf("billing: subscription %q: %w", id, billing.ErrNotFound)
	}
	return sub, err
}

// CurrentSubscription implements billing.Store.
func (st *Store) CurrentSubscription(ctx context.Context, account string) (billing.Subscription, error) {
	sub, ok, err := lookup(ctx, st, func(s *State) (billing.Subscription, bool) { return found(s.Current(account)) })
	if err == nil && !ok {
		err = fmt.Errorf("billing: subscription of account %q: %w", account, billing.ErrNotFound)
	}
	return sub, err
}

// page returns up to limit of the values of all whose id is after after,
// by id: the limit smallest ids kept in a max-heap as the table is
// scanned, so that a page costs one scan and no sort of the whole table
// (a renewal pass reads a table of 100,000 a page at a time, under the
// state's read lock).
func page[V any](all func(yield func(string, V) bool), keep func(V) bool, after string, limit int) []V {
	type kv struct {
		k string
		v V
	}
	var top []kv // a max-heap by k while full
	less := func(i, j int) bool { return top[i].k > top[j].k }
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(top) {
				return
			}
			if c+1 < len(top) && less(c+1, c) {
				c++
			}
			if !less(c, i) {
				return
			}
			top[i], top[c] = top[c], top[i]
			i = c
		}
	}
	up := func(i int) {
		for i > 0 && less(i, (i-1)/2) {
			top[i], top[(i-1)/2] = top[(i-1)/2], top[i]
			i = (i - 1) / 2
		}
	}
	for k, v := range all {
		if k <= after || keep != nil && !keep(v) {
			continue
		}
		switch {
		case limit < 0 || len(top) < limit:
			top = append(top, kv{k, v})
			up(len(top) - 1)
		case limit > 0 && k < top[0].k:
			top[0] = kv{k, v}
			down(0)
		}
	}
	slices.SortFunc(top, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	out := make([]V, len(top))
	for i, x := range top {
		out[i] = x.v
	}
	return out
}

func deref[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// Subscriptions implements billing.Store.
func (st *Store) Subscriptions(ctx context.Context, after string, limit int) ([]billing.Subscription, error) {
	var out []*billing.Subscription
	st.read(func(s *State) { out = page(s.Subscriptions.All, nil, after, limit) })
	return deref(out), nil
}

// DueSubscriptions implements billing.Store.
func (st *Store) DueSubscriptions(ctx context.Context, asOf time.Time, after string, limit int) ([]billing.Subscription, error) {
	due := func(s *billing.Subscription) bool {
		at := billing.DueAt(*s)
		return !at.IsZero() && !at.After(asOf)
	}
	var out []*billing.Subscription
	st.read(func(s *State) { out = page(s.Subscriptions.All, due, after, limit) })
	return deref(out), nil
}

// Invoice implements billing.Store.
func (st *Store) Invoice(ctx context.Context, id string) (billing.Invoice, error) {
	inv, ok, err := lookup(ctx, st, func(s *State) (billing.Invoice, bool) { return found(s.Invoices.At(id)) })
	if err == nil && !ok {
		err = fmt.Errorf("billing: invoice %q: %w", id, billing.ErrNotFound)
	}
	return inv, err
}

// AccountInvoices implements billing.Store.
func (st *Store) AccountInvoices(ctx context.Context, account string) ([]billing.Invoice, error) {
	var out []billing.Invoice
	st.read(func(s *State) {
		for _, id := range s.AccountInvoices(account) {
			out = append(out, *s.Invoices.At(id))
		}
	})
	slices.SortFunc(out, func(a, b billing.Invoice) int {
		return cmp.Or(b.Created.Compare(a.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Invoices implements billing.Store.
func (st *Store) Invoices(ctx context.Context, after string, limit int) ([]billing.Invoice, error) {
	var out []*billing.Invoice
	st.read(func(s *State) { out = page(s.Invoices.All, nil, after, limit) })
	return deref(out), nil
}

// Entries implements billing.Store.
func (st *Store) Entries(ctx context.Context, after uint64, limit int) ([]billing.Entry, error) {
	var out []billing.Entry
	st.read(func(s *State) {
		if after >= uint64(len(s.Entries)) {
			return
		}
		rest := s.Entries[after:] // Seq is the index + 1
		if limit >= 0 && len(rest) > limit {
			rest = rest[:limit]
		}
		out = slices.Clone(rest)
	})
	return out, nil
}

// Request implements billing.Store.
func (st *Store) Request(ctx context.Context, account, key string) (billing.Request, error) {
	r, ok, err := lookup(ctx, st, func(s *State) (billing.Request, bool) { return found(s.Request(account, key)) })
	if err == nil && !ok {
		err = fmt.Errorf("billing: request with idempotency key %q: %w", key, billing.ErrNotFound)
	}
	return r, err
}

// PruneRequests implements billing.Store.
func (st *Store) PruneRequests(ctx context.Context, before time.Time) (int, error) {
	n := 0
	st.read(func(s *State) {
		for _, r := range s.Requests.All {
			if r.Created.Before(before) {
				n++
			}
		}
	})
	if n == 0 {
		return 0, nil
	}
	if err := st.apply(ctx, Command{Op: OpPruneRequests, Before: before}); err != nil {
		return 0, err
	}
	return n, nil
}
