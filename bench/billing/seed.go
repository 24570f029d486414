package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fillcast/fillcast/accounts"
	"github.com/fillcast/fillcast/bench/internal/apicall"
	"github.com/fillcast/fillcast/billing"
	"github.com/fillcast/fillcast/billing/testprovider"
)

// The plan every subscription is on.
var benchPlan = accounts.Plan{ID: "bench", Name: "Bench", MaxHeight: 1080, MaxStreams: 2,
	Price: accounts.Money{Amount: 799, Currency: "EUR"}, Period: billing.PeriodMonth}

// seedWorkers commit subscriptions at once, so that raft (or PostgreSQL)
// batches them.
const seedWorkers = 64

// okCard is the test card whose charges succeed.
const okCard = "4242424242424242"

// seedResult is what seeding did.
type seedResult struct {
	Subscriptions int     `json:"subscriptions"`
	Seconds       float64 `json:"seconds"`
}

// Accounts and subscriptions are numbered, so that a check can name
// the one that went wrong.
func accountID(i int) string      { return fmt.Sprintf("acct_bench_%07d", i) }
func subscriptionID(i int) string { return fmt.Sprintf("sub_bench_%07d", i) }

// periodStart is when subscription i's current period began: about 40
// days before now, spread over a day by the minute, so that every one
// is due now, its period having ended 9 to 12 days ago.
func periodStart(now time.Time, i int) time.Time {
	return now.AddDate(0, 0, -40).Truncate(time.Minute).Add(-time.Duration(i%1440) * time.Minute)
}

// seed puts the plan through the node's API, then n active monthly
// subscriptions on it, each of its own account with a card attached at
// the provider on dir, straight into the billing store: one
// billing.Change each. Accounts need not exist, as renewals never look
// them up.
func seed(ctx context.Context, n *node, providerDir string, subs int) (seedResult, error) {
	start := time.Now()
	client := &http.Client{Timeout: 30 * time.Second}
	if _, err := apicall.Call(ctx, client, "PUT", n.url+"/v1/plans/"+benchPlan.ID, benchPlan, adminToken, http.StatusOK, nil); err != nil {
		return seedResult{}, err
	}
	provider, err := testprovider.New(testprovider.Config{Dir: providerDir})
	if err != nil {
		return seedResult{}, err
	}
	defer provider.Close()
	store := n.Billing().Store()
	now := time.Now().UTC()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range seedWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= subs {
					return
				}
				if err := seedOne(ctx, store, provider, now, i); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return seedResult{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return seedResult{}, err
	}
	return seedResult{Subscriptions: subs, Seconds: time.Since(start).Seconds()}, nil
}

// seedOne attaches account i's card and records its subscription.
func seedOne(ctx context.Context, store billing.Store, provider billing.PaymentProvider, now time.Time, i int) error {
	acct := accountID(i)
	pm, err := provider.AttachCard(ctx, acct, billing.Card{Number: okCard})
	if err != nil {
		return fmt.Errorf("attach the card of %s: %w", acct, err)
	}
	startAt := periodStart(now, i)
	sub := billing.Subscription{ID: subscriptionID(i), Account: acct, Plan: benchPlan.ID, Period: benchPlan.Period,
		Status: billing.Active, CurrentPeriodStart: startAt, CurrentPeriodEnd: billing.NextPeriodEnd(startAt, benchPlan.Period),
		Anchor: startAt, PaymentMethod: pm, Created: startAt, Version: 1}
	if _, err := store.Commit(ctx, billing.Change{At: now, Subscriptions: []billing.Subscription{sub}}); err != nil {
		return fmt.Errorf("record subscription %s: %w", sub.ID, err)
	}
	return nil
}

// cmpErr keeps the first error that is not the cancellation the first
// one caused.
func cmpErr(first, err error) error {
	if first == nil || errors.Is(first, context.Canceled) {
		return err
	}
	return first
}
