package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fillcast/fillcast/billing"
)

// micro returns t in UTC, to the microsecond: what a timestamptz keeps.
func micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// truncateChange returns c with every time of its records as micro makes
// it, sharing nothing with c that Commit changes.
func truncateChange(c billing.Change) billing.Change {
	subs := make([]billing.Subscription, len(c.Subscriptions))
	for i, s := range c.Subscriptions {
		s.CurrentPeriodStart, s.CurrentPeriodEnd, s.Anchor = micro(s.CurrentPeriodStart), micro(s.CurrentPeriodEnd), micro(s.Anchor)
		s.TrialEnd, s.PastDueSince, s.CanceledAt, s.Created = micro(s.TrialEnd), micro(s.PastDueSince), micro(s.CanceledAt), micro(s.Created)
		subs[i] = s
	}
	c.Subscriptions = subs
	if c.Invoice != nil {
		inv := *c.Invoice
		inv.Created, inv.Finalized, inv.PaidAt = micro(inv.Created), micro(inv.Finalized), micro(inv.PaidAt)
		inv.Lines = slices.Clone(inv.Lines)
		for i, l := range inv.Lines {
			inv.Lines[i].PeriodStart, inv.Lines[i].PeriodEnd = micro(l.PeriodStart), micro(l.PeriodEnd)
		}
		c.Invoice = &inv
	}
	es := make([]billing.Entry, len(c.Entries))
	for i, e := range c.Entries {
		e.At = micro(e.At)
		es[i] = e
	}
	c.Entries = es
	if c.Request != nil {
		r := *c.Request
		r.Created = micro(r.Created)
		c.Request = &r
	}
	return c
}

// limitArg returns limit as a LIMIT parameter: nil (no limit) for a
// negative one.
func limitArg(limit int) any {
	if limit < 0 {
		return nil
	}
	return limit
}

// docs collects the jsonb records a query returns.
func docs[T any](rows pgx.Rows, what string) ([]T, error) {
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) {
		var doc []byte
		var v T
		if err := r.Scan(&doc); err != nil {
			return v, err
		}
		return v, json.Unmarshal(doc, &v)
	})
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	return out, nil
}

// doc returns the one jsonb record a query returns.
func doc[T any](row pgx.Row, format string, args ...any) (T, error) {
	var b []byte
	var v T
	if err := row.Scan(&b); err != nil {
		return v, notFound(err, format, args...)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, wrap(err, format, args...)
	}
	return v, nil
}

// Subscription implements billing.Store.
func (s *Store) Subscription(ctx context.Context, id string) (billing.Subscription, error) {
	return doc[billing.Subscription](s.pool.QueryRow(ctx, `SELECT doc FROM billing_subscriptions WHERE id = $1`, id),
		"subscription %q", id)
}

// CurrentSubscription implements billing.Store. Of subscriptions created
// at the same time, the one of the greatest id is the most recent.
func (s *Store) CurrentSubscription(ctx context.Context, account string) (billing.Subscription, error) {
	return doc[billing.Subscription](s.pool.QueryRow(ctx, `
		SELECT doc FROM billing_subscriptions WHERE account = $1
		ORDER BY status = 'canceled', created DESC, id DESC LIMIT 1`, account),
		"subscription of account %q", account)
}

// Subscriptions implements billing.Store.
func (s *Store) Subscriptions(ctx context.Context, after string, limit int) ([]billing.Subscription, error) {
	rows, _ := s.pool.Query(ctx, `SELECT doc FROM billing_subscriptions WHERE id > $1 ORDER BY id LIMIT $2`,
		after, limitArg(limit))
	return docs[billing.Subscription](rows, "subscriptions")
}

// DueSubscriptions implements billing.Store.
func (s *Store) DueSubscriptions(ctx context.Context, asOf time.Time, after string, limit int) ([]billing.Subscription, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT doc FROM billing_subscriptions WHERE due_at <= $1 AND id > $2 ORDER BY id LIMIT $3`,
		asOf, after, limitArg(limit))
	return docs[billing.Subscription](rows, "due subscriptions")
}

// Invoice implements billing.Store.
func (s *Store) Invoice(ctx context.Context, id string) (billing.Invoice, error) {
	return doc[billing.Invoice](s.pool.QueryRow(ctx, `SELECT doc FROM billing_invoices WHERE id = $1`, id),
		"invoice %q", id)
}

// AccountInvoices implements billing.Store.
func (s *Store) AccountInvoices(ctx context.Context, account string) ([]billing.Invoice, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT doc FROM billing_invoices WHERE account = $1 ORDER BY created DESC, id`, account)
	return docs[billing.Invoice](rows, fmt.Sprintf("invoices of account %q", account))
}

// Invoices implements billing.Store.
func (s *Store) Invoices(ctx context.Context, after string, limit int) ([]billing.Invoice, error) {
	rows, _ := s.pool.Query(ctx, `SELECT doc FROM billing_invoices WHERE id > $1 ORDER BY id LIMIT $2`,
		after, limitArg(limit))
	return docs[billing.Invoice](rows, "invoices")
}

// Entries implements billing.Store.
func (s *Store) Entries(ctx context.Context, after uint64, limit int) ([]billing.Entry, error) {
	if after >= math.MaxInt64 {
		return nil, nil // beyond any seq
	}
	rows, _ := s.pool.Query(ctx, `
		SELECT seq, at, account, invoice, kind, amount, currency, charge_id, idempotency_key
		FROM billing_entries WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limitArg(limit))
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (billing.Entry, error) {
		var e billing.Entry
		var seq int64
		var kind string
		err := r.Scan(&seq, &e.At, &e.Account, &e.Invoice, &kind, &e.Amount.Amount, &e.Amount.Currency, &e.ChargeID, &e.IdempotencyKey)
		e.Seq, e.Kind, e.At = uint64(seq), billing.EntryKind(kind), e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, wrap(err, "ledger entries after %d", after)
	}
	return es, nil
}

// Request implements billing.Store.
func (s *Store) Request(ctx context.Context, account, key string) (billing.Request, error) {
	var r billing.Request
	var body []byte
	err := s.pool.QueryRow(ctx, `
		SELECT account, key, hash, status, body, created FROM billing_requests WHERE account = $1 AND key = $2`,
		account, key).Scan(&r.Account, &r.Key, &r.Hash, &r.Status, &body, &r.Created)
	if err != nil {
		return billing.Request{}, notFound(err, "request of account %q with idempotency key %q", account, key)
	}
	if len(body) > 0 {
		r.Body = body
	}
	r.Created = r.Created.UTC()
	return r, nil
}

// PruneRequests implements billing.Store.
func (s *Store) PruneRequests(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM billing_requests WHERE created < $1`, before)
	if err != nil {
		return 0, wrap(err, "prune requests before %v", before)
	}
	return int(tag.RowsAffected()), nil
}
