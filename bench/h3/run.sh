#!/usr/bin/env bash
# bench/h3/run.sh: the HTTP/3 benchmark of issue 5 (see bench/h3/main.go).
# Installs Caddy with apt-get if it is missing (and says so), builds the
# binary and the benchmark, and runs it. Extra arguments go to the
# benchmark, e.g. bench/h3/run.sh -rounds 1 -duration 3s -cpuprofile /tmp/h3.prof
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
"$repo/scripts/ensure-packages" caddy
tmp=$(mktemp -d /tmp/fillcast-h3-bin-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
(cd "$repo" && go build -o "$tmp/fillcast" ./cmd/fillcast && go build -o "$tmp/h3bench" ./bench/h3)
"$tmp/h3bench" -fillcast "$tmp/fillcast" "$@"
