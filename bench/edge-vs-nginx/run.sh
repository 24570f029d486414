#!/usr/bin/env bash
# bench/edge-vs-nginx/run.sh: the appliance benchmark of issue 2.
#
# Lays OBJECTS segments of OBJECT_BYTES random bytes and a 1 KiB playlist in
# an origin directory, then serves them five ways on loopback:
#   nginx          (Debian nginx-light; 2 workers, sendfile, open_file_cache, keep-alive)
#   varnish        (malloc storage, in front of that nginx)
#   fillcast-mem   (appliance with a memory tier big enough for every object)
#   fillcast-disk  (appliance with --mem-bytes 0: disk tier, page cache warm)
# and, with TLS=1 (the default), the segments over HTTPS three more ways:
#   nginx-tls          (the same nginx on a second port: TLS 1.3, an ECDSA
#                       P-256 certificate made here, ssl_session_cache, kTLS
#                       when the kernel has a tls ULP)
#   fillcast-tls-mem   (appliances as above with --tls-cert/--tls-key)
#   fillcast-tls-disk
# all of them negotiating TLS_AES_128_GCM_SHA256 (printed, from openssl
# s_client, which offers what wrk offers), wrk keeping its connections
# alive so that handshakes are amortized;
# the appliances filling from a `fillcast origin` on the same directory.
# Warms all of them, checks that the appliances answer from the tier under
# test (X-Cache), and drives each with wrk (random path per request, THREADS
# threads, SEG_CONNS connections for segments, PL_CONNS for the playlist,
# DURATION seconds, ROUNDS rounds interleaved across servers). Prints the
# medians (GB/s, req/s, p99) and the ratios against the issue's targets,
# then the coalescing test: HERD clients released at once on one cold
# object behind a bandwidth-limited path must cause exactly one GET at the
# origin.
#
# Every server is a private instance with its own config, pid file and
# temp dirs under one temporary directory; all are stopped on exit.
#
# Quick development run: ROUNDS=1 DURATION=2 bench/edge-vs-nginx/run.sh
# Only some rows: ONLY="seg.nginx-tls seg.fillcast-tls-mem" (workload.server).
# PROFILE=1 adds an untimed pass after the rounds: a Go CPU profile of each
# appliance row and, when perf is installed, a system-wide perf profile of
# every row (kernel, wrk and server), printing the top frames of each.
# Keep the temporary directory (configs, wrk outputs, logs): KEEP=1.
# On a shared machine, QUIET_WAIT=60 waits up to 60 s before each run for
# other processes to use less than QUIET_PCT% of a core; every run reports
# the CPU that server, wrk and everything else used, so noise shows.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
SEG_CONNS=${SEG_CONNS:-32}
PL_CONNS=${PL_CONNS:-64}
OBJECTS=${OBJECTS:-200}
OBJECT_BYTES=${OBJECT_BYTES:-1572864}   # 1.5 MiB
PLAYLIST_BYTES=1024
HERD=${HERD:-64}
COLD_BYTES=${COLD_BYTES:-67108864}     # 64 MiB
COLD_RATE=${COLD_RATE:-33554432}       # 32 MiB/s through the throttle: a 2 s fill
MEM_BYTES=${MEM_BYTES:-1GiB}
VARNISH_MEM=${VARNISH_MEM:-1G}
KEEP=${KEEP:-0}
QUIET_WAIT=${QUIET_WAIT:-0}            # seconds to wait for the machine to go quiet before each run
QUIET_PCT=${QUIET_PCT:-25}             # "quiet": other processes use less than this % of one core
TLS=${TLS:-1}                          # 1: also the HTTPS rows
ONLY=${ONLY:-}                         # workload.server words: run only those rows
PROFILE=${PROFILE:-0}                  # 1: a profiling pass after the timed rounds

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# shellcheck source=../lib.sh
. "$here/../lib.sh"

# --- tools -----------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v varnishd >/dev/null || missing+=(varnish)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
	say "installing missing packages: ${missing[*]} (apt-get)"
	[[ $(id -u) == 0 ]] || die "need root to apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
command -v go >/dev/null || die "go is not on PATH"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

bench_tmp edge-bench
chmod 755 "$tmp" # nginx workers run as an unprivileged user and must read the files

say "== fillcast edge benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r)"
say "   $(nginx -v 2>&1), $(varnishd -V 2>&1 | head -1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(go version | cut -d' ' -f3)"
say "   rounds=$ROUNDS duration=${DURATION}s threads=$THREADS segment-conns=$SEG_CONNS playlist-conns=$PL_CONNS objects=$OBJECTS x $OBJECT_BYTES B"
say "   workdir $tmp"

# --- build -----------------------------------------------------------------
(cd "$repo" && go build -o "$tmp/fillcast" ./cmd/fillcast && go build -o "$tmp/benchtool" ./bench/edge-vs-nginx/benchtool) ||
	die "build failed"
fc=$tmp/fillcast
bt=$tmp/benchtool

# --- content ---------------------------------------------------------------
root=$tmp/origin
mkdir -p "$root/t1/720p" "$root/t1/1080p"
for ((i = 1; i <= OBJECTS; i++)); do
	head -c "$OBJECT_BYTES" /dev/urandom >"$(printf '%s/t1/720p/seg-%05d.m4s' "$root" "$i")"
done
{
	printf '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI="init.mp4"\n'
	for ((i = 1; i <= 40; i++)); do printf '#EXTINF:4.000,\nseg-%05d.m4s\n' "$i"; done
} | head -c $((PLAYLIST_BYTES - 15)) >"$tmp/pl"
# Cut at a line boundary and pad with a comment to exactly PLAYLIST_BYTES.
sed -i '$d' "$tmp/pl"
pad=$((PLAYLIST_BYTES - $(stat -c %s "$tmp/pl") - 1))
{ cat "$tmp/pl"; printf '#%*s\n' "$((pad - 1))" '' | tr ' ' '-'; } >"$root/t1/720p/playlist.m3u8"
[[ $(stat -c %s "$root/t1/720p/playlist.m3u8") == "$PLAYLIST_BYTES" ]] || die "playlist is not $PLAYLIST_BYTES bytes"
cold_obj=t1/1080p/seg-00001.m4s
head -c "$COLD_BYTES" /dev/urandom >"$root/$cold_obj"
cold_sum=$(sha256sum "$root/$cold_obj" | cut -d' ' -f1)

echo "k1 $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$tmp/keys"
prefix=$("$fc" sign --token-keys "$tmp/keys" --title t1 --ttl 4h) # /c/{token}/t1
"$fc" keys public --token-keys "$tmp/keys" >"$tmp/keys.pub"     # appliances verify, never sign
admin=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')   # the appliances' /v1/status

# --- servers ---------------------------------------------------------------
mapfile -t ports < <("$bt" ports 14)
p_nginx=${ports[0]} p_varnish=${ports[1]} p_origin=${ports[2]}
p_mem=${ports[3]} p_disk=${ports[4]} p_cold=${ports[5]} p_throttle=${ports[6]}
p_nginx_tls=${ports[7]} p_tls_mem=${ports[8]} p_tls_disk=${ports[9]}
p_pprof_mem=${ports[10]} p_pprof_disk=${ports[11]} p_pprof_tls_mem=${ports[12]} p_pprof_tls_disk=${ports[13]} # the appliances' /debug/pprof

# One ECDSA P-256 certificate for every HTTPS server. Kernel TLS needs the
# kernel's tls ULP (OpenSSL 3 then hands it the keys when nginx asks with
# ssl_conf_command Options KTLS); without it nginx encrypts in user space
# and cannot use sendfile on TLS connections.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null || die "openssl could not make a certificate"
chmod 644 "$tmp/tls.key" # nginx workers read it as an unprivileged user (a throwaway key)
ulp=$(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null || true)
if [[ " $ulp " == *" tls "* ]] || { modprobe tls 2>/dev/null && [[ " $(cat /proc/sys/net/ipv4/tcp_available_ulp) " == *" tls "* ]]; }; then
	ktls=yes ktls_conf="ssl_conf_command Options KTLS;"
else
	ktls=no ktls_conf="# no kTLS: the kernel has no tls ULP (tcp_available_ulp: ${ulp:-none})"
fi

mkdir -p "$tmp/nginx"
sed -e "s|@TMP@|$tmp|g" -e "s|@ROOT@|$root|g" -e "s|@PORT@|$p_nginx|g" -e "s|@TLS_PORT@|$p_nginx_tls|g" \
	-e "s|@CERT@|$tmp/tls.crt|g" -e "s|@KEY@|$tmp/tls.key|g" -e "s|@KTLS@|$ktls_conf|g" "$here/nginx.conf.in" >"$tmp/nginx/nginx.conf"
declare -A srvpid
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/stderr" &
pids+=($!)
srvpid[nginx]=$!

mkdir -p "$tmp/varnish"
sed -e "s|@NGINX_PORT@|$p_nginx|g" "$here/varnish.vcl.in" >"$tmp/varnish/default.vcl"
# -j none: no privilege separation, so the instance stays private to $tmp.
varnishd -F -j none -n "$tmp/varnish/work" -a "127.0.0.1:$p_varnish" -f "$tmp/varnish/default.vcl" \
	-s "malloc,$VARNISH_MEM" -P "$tmp/varnish/varnishd.pid" >"$tmp/varnish/log" 2>&1 &
pids+=($!)
srvpid[varnish]=$!

"$fc" origin --root "$root" --http "127.0.0.1:$p_origin" --log-level warn >"$tmp/origin.log" 2>&1 &
pids+=($!)

start_appliance() { # id port mem-bytes upstream [more flags]
	mkdir -p "$tmp/cache-$1"
	"$fc" appliance --id "$1" --site s1 --http "127.0.0.1:$2" --cache-dir "$tmp/cache-$1" \
		--mem-bytes "$3" --disk-bytes 4GiB --upstream "$4" --token-keys "$tmp/keys.pub" --admin-token "$admin" \
		--log-level warn "${@:5}" >"$tmp/appliance-$1.log" 2>&1 &
	pids+=($!)
	srvpid[fillcast-$1]=$!
}
start_appliance mem "$p_mem" "$MEM_BYTES" "http://127.0.0.1:$p_origin" --admin-http "127.0.0.1:$p_pprof_mem"
start_appliance disk "$p_disk" 0 "http://127.0.0.1:$p_origin" --admin-http "127.0.0.1:$p_pprof_disk"
servers=(nginx varnish fillcast-mem fillcast-disk)
if [[ $TLS == 1 ]]; then
	tlsflags=(--tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key")
	start_appliance tls-mem "$p_tls_mem" "$MEM_BYTES" "http://127.0.0.1:$p_origin" "${tlsflags[@]}" --admin-http "127.0.0.1:$p_pprof_tls_mem"
	start_appliance tls-disk "$p_tls_disk" 0 "http://127.0.0.1:$p_origin" "${tlsflags[@]}" --admin-http "127.0.0.1:$p_pprof_tls_disk"
	servers+=(nginx-tls fillcast-tls-mem fillcast-tls-disk)
fi

wait_http nginx "http://127.0.0.1:$p_nginx/t1/720p/playlist.m3u8"
wait_http varnish "http://127.0.0.1:$p_varnish/t1/720p/playlist.m3u8"
wait_http origin "http://127.0.0.1:$p_origin/metrics"
wait_http fillcast-mem "http://127.0.0.1:$p_mem/healthz"
wait_http fillcast-disk "http://127.0.0.1:$p_disk/healthz"
if [[ $TLS == 1 ]]; then
	wait_http nginx-tls "https://127.0.0.1:$p_nginx_tls/t1/720p/playlist.m3u8"
	wait_http fillcast-tls-mem "https://127.0.0.1:$p_tls_mem/healthz"
	wait_http fillcast-tls-disk "https://127.0.0.1:$p_tls_disk/healthz"
fi

# --- paths and warm-up -----------------------------------------------------
declare -A url
url[nginx]=http://127.0.0.1:$p_nginx
url[varnish]=http://127.0.0.1:$p_varnish
url[fillcast-mem]=http://127.0.0.1:$p_mem
url[fillcast-disk]=http://127.0.0.1:$p_disk
url[fillcast]=${url[fillcast-mem]} # the playlist workload uses the memory-tier appliance
url[nginx-tls]=https://127.0.0.1:$p_nginx_tls
url[fillcast-tls-mem]=https://127.0.0.1:$p_tls_mem
url[fillcast-tls-disk]=https://127.0.0.1:$p_tls_disk
declare -A pprof
pprof[fillcast-mem]=http://127.0.0.1:$p_pprof_mem pprof[fillcast]=http://127.0.0.1:$p_pprof_mem
pprof[fillcast-disk]=http://127.0.0.1:$p_pprof_disk
pprof[fillcast-tls-mem]=http://127.0.0.1:$p_pprof_tls_mem pprof[fillcast-tls-disk]=http://127.0.0.1:$p_pprof_tls_disk
mkdir -p "$tmp/paths"
for s in "${servers[@]}"; do
	case $s in fillcast*) pfx=$prefix ;; *) pfx=/t1 ;; esac
	for ((i = 1; i <= OBJECTS; i++)); do printf '%s/720p/seg-%05d.m4s\n' "$pfx" "$i"; done >"$tmp/paths/$s.seg"
	echo "$pfx/720p/playlist.m3u8" >"$tmp/paths/$s.pl"
done
cp "$tmp/paths/fillcast-mem.pl" "$tmp/paths/fillcast.pl"

# fetch SERVER: GET every segment and the playlist once over one
# connection; prints "code size x-cache" per object.
fetch() {
	local base=${url[$1]}
	sed "s|^|-o /dev/null $base|" "$tmp/paths/$1.seg" "$tmp/paths/$1.pl" |
		xargs curl -sk -w '%{http_code} %{size_download} %header{x-cache}\n'
}

# want_tier SERVER TIER: exit status 0 when every object answered 200 with
# the right size (and, for TIER, that X-Cache); prints what it saw.
want_tier() {
	fetch "$1" | awk -v n="$OBJECTS" -v sb="$OBJECT_BYTES" -v pb="$PLAYLIST_BYTES" -v tier="$2" '
		{ want = (NR <= n) ? sb : pb; seen[$1 " " ($2 == want ? "size-ok" : "size-BAD") " " ($3 == "" ? "-" : $3)]++
		  if ($1 != 200 || $2 != want || (tier != "" && $3 != tier)) bad++ }
		END { for (k in seen) { printf "%s%s x%d", sep, k, seen[k]; sep = ", " } print ""; exit bad > 0 }'
}

say "== warming (every object twice through each server)"
for s in "${servers[@]}"; do
	fetch "$s" >/dev/null
	fetch "$s" >/dev/null
done
check_warm() { # server tier
	local i out
	for ((i = 1; i <= 5; i++)); do
		if out=$(want_tier "$1" "$2"); then
			say "   $1: $out"
			return 0
		fi
		say "   $1 not warm yet (pass $i): $out"
	done
	die "$1 does not answer every object with X-Cache $2 after warming"
}
check_warm nginx ""
check_warm varnish HIT
check_warm fillcast-mem HIT-memory
check_warm fillcast-disk HIT-disk
if [[ $TLS == 1 ]]; then
	check_warm nginx-tls ""
	check_warm fillcast-tls-mem HIT-memory
	check_warm fillcast-tls-disk HIT-disk
fi
for s in "${servers[@]}"; do # byte-for-byte spot check
	for obj in 720p/seg-00001.m4s "$(printf '720p/seg-%05d.m4s' "$OBJECTS")" 720p/playlist.m3u8; do
		case $s in fillcast*) pfx=$prefix ;; *) pfx=/t1 ;; esac
		got=$(curl -sk "${url[$s]}$pfx/$obj" | sha256sum | cut -d' ' -f1)
		[[ $got == $(sha256sum "$root/t1/$obj" | cut -d' ' -f1) ]] || die "$s served wrong bytes for t1/$obj"
	done
done
say "   sha256 spot check of first, last segment and playlist: all servers OK"
if [[ $TLS == 1 ]]; then
	say "== TLS: what each HTTPS server negotiates with openssl s_client (OpenSSL's default offer, as wrk's)"
	for s in nginx-tls fillcast-tls-mem fillcast-tls-disk; do
		hp=${url[$s]#https://}
		neg=$(openssl s_client -connect "$hp" </dev/null 2>/dev/null | awk '/^New, / { sub(/^New, /, ""); print; exit }')
		[[ $neg == *TLS_AES_128_GCM_SHA256* ]] || die "$s negotiated '${neg:-nothing}', want TLSv1.3 TLS_AES_128_GCM_SHA256"
		say "   $s: $neg"
	done
	say "   certificate: ECDSA P-256, self-signed; kTLS for nginx: $ktls ($(openssl version | cut -d' ' -f1-2);" \
		"kernel tcp_available_ulp: ${ulp:-none})"
	say "   wrk keeps its connections alive: one handshake per connection, amortized over the run"
fi

# --- timed runs ------------------------------------------------------------
metric() { # url name-regex: sum of the matching samples
	curl -sk "$1/metrics" | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re { s += $2 } END { printf "%.0f\n", s }'
}

hz=$(getconf CLK_TCK)
# busy_ticks: non-idle CPU ticks of the whole machine (all cores).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
# child_ticks FILE: CPU ticks of the shell's waited-for children, from the
# output of the builtin `times` (which forks nothing).
child_ticks() { awk -v hz="$hz" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f\n", t * hz }' "$1"; }

mkdir -p "$tmp/wrk"
results=$tmp/results # workload server round gbps rps p99ms non2xx sockerr misses cpu% per-cpu-s load wrk-cpu% others-cpu%
: >"$results"
declare -A cmdline
runs=("seg nginx" "seg varnish" "seg fillcast-mem" "seg fillcast-disk" "pl nginx" "pl varnish" "pl fillcast")
[[ $TLS == 1 ]] && runs+=("seg nginx-tls" "seg fillcast-tls-mem" "seg fillcast-tls-disk")
if [[ -n $ONLY ]]; then
	sel=()
	for run in "${runs[@]}"; do [[ " $ONLY " == *" ${run/ /.} "* ]] && sel+=("$run"); done
	runs=("${sel[@]}")
	((${#runs[@]})) || die "ONLY=$ONLY names no row (want workload.server words, e.g. seg.nginx-tls)"
fi
srvpid[fillcast]=${srvpid[fillcast-mem]}
srvpid[nginx-tls]=${srvpid[nginx]} # one nginx serves both ports
hasrun() { [[ " ${runs[*]/ /.} " == *" $1.$2 "* ]]; }
# quiet: on a shared machine, wait (up to QUIET_WAIT s) for a lull.
quiet() {
	local q b0
	for ((q = 0; q < QUIET_WAIT; q++)); do
		b0=$(busy_ticks)
		sleep 1
		(($(busy_ticks) - b0 < QUIET_PCT * hz / 100)) && break
	done
	return 0
}
# wrk_cmd WORKLOAD SERVER: sets cmd to the wrk command line of that row.
wrk_cmd() {
	local conns=$SEG_CONNS
	[[ $1 == pl ]] && conns=$PL_CONNS
	cmd=(wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" --latency -s "$here/random-path.lua" "${url[$2]}" -- "$tmp/paths/$2.$1")
}

say "== timed runs: wrk -t$THREADS, ${DURATION}s each, $ROUNDS round(s), servers interleaved within each round"
for ((r = 1; r <= ROUNDS; r++)); do
	for run in "${runs[@]}"; do
		read -r w s <<<"$run"
		wrk_cmd "$w" "$s"
		cmdline[$w.$s]="${cmd[*]}"
		misses0=0
		[[ $s == fillcast* ]] && misses0=$(metric "${url[$s]}" '^fillcast_appliance_misses_total')
		quiet
		load=$(cut -d' ' -f1 /proc/loadavg)
		out=$tmp/wrk/$w.$s.$r
		cpu0=$(cpu_ticks "${srvpid[$s]}") busy0=$(busy_ticks)
		times >"$tmp/times0"
		"${cmd[@]}" >"$out" 2>&1 || { cat "$out"; die "wrk failed: ${cmd[*]}"; }
		times >"$tmp/times1"
		busy1=$(busy_ticks) cpu1=$(cpu_ticks "${srvpid[$s]}")
		wrkt=$(($(child_ticks "$tmp/times1") - $(child_ticks "$tmp/times0")))
		# What the rest of the machine (other users, other servers' idle
		# threads) used meanwhile: the noise in this run.
		others=$(((busy1 - busy0 - (cpu1 - cpu0) - wrkt) * 100 / hz / DURATION))
		((others < 0)) && others=0
		misses=0
		[[ $s == fillcast* ]] && misses=$(($(metric "${url[$s]}" '^fillcast_appliance_misses_total') - misses0))
		read -r gbps rps p99 non2xx sockerr < <(parse_wrk "$out")
		# Server CPU over the run, and work done per server CPU-second
		# (GB for segments, thousands of requests for the playlist): a
		# figure that other load on the machine disturbs less than rates.
		read -r cpu per < <(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v d="$DURATION" -v g="$gbps" -v q="$rps" -v w="$w" \
			'BEGIN { s = t / hz; printf "%.0f %.3f\n", 100 * s / d, (s > 0 ? (w == "seg" ? g : q / 1000) * d / s : 0) }')
		wrkcpu=$((wrkt * 100 / hz / DURATION))
		echo "$w $s $r $gbps $rps $p99 $non2xx $sockerr $misses $cpu $per $load $wrkcpu $others" >>"$results"
		printf '   round %d %-3s %-17s %6.3f GB/s %6d req/s p99 %7.2f ms  non-2xx %d sock-err %d misses %d  cpu%%: server %3d wrk %3d others %3d\n' \
			"$r" "$w" "$s" "$gbps" "$rps" "$p99" "$non2xx" "$sockerr" "$misses" "$cpu" "$wrkcpu" "$others"
	done
done

# med WORKLOAD SERVER COLUMN: the median over rounds of a results column
# (4 GB/s, 5 req/s, 6 p99, 10 cpu%, 11 per cpu-s).
med() {
	awk -v w="$1" -v s="$2" -v c="$3" '$1 == w && $2 == s { print $c }' "$results" | sort -g |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
total() { awk -v w="$1" -v s="$2" -v c="$3" '$1 == w && $2 == s { t += $c } END { print t + 0 }' "$results"; }

say ""
say "== medians over $ROUNDS round(s) of ${DURATION}s (GB = 2^30 bytes, as wrk prints it)"
say "   cpu% = server CPU time / wall time (200% = both cores); per cpu-s = GB (segments) or k requests (playlist) per server CPU-second;"
say "   cpu cost = its inverse: server CPU seconds per GB served (segments) or CPU microseconds per request (playlist),"
say "   from the utime+stime of the server's processes (/proc/PID/stat)"
printf '%-9s %-17s %8s %10s %10s %6s %9s %10s %8s %8s %7s\n' workload server GB/s req/s "p99 ms" cpu% "per cpu-s" "cpu cost" non-2xx sock-err misses
for run in "${runs[@]}"; do
	read -r w s <<<"$run"
	name=segments unit=s/GB
	[[ $w == pl ]] && name=playlist unit=us/req
	per=$(med "$w" "$s" 11)
	printf '%-9s %-17s %8.3f %10.0f %10.2f %6.0f %9.3f %5.2f %-6s %6d %8d %7d\n' "$name" "$s" "$(med "$w" "$s" 4)" "$(med "$w" "$s" 5)" \
		"$(med "$w" "$s" 6)" "$(med "$w" "$s" 10)" "$per" "$(awk -v p="$per" -v w="$w" 'BEGIN { print (p > 0 ? (w == "pl" ? 1000 : 1) / p : 0) }')" "$unit" \
		"$(total "$w" "$s" 7)" "$(total "$w" "$s" 8)" "$(total "$w" "$s" 9)"
done
say "   CPU used by other processes during the runs (of $(($(nproc) * 100))%): $(awk '{ print $14 }' "$results" | sort -g |
	awk '{ v[NR] = $1 } END { printf "min %s%%, median %s%%, max %s%%", v[1], v[int((NR + 1) / 2)], v[NR] }');" \
	"load average $(awk '{ print $12 }' "$results" | sort -g | awk '{ v[NR] = $1 } END { printf "%s..%s", v[1], v[NR] }')"

# --- targets ---------------------------------------------------------------
fails=0
verdict() { # ok(0|1) label detail commands...
	local ok=$1 label=$2 detail=$3
	shift 3
	if [[ $ok == 1 ]]; then say "PASS  $label: $detail"; else say "FAIL  $label: $detail"; fails=$((fails + 1)); fi
	local c
	for c in "$@"; do say "        \$ $c"; done
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

say ""
say "== ratios against the targets (medians)"
# cpus SERVER: "CPU seconds per GB" of a segment row, from the median work
# per server CPU-second.
cpus() { awk -v p="$(med seg "$1" 11)" 'BEGIN { printf "%.2f", (p > 0 ? 1 / p : 0) }'; }
n_gb=$(med seg nginx 4) v_gb=$(med seg varnish 4) m_gb=$(med seg fillcast-mem 4) d_gb=$(med seg fillcast-disk 4)
n_p99=$(med seg nginx 6) m_p99=$(med seg fillcast-mem 6)
if hasrun seg fillcast-mem && hasrun seg nginx && hasrun seg varnish; then
	best=nginx best_gb=$n_gb
	ge "$v_gb" "$n_gb" && best=varnish best_gb=$v_gb
	r1=$(ratio "$m_gb" "$best_gb")
	ok=0
	ge "$r1" 1.1 && ge "$n_p99" "$m_p99" && ok=1
	verdict $ok "segments, memory tier >= 1.1x the better of nginx and Varnish, p99 <= nginx" \
		"${r1}x of $best ($m_gb vs $best_gb GB/s); p99 $m_p99 ms vs nginx $n_p99 ms; CPU s/GB fillcast $(cpus fillcast-mem), $best $(cpus "$best")" \
		"${cmdline[seg.fillcast-mem]}" "${cmdline[seg.$best]}" "${cmdline[seg.nginx]}"
fi
if hasrun seg fillcast-disk && hasrun seg nginx; then
	r2=$(ratio "$d_gb" "$n_gb")
	ok=0
	ge "$r2" 1.0 && ok=1
	verdict $ok "segments, disk tier (--mem-bytes 0, page cache warm) >= 1.0x nginx" \
		"${r2}x ($d_gb vs $n_gb GB/s); CPU s/GB fillcast $(cpus fillcast-disk), nginx $(cpus nginx)" "${cmdline[seg.fillcast-disk]}" "${cmdline[seg.nginx]}"
fi
n_rps=$(med pl nginx 5) f_rps=$(med pl fillcast 5)
if hasrun pl fillcast && hasrun pl nginx; then
	r3=$(ratio "$f_rps" "$n_rps")
	ok=0
	ge "$r3" 1.2 && ok=1
	verdict $ok "1 KiB playlist >= 1.2x nginx req/s" "${r3}x ($f_rps vs $n_rps req/s)" \
		"${cmdline[pl.fillcast]}" "${cmdline[pl.nginx]}"
fi
if hasrun seg nginx-tls; then
	nt_gb=$(med seg nginx-tls 4)
	for t in "fillcast-tls-mem memory 1.1" "fillcast-tls-disk disk 1.0"; do
		read -r s tier want <<<"$t"
		hasrun seg "$s" || continue
		rt=$(ratio "$(med seg "$s" 4)" "$nt_gb")
		ok=0
		ge "$rt" "$want" && ok=1
		verdict $ok "HTTPS segments, $tier tier >= ${want}x nginx over TLS (TLS 1.3 AES-128-GCM, kTLS $ktls)" \
			"${rt}x ($(med seg "$s" 4) vs $nt_gb GB/s); CPU s/GB fillcast $(cpus "$s"), nginx $(cpus nginx-tls)" \
			"${cmdline[seg.$s]}" "${cmdline[seg.nginx-tls]}"
	done
fi
if hasrun seg nginx && hasrun pl nginx && hasrun seg varnish; then
	say "   for reference (not targets): segments varnish/nginx $(ratio "$v_gb" "$n_gb")x, playlist varnish/nginx $(ratio "$(med pl varnish 5)" "$n_rps")x"
	say "   work per server CPU-second vs nginx: segments fillcast-mem $(ratio "$(med seg fillcast-mem 11)" "$(med seg nginx 11)")x," \
		"fillcast-disk $(ratio "$(med seg fillcast-disk 11)" "$(med seg nginx 11)")x, varnish $(ratio "$(med seg varnish 11)" "$(med seg nginx 11)")x;" \
		"playlist fillcast $(ratio "$(med pl fillcast 11)" "$(med pl nginx 11)")x, varnish $(ratio "$(med pl varnish 11)" "$(med pl nginx 11)")x"
fi
if hasrun seg nginx-tls; then
	say "   HTTPS work per server CPU-second vs nginx-tls: fillcast-tls-mem $(ratio "$(med seg fillcast-tls-mem 11)" "$(med seg nginx-tls 11)")x," \
		"fillcast-tls-disk $(ratio "$(med seg fillcast-tls-disk 11)" "$(med seg nginx-tls 11)")x"
fi
busy=$(awk '$14 > 20 { n++ } END { print n + 0 }' "$results")
if ((busy)); then
	say "   WARNING: in $busy of $(wc -l <"$results") runs other processes used more than 20% of a core: they competed with"
	say "   the servers and wrk, so the rates (and their ratios) are noisy; the per-CPU-second figures are steadier"
fi

# --- profiles (PROFILE=1): an untimed pass ----------------------------------
if [[ $PROFILE == 1 ]]; then
	say ""
	say "== profiles: one more untimed run of each row (profilers cost CPU, so these rates are not compared)"
	have_perf=0
	command -v perf >/dev/null && perf record -q -o /dev/null -a -- true >/dev/null 2>&1 && have_perf=1
	((have_perf)) || say "   perf not usable here (apt-get install linux-perf): Go profiles only"
	mkdir -p "$tmp/prof"
	for run in "${runs[@]}"; do
		read -r w s <<<"$run"
		wrk_cmd "$w" "$s"
		quiet
		prof=() perfpid=
		if [[ -n ${pprof[$s]:-} ]]; then
			curl -s -o "$tmp/prof/$w.$s.pprof" -H "Authorization: Bearer $admin" \
				"${pprof[$s]}/debug/pprof/profile?seconds=$((DURATION > 2 ? DURATION - 1 : 1))" &
			prof=($!)
		fi
		if ((have_perf)); then
			perf record -q -a -g -F 999 -o "$tmp/prof/$w.$s.perf" -- sleep "$DURATION" >/dev/null 2>&1 &
			perfpid=$!
		fi
		"${cmd[@]}" >"$tmp/prof/$w.$s.wrk" 2>&1 || true
		for p in "${prof[@]}" $perfpid; do wait "$p" || true; done
		say "-- $w $s: $(parse_wrk "$tmp/prof/$w.$s.wrk" | awk '{ printf "%.3f GB/s %d req/s (profiled)", $1, $2 }')"
		if [[ -s $tmp/prof/$w.$s.pprof ]]; then
			say "   Go CPU profile of the server, top 15 by flat time:"
			(cd "$repo" && go tool pprof -top -nodecount=15 "$tmp/fillcast" "$tmp/prof/$w.$s.pprof" 2>/dev/null) |
				sed -n '/flat%/,$p' | sed 's/^/     /' || true
		fi
		if [[ -s $tmp/prof/$w.$s.perf ]]; then
			say "   perf, whole machine: CPU share by process, then the top 20 symbols"
			perf report -q -i "$tmp/prof/$w.$s.perf" --no-children --sort comm --stdio -g none 2>/dev/null |
				awk 'NF && $1 !~ /^#/ && n++ < 8 { print "     " $0 }' || true
			perf report -q -i "$tmp/prof/$w.$s.perf" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null |
				awk 'NF && $1 !~ /^#/ && n++ < 20 { print "     " $0 }' || true
		fi
	done
fi

# --- coalescing: HERD clients on one cold object ---------------------------
if [[ -n $ONLY ]]; then # a development run of some rows
	say ""
	if ((fails)); then say "$fails target(s) FAILED"; else say "all targets measured PASS"; fi
	exit $((fails > 0))
fi
say ""
say "== coalescing: $HERD clients at once on one cold $COLD_BYTES-byte object"
say "   fresh appliance, empty cache dir, upstream = fillcast origin behind a TCP throttle of $COLD_RATE B/s per connection"
"$bt" throttle --listen "127.0.0.1:$p_throttle" --to "127.0.0.1:$p_origin" --rate "$COLD_RATE" >"$tmp/throttle.log" 2>&1 &
pids+=($!)
start_appliance cold "$p_cold" "$MEM_BYTES" "http://127.0.0.1:$p_throttle"
wait_http fillcast-cold "http://127.0.0.1:$p_cold/healthz"
origin_gets() { metric "http://127.0.0.1:$p_origin" '^fillcast_origin_requests_total[{].*method="GET"'; }
before=$(origin_gets)
herd_cmd=("$bt" herd --url "http://127.0.0.1:$p_cold$prefix/${cold_obj#t1/}" --clients "$HERD" --size "$COLD_BYTES" --sha256 "$cold_sum")
herd_ok=1
"${herd_cmd[@]}" | sed 's/^/   /' || herd_ok=0
after=$(origin_gets)
cu=http://127.0.0.1:$p_cold
say "   appliance: misses $(metric "$cu" '^fillcast_appliance_misses_total'), coalesced waits $(metric "$cu" '^fillcast_appliance_coalesced_waits_total'), upstream fetches $(metric "$cu" '^fillcast_appliance_upstream_fetches_total')"
gets=$((after - before))
ok=0
[[ $herd_ok == 1 && $gets == 1 ]] && ok=1
verdict $ok "$HERD clients on one cold object -> exactly 1 upstream request" \
	"origin GETs $before -> $after (+$gets); every client got $COLD_BYTES correct bytes: $([[ $herd_ok == 1 ]] && echo yes || echo NO)" \
	"${herd_cmd[*]}" "curl -s http://127.0.0.1:$p_origin/metrics | grep fillcast_origin_requests_total   # before and after"

say ""
for s in fillcast-mem fillcast-disk; do
	say "$s /v1/status: $(curl -s -H "Authorization: Bearer $admin" "${url[$s]}/v1/status" | tr -d '\n' | cut -c1-400)"
done
for f in "$tmp"/appliance-*.log "$tmp/origin.log"; do
	if [[ -s $f ]]; then say "log $(basename "$f") (last lines):"; tail -n 5 "$f" | sed 's/^/   /'; fi
done
say ""
if ((fails)); then say "$fails target(s) FAILED"; else say "all targets PASS"; fi
exit $((fails > 0))
