#!/usr/bin/env bash
# HTTP benchmark of GET /v1/playback/{title} on one control-plane node
# (issue 4: >= 20k req/s on this machine, with p99): one node bootstrapped
# on loopback, a site covering 127.0.0.0/8 with 20 appliances that keep
# heartbeating, one ready title; wrk drives the playback route for
# ROUNDS x DURATION and the medians are printed.
#
#   bench/steering/http.sh                      # 3 rounds of 10 s
#   ROUNDS=1 DURATION=3 bench/steering/http.sh  # quick
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-64}
command -v wrk >/dev/null || scripts/ensure-packages wrk
tmp=$(mktemp -d /tmp/fillcast-playback-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/fillcast" ./cmd/fillcast
echo "k1 $(openssl rand -hex 32)" > "$tmp/keys"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(port)
raft=127.0.0.1:$(port)
"$tmp/fillcast" controlplane --id n1 --data "$tmp/n1" --http "$http" --raft "$raft" --bootstrap \
	--token-keys "$tmp/keys" --admin-token T --origin http://127.0.0.1:9 --log-level warn 2>"$tmp/cp.log" &
pids+=($!)
cp=http://$http
api() { curl -sf -X "$1" -H 'Authorization: Bearer T' -H 'Content-Type: application/json' -d "$3" "$cp$2" >/dev/null; }
for _ in $(seq 100); do api PUT /v1/sites/isp1 '{"kind":"isp","region":"eu","prefixes":["127.0.0.0/8"]}' && break; sleep 0.1; done
api POST /v1/titles '{"id":"t1","name":"Bench","status":"ready","renditions":[{"id":"720p","kind":"video","width":1280,"height":720,"bandwidth":3000000,"codecs":"avc1.64001f"}]}'
# Each appliance is registered (the admin key may then heartbeat for it).
for i in $(seq 1 20); do
	api PUT "/v1/appliances/a$i" "{\"site\":\"isp1\",\"profile\":\"storage\",\"urls\":[\"http://10.0.0.$i:8080\"]}"
done
beats() {
	while :; do
		for i in $(seq 1 20); do
			api POST "/v1/appliances/a$i/heartbeat" "{\"site\":\"isp1\",\"profile\":\"storage\",\"url\":\"http://10.0.0.$i:8080\",\"capacity_bytes\":1000000000000,\"used_bytes\":0,\"health\":\"ok\",\"rps\":0,\"bps\":0}" || true
		done
		sleep 2
	done
}
beats &
pids+=($!)
sleep 1
answer=$(curl -s "$cp/v1/playback/t1?protocol=hls")
echo "one answer: $answer" | cut -c1-300
echo "$answer" | grep -q '10.0.0.' || { echo "playback is not steering to the appliances" >&2; exit 1; }

rps=() p99=()
for r in $(seq "$rounds"); do
	out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency "$cp/v1/playback/t1?protocol=hls")
	q=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	l=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	echo "round $r: $q req/s, p99 $l, non-2xx ${non2xx:-0}"
	rps+=("$q"); p99+=("$l")
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ms() { awk '{ v=$1; if (v ~ /us$/) { sub(/us/,"",v); v/=1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v*=1000 } print v }'; }
m=$(med "${rps[@]}")
p=$(printf '%s\n' "${p99[@]}" | ms | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
echo "playback: median $m req/s, p99 $p ms over $rounds x ${duration}s, wrk -t2 -c$conns ($cp/v1/playback/t1?protocol=hls)"
awk -v m="$m" 'BEGIN { if (m >= 20000) print "PASS  /v1/playback >= 20k req/s"; else print "FAIL  /v1/playback >= 20k req/s" }'
