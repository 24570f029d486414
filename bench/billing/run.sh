#!/bin/sh
# Billing's renewal pass at scale (bench/billing): 100,000 subscriptions
# renewed through a one-node control plane with the test payment
# provider, the pass SIGKILLed half way between a charge and its record
# and run again; wall time, charges a second, what the rerun reconciled,
# and the duplicate charges (must be 0), then an uninterrupted pass a
# month later; on the replicated store and, when PostgreSQL is
# installed, on PostgreSQL. Then the go test benchmarks of the test
# provider (the cost of one charge; TMPDIR chooses the file system).
# About 2 minutes for the replicated store and 10 for PostgreSQL on a
# busy 2-core machine, with about 1.8 GiB of memory at the peak.
#
#   bench/billing/run.sh                       # 100,000, both stores
#   bench/billing/run.sh --quick               # 10,000
#   bench/billing/run.sh -store replicated -cpuprofile /tmp/renew
exec "$(dirname "$0")/../gobench.sh" billing billing/testprovider 1s "$@"
