package controlplane

import (
	"cmp"
	"context"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/accounts/pgstore"
	"github.com/fillcast/fillcast/controlplane/fsm"
	"github.com/fillcast/fillcast/controlplane/gateway"
)

// accountsStore returns where the viewers' records live: PostgreSQL with
// Config.AccountsDB, connected by Run's "accounts" part, else the
// replicated state. The part is nil for the replicated state.
func (n *Node) accountsStore() (accounts.Store, *accountsDB) {
	if n.cfg.AccountsDB == "" {
		return fsm.AccountsStore(n.fsm, n.apply, n.catchUp), nil
	}
	db := &accountsDB{cfg: pgstore.Config{DSN: n.cfg.AccountsDB}}
	return db, db
}

// apply replicates a command for a store in the replicated state, bounded
// here, so that a viewer's request never waits without end for a leader,
// whatever its route's timeout. A retried request applies once.
func (n *Node) apply(ctx context.Context, c fsm.Command) error {
	c.Stamp(gateway.RequestID(ctx))
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(n.cfg.API.WriteTimeout, 10*time.Second))
	defer cancel()
	return n.raft.Apply(ctx, c)
}

// catchUp waits, boundedly, until this node's state has every write
// applied through other nodes so far.
func (n *Node) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return n.raft.CatchUp(ctx)
}

// catchUpTimeout bounds the wait of a lookup that missed for the writes
// made through other nodes.
const catchUpTimeout = 2 * time.Second

// accountsDB is the PostgreSQL store, connected when Run opens it,
// before the API serves a request.
type accountsDB struct {
	accounts.Store // the *pgstore.Store, once open
	cfg            pgstore.Config
	db             *pgstore.Store
}

func (a *accountsDB) open(ctx context.Context) error {
	db, err := pgstore.Open(ctx, a.cfg)
	if err != nil {
		return err
	}
	a.db, a.Store = db, db
	return nil
}

func (a *accountsDB) close() error {
	a.db.Close()
	return nil
}
