package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fillcast/fillcast/accounts"
)

// CreateSession implements accounts.Store.
func (s *Store) CreateSession(ctx context.Context, ss accounts.Session, max int, expired time.Time) error {
	if max < 1 {
		return invalid("create session: limit %d", max)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, ss.Account); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE account = $1 AND last_seen < $2`, ss.Account, expired); err != nil {
			return fmt.Errorf("pgstore: drop expired sessions of account %q: %w", ss.Account, err)
		}
		// Keep the max-1 most recently seen, to make room for the new one.
		if _, err := tx.Exec(ctx, `
			DELETE FROM sessions WHERE id IN (
				SELECT id FROM sessions WHERE account = $1
				ORDER BY last_seen DESC, created DESC, id DESC OFFSET $2)`, ss.Account, max-1); err != nil {
			return fmt.Errorf("pgstore: drop sessions of account %q beyond %d: %w", ss.Account, max, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (id, account, hash, created, last_seen) VALUES ($1, $2, $3, $4, $5)`,
			ss.ID, ss.Account, ss.Hash, ss.Created, ss.LastSeen)
		if err != nil {
			return exists(err, "create session %q", ss.ID)
		}
		return nil
	})
}

// Session implements accounts.Store.
func (s *Store) Session(ctx context.Context, id string) (accounts.Session, error) {
	var ss accounts.Session
	err := s.pool.QueryRow(ctx, `SELECT id, account, hash, created, last_seen FROM sessions WHERE id = $1`, id).
		Scan(&ss.ID, &ss.Account, &ss.Hash, &ss.Created, &ss.LastSeen)
	if err != nil {
		return accounts.Session{}, notFound(err, "session %q", id)
	}
	ss.Created, ss.LastSeen = ss.Created.UTC(), ss.LastSeen.UTC()
	return ss, nil
}

// TouchSession implements accounts.Store.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen = greatest(last_seen, $2) WHERE id = $1`, id, at)
	return affected(tag.RowsAffected(), err, "touch session %q", id)
}

// DeleteSession implements accounts.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id)
	return affected(tag.RowsAffected(), err, "delete session %q", id)
}

// DeleteSessions implements accounts.Store.
func (s *Store) DeleteSessions(ctx context.Context, account string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE account = $1`, account); err != nil {
		return fmt.Errorf("pgstore: delete sessions of account %q: %w", account, err)
	}
	return nil
}

// affected maps a write that changed no row to ErrNotFound.
func affected(n int64, err error, format string, args ...any) error {
	switch {
	case err != nil:
		return fmt.Errorf("pgstore: %s: %w", fmt.Sprintf(format, args...), err)
	case n == 0:
		return fmt.Errorf("pgstore: %s: %w", fmt.Sprintf(format, args...), accounts.ErrNotFound)
	}
	return nil
}

// A lease renewed at r is live at now while now < r+ttl, that is while
// r > now-ttl: the queries compare renewed with that bound.

// AcquireStream implements accounts.Store.
func (s *Store) AcquireStream(ctx context.Context, st accounts.Stream, max int, ttl time.Duration) error {
	if max < 1 || ttl <= 0 {
		return invalid("acquire stream: limit %d, ttl %v", max, ttl)
	}
	bound := st.Renewed.Add(-ttl)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockAccount(ctx, tx, st.Account); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM streams WHERE account = $1 AND renewed <= $2`, st.Account, bound); err != nil {
			return fmt.Errorf("pgstore: drop expired streams of account %q: %w", st.Account, err)
		}
		// What is left is live: a lease of st.ID is renewed, keeping its
		// start, and takes no other slot.
		tag, err := tx.Exec(ctx, `UPDATE streams SET profile = $3, title = $4, renewed = $5 WHERE account = $1 AND id = $2`,
			st.Account, st.ID, st.Profile, st.Title, st.Renewed)
		if err != nil {
			return fmt.Errorf("pgstore: renew stream %q: %w", st.ID, err)
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM streams WHERE account = $1`, st.Account).Scan(&live); err != nil {
			return fmt.Errorf("pgstore: count streams of account %q: %w", st.Account, err)
		}
		if live >= max {
			return fmt.Errorf("pgstore: %d streams at once: %w", max, accounts.ErrLimit)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO streams (account, id, profile, title, started, renewed) VALUES ($1, $2, $3, $4, $5, $6)`,
			st.Account, st.ID, st.Profile, st.Title, st.Started, st.Renewed)
		if err != nil {
			return exists(err, "acquire stream %q", st.ID)
		}
		return nil
	})
}

// RenewStream implements accounts.Store. One statement, without the
// account's lock: it only changes a lease that is live, which cannot make
// one more count.
func (s *Store) RenewStream(ctx context.Context, account, id string, at time.Time, ttl time.Duration) error {
	if ttl <= 0 {
		return invalid("renew stream: ttl %v", ttl)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE streams SET renewed = $3 WHERE account = $1 AND id = $2 AND renewed > $4`,
		account, id, at, at.Add(-ttl))
	return affected(tag.RowsAffected(), err, "renew stream %q of account %q", id, account)
}

// EndStream implements accounts.Store.
func (s *Store) EndStream(ctx context.Context, account, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM streams WHERE account = $1 AND id = $2`, account, id)
	return affected(tag.RowsAffected(), err, "end stream %q of account %q", id, account)
}

// Streams implements accounts.Store.
func (s *Store) Streams(ctx context.Context, account string, now time.Time, ttl time.Duration) ([]accounts.Stream, error) {
	rows, _ := s.pool.Query(ctx, `
		SELECT id, account, profile, title, started, renewed FROM streams
		WHERE account = $1 AND renewed > $2 ORDER BY started, id`, account, now.Add(-ttl))
	streams, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (accounts.Stream, error) {
		var st accounts.Stream
		err := r.Scan(&st.ID, &st.Account, &st.Profile, &st.Title, &st.Started, &st.Renewed)
		st.Started, st.Renewed = st.Started.UTC(), st.Renewed.UTC()
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: streams of account %q: %w", account, err)
	}
	return streams, nil
}
