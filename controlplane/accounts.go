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
		return fsm.AccountsStore(n.fsm, n.apply, n.viewerRead), nil
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

// catchUp makes this node's state reflect every write committed before
// the call (cluster.Node.CatchUp, a linearizable read), boundedly: the
// accounts' and billing's lookups that must be current call it, and a
// node cut off from the leader refuses them (cluster.ErrNoLeader or
// cluster.ErrStale) rather than answer from an old copy.
func (n *Node) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return n.raft.CatchUp(ctx)
}

// viewerRead is catchUp for the accounts' lookups, which every viewer
// request's session check makes (at most once a CacheTTL per session):
// while no leader can be reached, an election say, it lets them read
// this node's copy for viewerGrace after the node last heard from a
// leader, so that players ride out an election; a node cut off for
// longer refuses them.
func (n *Node) viewerRead(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
	defer cancel()
	return n.raft.CatchUpOrRecent(ctx, viewerGrace)
}

// viewerGrace is how long after its last word from a leader a node still
// answers the accounts' lookups from its own copy (docs/api.md, "Read
// consistency").
const viewerGrace = 5 * time.Second

// catchUpTimeout bounds a lookup's wait to be current: a read-index
// round and the wait to apply up to it.
const catchUpTimeout = 5 * time.Second

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
