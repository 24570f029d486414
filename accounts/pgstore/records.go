package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/internal/pgdb"
)

// PutPlan implements accounts.Store.
func (s *Store) PutPlan(ctx context.Context, p accounts.Plan) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO plans (id, name, max_height, max_streams, downloads, price_amount, price_currency, period, trial_days)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET
			name = excluded.name, max_height = excluded.max_height, max_streams = excluded.max_streams,
			downloads = excluded.downloads, price_amount = excluded.price_amount,
			price_currency = excluded.price_currency, period = excluded.period, trial_days = excluded.trial_days`,
		p.ID, p.Name, p.MaxHeight, p.MaxStreams, p.Downloads, p.Price.Amount, p.Price.Currency, p.Period, p.TrialDays)
	if err != nil {
		return fmt.Errorf("pgstore: put plan %q: %w", p.ID, err)
	}
	return nil
}

// Plans implements accounts.Store.
func (s *Store) Plans(ctx context.Context) ([]accounts.Plan, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, name, max_height, max_streams, downloads, price_amount, price_currency, period, trial_days
		FROM plans ORDER BY id`)
	plans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accounts.Plan, error) {
		var p accounts.Plan
		err := r.Scan(&p.ID, &p.Name, &p.MaxHeight, &p.MaxStreams, &p.Downloads, &p.Price.Amount, &p.Price.Currency, &p.Period, &p.TrialDays)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: plans: %w", err)
	}
	return plans, nil
}

// CreateAccount implements accounts.Store.
func (s *Store) CreateAccount(ctx context.Context, a accounts.Account, first accounts.Profile) error {
	if first.Account != a.ID {
		return invalid("first profile %q is of account %q, not %q", first.ID, first.Account, a.ID)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// The unique index on email answers a taken email, even against a
		// concurrent insert; the plan's foreign key, an unknown plan.
		_, err := tx.Exec(ctx, `
			INSERT INTO accounts (id, email, password_hash, plan, created) VALUES ($1, $2, $3, $4, $5)`,
			a.ID, a.Email, a.PasswordHash, a.Plan, a.Created)
		if code, constraint := pgdb.Code(err); code == pgdb.ForeignKeyViolation && constraint == "accounts_plan_fkey" {
			return fmt.Errorf("pgstore: create account %q: plan %q: %w", a.ID, a.Plan, accounts.ErrNotFound)
		}
		if err != nil {
			return exists(err, "create account %q with email %s", a.ID, a.Email)
		}
		return insertProfile(ctx, tx, first)
	})
}

func insertProfile(ctx context.Context, tx pgx.Tx, p accounts.Profile) error {
	_, err := tx.Exec(ctx, `INSERT INTO profiles (account, id, name, kids, created) VALUES ($1, $2, $3, $4, $5)`,
		p.Account, p.ID, p.Name, p.Kids, p.Created)
	if err != nil {
		return exists(err, "add profile %q to account %q", p.ID, p.Account)
	}
	return nil
}

const accountColumns = `id, email, password_hash, plan, created`

func scanAccount(row pgx.Row) (accounts.Account, error) {
	var a accounts.Account
	err := row.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.Plan, &a.Created)
	a.Created = a.Created.UTC()
	return a, err
}

// Account implements accounts.Store.
func (s *Store) Account(ctx context.Context, id string) (accounts.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE id = $1`, id))
	if err != nil {
		return accounts.Account{}, notFound(err, "account %q", id)
	}
	return a, nil
}

// AccountByEmail implements accounts.Store.
func (s *Store) AccountByEmail(ctx context.Context, email string) (accounts.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE email = $1`, email))
	if err != nil {
		return accounts.Account{}, notFound(err, "account with email %s", email)
	}
	return a, nil
}

// Profiles implements accounts.Store.
func (s *Store) Profiles(ctx context.Context, account string) ([]accounts.Profile, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, account, name, kids, created FROM profiles WHERE account = $1 ORDER BY seq`, account)
	profiles, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accounts.Profile, error) {
		var p accounts.Profile
		err := r.Scan(&p.ID, &p.Account, &p.Name, &p.Kids, &p.Created)
		p.Created = p.Created.UTC()
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: profiles of account %q: %w", account, err)
	}
	return profiles, nil
}

// AddProfile implements accounts.Store.
func (s *Store) AddProfile(ctx context.Context, p accounts.Profile, max int) error {
	if max < 1 {
		return invalid("add profile: limit %d", max)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, p.Account); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM profiles WHERE account = $1`, p.Account).Scan(&n); err != nil {
			return fmt.Errorf("pgstore: count profiles of account %q: %w", p.Account, err)
		}
		if n >= max {
			return fmt.Errorf("pgstore: at most %d profiles per account: %w", max, accounts.ErrLimit)
		}
		return insertProfile(ctx, tx, p)
	})
}

// DeleteProfile implements accounts.Store.
func (s *Store) DeleteProfile(ctx context.Context, account, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, account); err != nil {
			if errors.Is(err, accounts.ErrNotFound) {
				return fmt.Errorf("pgstore: profile %q of account %q: %w", id, account, accounts.ErrNotFound)
			}
			return err
		}
		var first string
		err := tx.QueryRow(ctx, `SELECT id FROM profiles WHERE account = $1 ORDER BY seq LIMIT 1`, account).Scan(&first)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("pgstore: first profile of account %q: %w", account, err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM profiles WHERE account = $1 AND id = $2 AND id <> $3`, account, id, first)
		switch {
		case err != nil:
			return fmt.Errorf("pgstore: delete profile %q of account %q: %w", id, account, err)
		case tag.RowsAffected() == 1:
			return nil
		case id == first:
			return fmt.Errorf("pgstore: the first profile of an account cannot be deleted: %w", accounts.ErrLimit)
		}
		return fmt.Errorf("pgstore: profile %q of account %q: %w", id, account, accounts.ErrNotFound)
	})
}
