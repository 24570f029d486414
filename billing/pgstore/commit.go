package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/internal/pgdb"
)

// Commit implements billing.Store. The steps take their locks in the
// order the package comment gives; the first condition that fails rolls
// the whole change back.
func (s *Store) Commit(ctx context.Context, c billing.Change) (billing.Committed, error) {
	if err := billing.CheckChange(c); err != nil {
		return billing.Committed{}, fmt.Errorf("pgstore: %w", err)
	}
	c = truncateChange(c)
	var out billing.Committed
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := writeSubscriptions(ctx, tx, c.Subscriptions); err != nil {
			return err
		}
		if c.Invoice != nil {
			inv, err := writeInvoice(ctx, tx, *c.Invoice)
			if err != nil {
				return err
			}
			out.Invoice = &inv
		}
		entries, err := appendEntries(ctx, tx, c.Entries)
		if err != nil {
			return err
		}
		out.Entries = entries
		if c.Request != nil {
			return insertRequest(ctx, tx, *c.Request)
		}
		return nil
	})
	if err != nil {
		return billing.Committed{}, err
	}
	return out, nil
}

// writeSubscriptions creates or replaces subs by compare-and-set.
func writeSubscriptions(ctx context.Context, tx pgx.Tx, subs []billing.Subscription) error {
	if len(subs) == 0 {
		return nil
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.ID
	}
	type stored struct {
		account string
		version uint64
	}
	// Locked in id order: two changes of the same subscriptions queue.
	have := map[string]stored{}
	rows, _ := tx.Query(ctx, `
		SELECT id, account, version FROM billing_subscriptions
		WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	var (
		id  string
		cur stored
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &cur.account, &cur.version}, func() error {
		have[id] = cur
		return nil
	})
	if err != nil {
		return wrap(err, "lock subscriptions %q", ids)
	}
	for _, sub := range subs {
		cur, ok := have[sub.ID]
		switch {
		case sub.Version == 1 && ok:
			return fmt.Errorf("pgstore: create subscription %q: %w", sub.ID, billing.ErrExists)
		case sub.Version == 1:
		case !ok:
			return fmt.Errorf("pgstore: replace subscription %q: %w", sub.ID, billing.ErrNotFound)
		case cur.version != sub.Version-1:
			return fmt.Errorf("pgstore: replace subscription %q of version %d with version %d: %w",
				sub.ID, cur.version, sub.Version, billing.ErrConflict)
		case cur.account != sub.Account:
			return fmt.Errorf("pgstore: subscription %q is account %q's, not %q: %w",
				sub.ID, cur.account, sub.Account, billing.ErrConflict)
		}
	}
	// The canceled first, so that the unique index of live subscriptions
	// sees an account's old one canceled before its new one is written.
	order := slices.Clone(subs)
	slices.SortStableFunc(order, func(a, b billing.Subscription) int {
		return boolOrder(a.Status != billing.Canceled, b.Status != billing.Canceled)
	})
	for _, sub := range order {
		if err := writeSubscription(ctx, tx, sub); err != nil {
			return err
		}
	}
	return nil
}

// boolOrder orders false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// writeSubscription inserts (Version 1) or updates sub, whose stored
// version writeSubscriptions checked under the row's lock.
func writeSubscription(ctx context.Context, tx pgx.Tx, sub billing.Subscription) error {
	doc, err := json.Marshal(sub)
	if err != nil {
		return invalid("subscription %q: %v", sub.ID, err) // a time beyond year 9999
	}
	var due *time.Time
	if at := billing.DueAt(sub); !at.IsZero() {
		due = &at
	}
	var tag pgconn.CommandTag
	if sub.Version == 1 {
		tag, err = tx.Exec(ctx, `
			INSERT INTO billing_subscriptions (id, account, status, due_at, created, version, doc)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			sub.ID, sub.Account, string(sub.Status), due, sub.Created, int64(sub.Version), doc)
	} else {
		tag, err = tx.Exec(ctx, `
			UPDATE billing_subscriptions SET account = $2, status = $3, due_at = $4, created = $5, version = $6, doc = $7
			WHERE id = $1 AND version = $8`,
			sub.ID, sub.Account, string(sub.Status), due, sub.Created, int64(sub.Version), doc, int64(sub.Version-1))
	}
	switch code, constraint := pgdb.Code(err); {
	case err == nil && tag.RowsAffected() == 1:
		return nil
	case err == nil:
		return fmt.Errorf("pgstore: replace subscription %q: %w", sub.ID, billing.ErrConflict)
	case code == pgdb.UniqueViolation && constraint == "billing_subscriptions_pkey":
		// Created meanwhile by a change not committed when this one
		// locked the subscriptions.
		return fmt.Errorf("pgstore: create subscription %q: %w", sub.ID, billing.ErrExists)
	case code == pgdb.UniqueViolation && constraint == "billing_subscriptions_live":
		return fmt.Errorf("pgstore: subscription %q: account %q has another that is not canceled: %w",
			sub.ID, sub.Account, billing.ErrConflict)
	}
	return wrap(err, "write subscription %q", sub.ID)
}

// writeInvoice creates or replaces inv, numbering it, and returns it as
// stored.
func writeInvoice(ctx context.Context, tx pgx.Tx, inv billing.Invoice) (billing.Invoice, error) {
	var (
		account string
		number  *string
	)
	err := tx.QueryRow(ctx, `SELECT account, number FROM billing_invoices WHERE id = $1 FOR UPDATE`, inv.ID).
		Scan(&account, &number)
	exists := err == nil
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return inv, wrap(err, "lock invoice %q", inv.ID)
	case account != inv.Account:
		return inv, fmt.Errorf("pgstore: invoice %q is account %q's, not %q: %w", inv.ID, account, inv.Account, billing.ErrConflict)
	}
	stored := ""
	if number != nil {
		stored = *number
	}
	// A stored number is kept, whatever the change says; one the store
	// did not give would break the sequence.
	if inv.Number != "" && stored == "" {
		return inv, invalid("invoice %q: number %q was not given by the store; leave Number empty for the store to give one",
			inv.ID, inv.Number)
	}
	inv.Number = stored
	if inv.Number == "" && inv.Status != billing.Draft {
		if inv.Number, err = nextNumber(ctx, tx, inv.ID, inv.Finalized); err != nil {
			return inv, err
		}
	}
	doc, err := json.Marshal(inv)
	if err != nil {
		return inv, invalid("invoice %q: %v", inv.ID, err) // a time beyond year 9999
	}
	var num *string
	if inv.Number != "" {
		num = &inv.Number
	}
	if exists {
		_, err = tx.Exec(ctx, `UPDATE billing_invoices SET number = $2, created = $3, doc = $4 WHERE id = $1`,
			inv.ID, num, inv.Created, doc)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO billing_invoices (id, account, number, created, doc) VALUES ($1, $2, $3, $4, $5)`,
			inv.ID, inv.Account, num, inv.Created, doc)
	}
	if code, constraint := pgdb.Code(err); code == pgdb.UniqueViolation && constraint == "billing_invoices_pkey" {
		// Created meanwhile: this change's number goes back with it.
		return inv, fmt.Errorf("pgstore: create invoice %q: written meanwhile: %w", inv.ID, billing.ErrConflict)
	}
	if err != nil {
		return inv, wrap(err, "write invoice %q", inv.ID)
	}
	return inv, nil
}

// nextNumber takes the next invoice number of at's year (UTC) for
// invoice id. The year's row stays locked until the transaction ends, and
// a rollback gives the number back.
func nextNumber(ctx context.Context, tx pgx.Tx, id string, at time.Time) (string, error) {
	y := at.UTC().Year()
	if y < 1 || y > 9999 {
		return "", invalid("invoice %q: finalized in year %d, which has no invoice numbers", id, y)
	}
	var last int64
	err := tx.QueryRow(ctx, `
		INSERT INTO billing_invoice_numbers AS n (year, last) VALUES ($1, 1)
		ON CONFLICT (year) DO UPDATE SET last = n.last + 1
		RETURNING last`, y).Scan(&last)
	if err != nil {
		return "", wrap(err, "number invoice %q", id)
	}
	return billing.Number(y, uint64(last)), nil
}

// appendEntries inserts es and returns them with their Seq.
func appendEntries(ctx context.Context, tx pgx.Tx, es []billing.Entry) ([]billing.Entry, error) {
	if len(es) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(ledgerLock)); err != nil {
		return nil, wrap(err, "lock the ledger")
	}
	out := make([]billing.Entry, len(es))
	for i, e := range es {
		var seq int64
		err := tx.QueryRow(ctx, `
			INSERT INTO billing_entries (at, account, invoice, kind, amount, currency, charge_id, idempotency_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
			e.At, e.Account, e.Invoice, string(e.Kind), e.Amount.Amount, e.Amount.Currency, e.ChargeID, e.IdempotencyKey).Scan(&seq)
		if code, constraint := pgdb.Code(err); code == pgdb.UniqueViolation && constraint == "billing_entries_once" {
			return nil, fmt.Errorf("pgstore: %s of invoice %q with key %q: %w", e.Kind, e.Invoice, e.IdempotencyKey, billing.ErrDuplicate)
		}
		if err != nil {
			return nil, wrap(err, "append %s of invoice %q", e.Kind, e.Invoice)
		}
		e.Seq = uint64(seq)
		out[i] = e
	}
	return out, nil
}

// insertRequest records r.
func insertRequest(ctx context.Context, tx pgx.Tx, r billing.Request) error {
	body := []byte(r.Body)
	if body == nil {
		body = []byte{}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO billing_requests (account, key, hash, status, body, created) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.Account, r.Key, r.Hash, r.Status, body, r.Created)
	if code, _ := pgdb.Code(err); code == pgdb.UniqueViolation {
		return fmt.Errorf("pgstore: request of account %q with idempotency key %q: %w", r.Account, r.Key, billing.ErrExists)
	}
	if err != nil {
		return wrap(err, "record request of account %q with idempotency key %q", r.Account, r.Key)
	}
	return nil
}
