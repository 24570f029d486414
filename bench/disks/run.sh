#!/usr/bin/env bash
# bench/disks/run.sh: disk-tier throughput across 1, 2 and 4 cache
# directories (issue 19, "many disks").
#
# Lays OBJECTS segments of OBJECT_BYTES random bytes in an origin
# directory and starts three appliances on loopback, each with the memory
# tier off (--mem-bytes 0), so that every hit is a disk-tier hit (open,
# checksum on first read, sendfile), over 1, 2 and 4 --cache-dir
# directories (budgets equal, one class, objects spread by rendezvous
# hashing). Warms each (every object filled, then checked to answer
# X-Cache: HIT-disk), then drives each with wrk (random segment per
# request, THREADS threads, CONNS connections, DURATION seconds), ROUNDS
# rounds with the three interleaved within each, and prints the median
# GB/s, requests/s and the appliance's CPU per GB for each side by side.
# About 1.5 min with the defaults on an idle machine.
#
# What this machine can show: the three appliances' directories are
# directories of one virtual disk (vda), and the objects (3 x 240 MiB) stay
# in the page cache, so no read touches the device: a run measures the
# appliance's per-directory overhead (placement over N directories, one
# index and lock per directory, the page cache), not disk bandwidth. With
# 2 cores shared by wrk and the appliance it is CPU-bound, and the
# expectation is flat, 1 ≈ 2 ≈ 4. That the disk tier scales with N real
# disks (each its own device queue and bandwidth) follows from the design
# (nothing is shared between directories but the placement hash), and
# cannot be measured here.
#
# Quick development run: ROUNDS=1 DURATION=2 bench/disks/run.sh
# Keep the temporary directory (logs, wrk outputs): KEEP=1.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
OBJECTS=${OBJECTS:-160}
OBJECT_BYTES=${OBJECT_BYTES:-1572864} # 1.5 MiB
DIRS=${DIRS:-"1 2 4"}
KEEP=${KEEP:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lua=$repo/bench/edge-vs-nginx/random-path.lua

# shellcheck source=../lib.sh
. "$here/../lib.sh"

for tool in wrk curl go; do command -v "$tool" >/dev/null || die "$tool is not on PATH (apt-get install wrk curl)"; done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_tmp disks-bench

say "== fillcast disk-tier benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(go version | cut -d' ' -f3)"
say "   directories: $DIRS; rounds=$ROUNDS duration=${DURATION}s threads=$THREADS conns=$CONNS objects=$OBJECTS x $OBJECT_BYTES B"
say "   cache directories on: $(df --output=source,fstype "$tmp" | tail -1 | tr -s ' ')"

(cd "$repo" && go build -o "$tmp/fillcast" ./cmd/fillcast && go build -o "$tmp/benchtool" ./bench/edge-vs-nginx/benchtool) ||
	die "build failed"
fc=$tmp/fillcast

root=$tmp/origin
mkdir -p "$root/t1/720p"
for ((i = 1; i <= OBJECTS; i++)); do
	head -c "$OBJECT_BYTES" /dev/urandom >"$(printf '%s/t1/720p/seg-%05d.m4s' "$root" "$i")"
done
echo "k1 $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$tmp/keys"
prefix=$("$fc" sign --token-keys "$tmp/keys" --title t1 --ttl 4h)
"$fc" keys public --token-keys "$tmp/keys" >"$tmp/keys.pub"
for ((i = 1; i <= OBJECTS; i++)); do printf '%s/720p/seg-%05d.m4s\n' "$prefix" "$i"; done >"$tmp/paths"

read -ra ndirs <<<"$DIRS"
mapfile -t ports < <("$tmp/benchtool" ports $((${#ndirs[@]} + 1)))
"$fc" origin --root "$root" --http "127.0.0.1:${ports[0]}" --log-level warn >"$tmp/origin.log" 2>&1 &
pids+=($!)

declare -A url pid
for k in "${!ndirs[@]}"; do
	n=${ndirs[$k]}
	flags=()
	for ((d = 0; d < n; d++)); do
		mkdir -p "$tmp/cache-$n/d$d"
		flags+=(--cache-dir "$tmp/cache-$n/d$d:1GiB")
	done
	url[$n]=http://127.0.0.1:${ports[$((k + 1))]}
	"$fc" appliance --id "a$n" --site s1 --http "127.0.0.1:${ports[$((k + 1))]}" "${flags[@]}" --mem-bytes 0 \
		--upstream "http://127.0.0.1:${ports[0]}" --token-keys "$tmp/keys.pub" --log-level warn >"$tmp/appliance-$n.log" 2>&1 &
	pids+=($!)
	pid[$n]=$!
done
wait_http origin "http://127.0.0.1:${ports[0]}/metrics"
for n in "${ndirs[@]}"; do wait_http "appliance-$n" "${url[$n]}/healthz"; done

# fetch N: every segment once through appliance N; "code size x-cache" a line.
fetch() { sed "s|^|-o /dev/null ${url[$1]}|" "$tmp/paths" | xargs curl -s -w '%{http_code} %{size_download} %header{x-cache}\n'; }
say "== warming: every object filled, then served from the disk tier"
for n in "${ndirs[@]}"; do
	fetch "$n" >/dev/null
	for ((try = 1; ; try++)); do
		bad=$(fetch "$n" | awk -v sb="$OBJECT_BYTES" '$1 != 200 || $2 != sb || $3 != "HIT-disk"' | wc -l)
		((bad == 0)) && break
		((try < 5)) || die "appliance with $n directories: $bad objects not served whole from the disk tier"
		sleep 1
	done
	spread=$(for ((d = 0; d < n; d++)); do find "$tmp/cache-$n/d$d/objects" -type f | wc -l; done | paste -sd/)
	say "   $n director$( ((n == 1)) && echo y || echo ies): all $OBJECTS objects HIT-disk; objects per directory $spread"
done

hz=$(getconf CLK_TCK)
results=$tmp/results # dirs round gib/s req/s server-cpu-s
: >"$results"
say "== timed runs: wrk -t$THREADS -c$CONNS -d${DURATION}s, the three interleaved in each round"
for ((r = 1; r <= ROUNDS; r++)); do
	for n in "${ndirs[@]}"; do
		c0=$(cpu_ticks "${pid[$n]}")
		wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$lua" "${url[$n]}" -- "$tmp/paths" >"$tmp/wrk-$n-$r.txt" 2>&1
		c1=$(cpu_ticks "${pid[$n]}")
		read -r gibps rps _ non2xx sockerr < <(parse_wrk "$tmp/wrk-$n-$r.txt")
		((non2xx == 0 && sockerr == 0)) || die "appliance with $n directories answered errors (see $tmp/wrk-$n-$r.txt)"
		awk -v n="$n" -v r="$r" -v g="$gibps" -v q="$rps" -v cpu="$((c1 - c0))" -v hz="$hz" \
			'BEGIN { printf "%d %d %.3f %.0f %.3f\n", n, r, g, q, cpu / hz }' >>"$results"
		tail -1 "$results" | awk -v d="$DURATION" '{ printf "   round %d  %d dir(s)  %6.3f GiB/s  %6d req/s  server cpu %3.0f%%\n", $2, $1, $3, $4, 100 * $5 / d }'
	done
done

say "== medians over $ROUNDS round(s) (GiB = 2^30 bytes, as wrk prints it)"
say "   dirs   GiB/s   req/s   server-cpu-s/GiB   vs 1 dir"
base=
for n in "${ndirs[@]}"; do
	read -r gbps rps cpg < <(awk -v n="$n" -v d="$DURATION" '$1 == n { g[++k] = $3; q[k] = $4; c[k] = $5 / ($3 * d) }
		function med(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
		END { printf "%.3f %.0f %.3f\n", med(g, k), med(q, k), med(c, k) }' "$results")
	base=${base:-$gbps}
	printf '   %4d  %6.3f  %6d   %16.3f   %7.2fx\n' "$n" "$gbps" "$rps" "$cpg" "$(awk -v a="$gbps" -v b="$base" 'BEGIN { print a / b }')"
done
