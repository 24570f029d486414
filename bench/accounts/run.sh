#!/bin/sh
# Viewer accounts benchmarks: sign-in latency on a control plane at
# concurrency 4, 8 and 16 (signin.sh; target p99 < 250 ms), then the
# embedded store at a million accounts in the control plane's state
# machine: heap, snapshot, restore and lookup (million/). About 2 minutes
# for the first on a quiet 2-core machine, a few for the second, with
# about 4 GiB of memory at its peak.
#
#   bench/accounts/run.sh
#   bench/accounts/run.sh -n 100000    # the store at 100k accounts
set -eu
cd "$(dirname "$0")/../.."
echo "== bench/accounts/signin.sh"
bench/accounts/signin.sh
echo
echo "== go run ./bench/accounts/million $*"
go run ./bench/accounts/million "$@"
