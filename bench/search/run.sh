#!/bin/sh
# Search benchmarks (issue 7): index 50k generated titles, report the
# indexing rate and the p50/p99 latency of searches and suggestions
# (target p99 ≤ 10 ms), then the go test benchmarks of package search.
#
#   bench/search/run.sh            # 50k titles, 2,000 queries per kind
#   bench/search/run.sh --quick    # 5k titles, 300 queries per kind
#   bench/search/run.sh -titles 100000 -strict
set -eu
cd "$(dirname "$0")/../.."
quick=
for a in "$@"; do
	case $a in --quick | -quick) quick=1 ;; esac
done
echo "== go run ./bench/search $*"
go run ./bench/search "$@"
echo
benchtime=2s
[ -n "$quick" ] && benchtime=200ms
echo "== go test -run '^\$' -bench . -benchmem -benchtime $benchtime ./controlplane/search/"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./controlplane/search/
