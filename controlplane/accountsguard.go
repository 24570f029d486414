package controlplane

import (
	"context"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/controlplane/protect"
)

// guardedStore is an accounts store with every call made through a
// circuit breaker: a store that keeps failing is then refused at once
// (503 with Retry-After) instead of holding every request that needs it
// until its timeout.
type guardedStore struct {
	s  accounts.Store
	br *protect.Breaker
}

func (g guardedStore) PutPlan(ctx context.Context, p accounts.Plan) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.PutPlan(ctx, p) })
}

func (g guardedStore) Plans(ctx context.Context) ([]accounts.Plan, error) {
	return protect.Call(ctx, g.br, g.s.Plans)
}

func (g guardedStore) CreateAccount(ctx context.Context, a accounts.Account, first accounts.Profile) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.CreateAccount(ctx, a, first) })
}

func (g guardedStore) Account(ctx context.Context, id string) (accounts.Account, error) {
	return protect.Call(ctx, g.br, func(ctx context.Context) (accounts.Account, error) { return g.s.Account(ctx, id) })
}

func (g guardedStore) AccountByEmail(ctx context.Context, email string) (accounts.Account, error) {
	return protect.Call(ctx, g.br, func(ctx context.Context) (accounts.Account, error) { return g.s.AccountByEmail(ctx, email) })
}

func (g guardedStore) Profiles(ctx context.Context, account string) ([]accounts.Profile, error) {
	return protect.Call(ctx, g.br, func(ctx context.Context) ([]accounts.Profile, error) { return g.s.Profiles(ctx, account) })
}

func (g guardedStore) AddProfile(ctx context.Context, p accounts.Profile, max int) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.AddProfile(ctx, p, max) })
}

func (g guardedStore) DeleteProfile(ctx context.Context, account, id string) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.DeleteProfile(ctx, account, id) })
}

func (g guardedStore) CreateSession(ctx context.Context, s accounts.Session, max int, expired time.Time) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.CreateSession(ctx, s, max, expired) })
}

func (g guardedStore) Session(ctx context.Context, id string) (accounts.Session, error) {
	return protect.Call(ctx, g.br, func(ctx context.Context) (accounts.Session, error) { return g.s.Session(ctx, id) })
}

func (g guardedStore) TouchSession(ctx context.Context, id string, at time.Time) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.TouchSession(ctx, id, at) })
}

func (g guardedStore) DeleteSession(ctx context.Context, id string) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.DeleteSession(ctx, id) })
}

func (g guardedStore) DeleteSessions(ctx context.Context, account string) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.DeleteSessions(ctx, account) })
}

func (g guardedStore) AcquireStream(ctx context.Context, s accounts.Stream, max int, ttl time.Duration) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.AcquireStream(ctx, s, max, ttl) })
}

func (g guardedStore) RenewStream(ctx context.Context, account, id string, at time.Time, ttl time.Duration) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.RenewStream(ctx, account, id, at, ttl) })
}

func (g guardedStore) EndStream(ctx context.Context, account, id string) error {
	return g.br.Do(ctx, func(ctx context.Context) error { return g.s.EndStream(ctx, account, id) })
}

func (g guardedStore) Streams(ctx context.Context, account string, now time.Time, ttl time.Duration) ([]accounts.Stream, error) {
	return protect.Call(ctx, g.br, func(ctx context.Context) ([]accounts.Stream, error) { return g.s.Streams(ctx, account, now, ttl) })
}

var _ accounts.Store = guardedStore{}
