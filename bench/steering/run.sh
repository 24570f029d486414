#!/bin/sh
# Steering library and balance benchmarks (issue 4): the go test
# benchmarks of package steering with the median of their runs, then the
# figures printed by the Go program in this directory.
#
#   bench/steering/run.sh            # 5 go test runs, 7 program runs
#   COUNT=9 bench/steering/run.sh -runs 9 -strict
set -eu
cd "$(dirname "$0")/../.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "== go test -run '^\$' -bench . -benchmem -count $count ./steering/"
go test -run '^$' -bench . -benchmem -count "$count" ./steering/ | tee "$out"
echo
for b in BenchmarkSteer BenchmarkSteerOwnSets; do
	awk -v b="$b" '$1 ~ "^"b"(-[0-9]+)?$" { print $3 }' "$out" | sort -n |
		awk -v b="$b" '{ v[NR] = $1 } END { if (NR) printf "%s: median %s ns/op over %d runs\n", b, v[int((NR + 1) / 2)], NR }'
done
echo
echo "== go run ./bench/steering $*"
go run ./bench/steering "$@"
echo; echo "== bench/steering/http.sh (HTTP /v1/playback)"; bench/steering/http.sh
