#!/bin/sh
# gobench.sh PROGRAM PACKAGE BENCHTIME [ARGS...]: the shape shared by the
# Go benchmark scripts: run the benchmark program ./bench/PROGRAM with
# ARGS, then the go test benchmarks of ./PACKAGE for BENCHTIME (a tenth of
# it when ARGS hold --quick).
set -eu
cd "$(dirname "$0")/.."
program=$1 pkg=$2 benchtime=$3
shift 3
for a in "$@"; do
	case $a in --quick | -quick) benchtime=$(awk -v t="$benchtime" 'BEGIN { sub(/s$/, "", t); print t * 100 "ms" }') ;; esac
done
echo "== go run ./bench/$program $*"
go run "./bench/$program" "$@"
echo
echo "== go test -run '^\$' -bench . -benchmem -benchtime $benchtime ./$pkg/"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" "./$pkg/"
