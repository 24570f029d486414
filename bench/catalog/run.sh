#!/bin/sh
# Catalog scale (issue 20): a 3-node control plane of this tree with
# 20,000 titles × 5 renditions × 2,000 segments (every title's file list
# published at the origin: about 19 GB of disk), beside the previous
# release at the largest catalog it holds in 8 GiB; RSS, raft log and
# snapshot, restart, catalog page and playback p99, planner pass.
#
#   bench/catalog/run.sh              # the issue's sizes: about half an hour
#   bench/catalog/run.sh -quick       # 2,000 titles × 200 segments, minutes
#   bench/catalog/run.sh -old-rev ""  # this tree only
set -eu
cd "$(dirname "$0")/../.."
exec go run ./bench/catalog "$@"
