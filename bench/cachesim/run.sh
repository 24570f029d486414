#!/bin/sh
# Cache policy comparison (issues 6 and 19): byte hit ratio of the
# appliance's disk policy (TinyLFU), the S3-FIFO it replaced, LRU and
# Belady's optimum on a synthetic multi-day trace of one site (2,000
# titles of a few hundred segments, Zipf(0.8) popularity drifting day to
# day, 1 % new releases a day, an evening peak), with a cache of 10 % of
# the catalog, then the go test benchmarks of the policies (ns/op of
# Access and Insert+Victim, TinyLFU beside S3-FIFO).
#
#   bench/cachesim/run.sh              # 7 days × 15,000 sessions (16M requests): minutes
#   bench/cachesim/run.sh --quick      # 3 days × 4,000 sessions, seconds
#   bench/cachesim/run.sh -cache 0.2 -seed 2
exec "$(dirname "$0")/../gobench.sh" cachesim appliance/evict 1s "$@"
