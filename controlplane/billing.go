package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fillcast/fillcast"
	"github.com/fillcast/fillcast/billing"
	billpg "github.com/fillcast/fillcast/billing/pgstore"
	"github.com/fillcast/fillcast/billing/subscriptions"
	"github.com/fillcast/fillcast/billing/testprovider"
	"github.com/fillcast/fillcast/controlplane/fsm"
)

// testProviderScheme prefixes Config.PaymentProvider for the built-in
// test provider.
const testProviderScheme = "test:"

// validatePaymentProvider checks Config.PaymentProvider.
func validatePaymentProvider(p string) error {
	if p != "" && (!strings.HasPrefix(p, testProviderScheme) || len(p) == len(testProviderScheme)) {
		return fillcast.ConfigErrorf("controlplane", "PaymentProvider", "%q: want test:DIR (the built-in test provider; a real one plugs in through billing.PaymentProvider)", p)
	}
	return nil
}

// billingParts is billing as the node runs it: the service, the store's
// database when it is PostgreSQL, and the test provider.
type billingParts struct {
	svc      *subscriptions.Service
	db       *billingDB // nil for the replicated state
	provider *testprovider.Provider
	dir      string // the test provider's
	shared   string // Config.PaymentProvider, empty for the node's own
	joins    bool   // the node joins a cluster
	every    time.Duration
	leads    func() bool
	log      *slog.Logger
}

// newBilling returns billing over the replicated state, or PostgreSQL
// with Config.AccountsDB, paying through the provider of
// Config.PaymentProvider.
func (n *Node) newBilling(plans subscriptions.Plans, reg prometheus.Registerer, log *slog.Logger) (*billingParts, error) {
	dir := strings.TrimPrefix(cmp.Or(n.cfg.PaymentProvider, testProviderScheme+filepath.Join(n.cfg.DataDir, "payments")), testProviderScheme)
	provider, err := testprovider.New(testprovider.Config{Dir: dir})
	if err != nil {
		return nil, err
	}
	b := &billingParts{provider: provider, dir: dir, shared: n.cfg.PaymentProvider, joins: len(n.cfg.Join) > 0, every: cmp.Or(n.cfg.RenewEvery, time.Hour), leads: n.leads, log: log}
	var store billing.Store
	if n.cfg.AccountsDB == "" {
		store = fsm.BillingStore(n.fsm, n.apply, n.catchUp)
	} else {
		b.db = &billingDB{cfg: billpg.Config{DSN: n.cfg.AccountsDB}}
		store = b.db
	}
	m, err := subscriptions.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if b.svc, err = subscriptions.New(n.cfg.Billing, subscriptions.Deps{Store: store, Provider: provider, Plans: plans, Log: log, Metrics: m}); err != nil {
		return nil, err
	}
	return b, nil
}

// open surfaces a bad provider directory, and connects PostgreSQL.
func (b *billingParts) open(ctx context.Context) error {
	if b.shared == "" {
		log := b.log.Info
		if b.joins {
			log = b.log.Warn
		}
		log("billing: payments go to the test provider in this node's own data directory: give every node of a cluster one --payment-provider test:DIR they share (or a real provider), or a pass after a leader change cannot find a charge made through another node", "dir", b.dir)
	}
	if err := b.provider.Open(ctx); err != nil {
		return err
	}
	if b.db != nil {
		return b.db.open(ctx)
	}
	return nil
}

func (b *billingParts) close() error {
	if b.db != nil && b.db.db != nil {
		b.db.db.Close()
	}
	return b.provider.Close()
}

// run is the leader's renewal pass, every RenewEvery: charges what is
// due, retries what failed, ends what was canceled. Any node may run a
// pass too (POST /v1/billing/renewals); passes at once charge once.
func (b *billingParts) run(ctx context.Context) error {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !b.leads() {
			continue
		}
		res, err := b.svc.Renew(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			b.log.Warn("billing: renewal pass", "err", err)
		}
		if res.Due > 0 {
			b.log.Info("billing: renewal pass", "due", res.Due, "renewed", res.Renewed, "past_due", res.PastDue,
				"canceled", res.Canceled, "reconciled", res.Reconciled, "failed", res.Failed, "seconds", res.Seconds)
		}
	}
}

// billingDB is billing's PostgreSQL store, connected when Run opens it.
type billingDB struct {
	billing.Store // the *billpg.Store, once open
	cfg           billpg.Config
	db            *billpg.Store
}

func (d *billingDB) open(ctx context.Context) error {
	db, err := billpg.Open(ctx, d.cfg)
	if err != nil {
		return fmt.Errorf("controlplane: billing database: %w", err)
	}
	d.db, d.Store = db, db
	return nil
}
