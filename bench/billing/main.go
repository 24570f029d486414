// Command billing measures the renewal pass of billing/subscriptions at
// scale, and proves its charge-once pattern under the worst crash: a
// real single-node control plane (raft on disk, the built-in test
// payment provider) renews -subs subscriptions due at once; the pass is
// SIGKILLed half way, exactly between a charge and the write that
// records it (failpoint billing-renew-after-charge), then run again on
// the same data. The bench prints the wall time of the two passes, the
// charges a second over both, what the rerun reconciled (charges the
// killed pass made but never recorded), and the number of duplicate
// charges (a second succeeded charge for one subscription and period),
// which must be 0. Then, by default, it renews the same subscriptions
// for the next month in one pass without interruption, for the
// throughput of an undisturbed pass.
//
// Each pass runs in a child process (this program run again with
// -child), which starts the node, waits until it leads and has replayed
// its log, runs subscriptions.Service.Renew, and after a completed pass
// audits everything: the provider's charges against the ledger's
// payments, every subscription active for its next period, and
// Service.Verify. The store is the replicated state (billing/embedded)
// and, when PostgreSQL is installed or -dsn names a server, PostgreSQL
// too (billing/pgstore): a throwaway server is started on a private
// socket, durable (fsync on), and stopped at the end.
//
// The provider's log is on /dev/shm by default (-provider-dir), as it
// fsyncs every charge: on a disk that alone bounds a pass at about a
// thousand charges a second.
//
//	go run ./bench/billing                          # 100,000 subscriptions, both stores
//	go run ./bench/billing -quick -store replicated  # 10,000, one store
//	go run ./bench/billing -cpuprofile /tmp/renew   # /tmp/renew-{store}-{rerun,next}.pprof
//
// It exits 1 on an error, a duplicate charge, a charge the ledger does
// not record, a subscription not renewed, or a problem Verify finds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fillcast/fillcast/billing/subscriptions"
)

func main() {
	var o options
	flag.IntVar(&o.subs, "subs", 100_000, "subscriptions to renew")
	flag.IntVar(&o.workers, "workers", 0, "the pass's workers (subscriptions.Config.PassWorkers); 0 means the service's default, 16")
	flag.IntVar(&o.page, "page", 0, "due subscriptions the pass reads at a time (subscriptions.Config.PassPage); 0 means the service's default, 10,000")
	flag.StringVar(&o.store, "store", "both", "replicated, postgres, or both (postgres only if it is available)")
	flag.StringVar(&o.dsn, "dsn", "", "a PostgreSQL server to use (a database is created on it and dropped); empty starts a throwaway one")
	flag.StringVar(&o.providerDir, "provider-dir", "/dev/shm", "where the test provider's log directory is made (tmpfs by default: it fsyncs every charge)")
	flag.StringVar(&o.dir, "dir", "", "where the node's data directory is made (default: the system's temporary directory)")
	flag.Float64Var(&o.killAt, "kill-at", 0.5, "kill the interrupted pass at this share of the charges")
	flag.StringVar(&o.failpoint, "failpoint", subscriptions.FailAfterCharge, "the failpoint that kills the interrupted pass: "+
		subscriptions.FailBeforeCharge+", "+subscriptions.FailAfterCharge+" (between a charge and its record: the worst case) or "+subscriptions.FailAfterCommit)
	flag.BoolVar(&o.next, "next", true, "then renew for the next month in one uninterrupted pass")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write CPU profiles of the completed passes to `PREFIX`-{store}-{rerun,next}.pprof")
	flag.DurationVar(&o.timeout, "timeout", time.Hour, "give up after this long")
	flag.BoolVar(&o.keep, "keep", false, "keep the data directories and logs")
	quick := flag.Bool("quick", false, "10,000 subscriptions (sets -subs)")
	child := flag.String("child", "", "internal: run one phase as described by this spec file")
	flag.Parse()
	if *quick {
		o.subs = 10_000
	}

	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, "billing child:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ok, err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "billing:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}
