#!/bin/sh
# Recommendation benchmarks (issue 7): Recall@10 and NDCG@10 of ALS,
# most-popular and random on held-out views of data with planted tastes
# (target: ALS ≥ 2× most-popular), then the training time of ALS at
# 100k users × 10k titles × 5M views (target ≤ 60 s on 2 cores), then the
# go test benchmarks of package recs.
#
#   bench/recs/run.sh              # full sizes, a few minutes
#   bench/recs/run.sh --quick      # small sizes, seconds
#   bench/recs/run.sh -solver cholesky -strict
set -eu
cd "$(dirname "$0")/../.."
quick=
for a in "$@"; do
	case $a in --quick | -quick) quick=1 ;; esac
done
echo "== go run ./bench/recs $*"
go run ./bench/recs "$@"
echo
benchtime=2s
[ -n "$quick" ] && benchtime=200ms
echo "== go test -run '^\$' -bench . -benchmem -benchtime $benchtime ./controlplane/recs/"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./controlplane/recs/
