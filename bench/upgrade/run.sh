#!/usr/bin/env bash
# bench/upgrade/run.sh: the zero-downtime upgrade benchmark of issue 5 (see
# bench/upgrade/main.go): vegeta at 150 req/s, 5 upgrades in 20 s, every
# body checked. Extra arguments go to the benchmark (-rate, -during...).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/fillcast-upgrade-bin-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && go build -o "$tmp/fillcast" ./cmd/fillcast && go build -o "$tmp/upgradebench" ./bench/upgrade)
"$tmp/upgradebench" -fillcast "$tmp/fillcast" "$@"
