# bench/lib.sh: shell functions the wrk benchmarks share (bench/edge-vs-nginx,
# bench/disks). Source it after `set -euo pipefail`; it needs KEEP (1 keeps
# the temporary directory) and the caller's script name in $0.

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$(dirname "$0")")/$(basename "$0")" "$*" >&2; exit 1; }

# bench_tmp NAME: makes the run's temporary directory, $tmp, and stops
# every process in $pids and removes $tmp (unless KEEP=1) on exit.
bench_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/fillcast-$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ ${KEEP:-0} == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}

# wait_http NAME URL: waits up to 10 s for URL to answer (any status; TLS
# certificates are not checked).
wait_http() {
	local i
	for ((i = 0; i < 100; i++)); do
		curl -sk -o /dev/null --max-time 1 "$2" && return 0
		sleep 0.1
	done
	die "$1 did not come up at $2 (logs in $tmp)"
}

# cpu_ticks PID: user+system clock ticks used so far by PID and its
# children (nginx workers, the varnish child).
cpu_ticks() {
	local p
	for p in "$1" $(pgrep -P "$1" || true); do cat "/proc/$p/stat" 2>/dev/null || true; done |
		awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { print t + 0 }'
}

# parse_wrk FILE: prints "gibps rps p99ms non2xx sockerr" from wrk's output
# (GiB = 2^30 bytes, as wrk counts them).
parse_wrk() {
	awk '
		function bytes(v,   n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			return n * (u == "KB" ? 2^10 : u == "MB" ? 2^20 : u == "GB" ? 2^30 : u == "TB" ? 2^40 : 1) }
		function ms(v,   n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
			return n * (u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : u == "h" ? 3600000 : 1) }
		/^Requests\/sec:/ { rps = $2 }
		/^Transfer\/sec:/ { bps = bytes($2) }
		$1 == "99%" { p99 = ms($2) }
		/Non-2xx or 3xx responses:/ { non2xx = $NF }
		/Socket errors:/ { gsub(/,/, ""); sockerr = $4 + $6 + $8 + $10 }
		END { printf "%.3f %.0f %.3f %d %d\n", bps / 2^30, rps, p99, non2xx, sockerr }' "$1"
}
