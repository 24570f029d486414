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
exec "$(dirname "$0")/../gobench.sh" recs controlplane/recs 2s "$@"
