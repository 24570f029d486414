#!/bin/sh
# Search benchmarks (issue 7): index 50k generated titles, report the
# indexing rate and the p50/p99 latency of searches and suggestions
# (target p99 ≤ 10 ms), then the go test benchmarks of package search.
#
#   bench/search/run.sh            # 50k titles, 2,000 queries per kind
#   bench/search/run.sh --quick    # 5k titles, 300 queries per kind
#   bench/search/run.sh -titles 100000 -strict
exec "$(dirname "$0")/../gobench.sh" search controlplane/search 2s "$@"
