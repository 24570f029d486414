#!/usr/bin/env bash
# bench/loadtest/run.sh: a self-contained load test of issue 5 on one
# machine. Starts an origin with TITLES synthetic packaged titles (2
# renditions of SEGMENTS segments of SEG_BYTES each), a one-node control
# plane (site 127.0.0.0/8, titles registered as ready), and a storage
# appliance heartbeating to it; puts a plan, signs a viewer up and in
# (playback needs a viewer's session); writes the vegeta target list with
# `fillcast targets --session` (playback calls with the session, manifests,
# playlists, segments, Zipf popularity, real tokens); then runs
# bench/loadtest at RATES.
#
# Against a real deployment, skip this script:
#   fillcast targets --controlplane http://cp:7000 --session fcs.… --out targets.txt
#   go run ./bench/loadtest -targets targets.txt -rates 100,200,400 -duration 30s
#
# Quick run: RATES=50,100 DURATION=5s bench/loadtest/run.sh ; KEEP=1 keeps the directory.
set -euo pipefail
TITLES=${TITLES:-10}
SEGMENTS=${SEGMENTS:-20}
SEG_BYTES=${SEG_BYTES:-250000}
RATES=${RATES:-100,200,400}
DURATION=${DURATION:-10s}
KEEP=${KEEP:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/fillcast-loadtest-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "run.sh: $1 does not answer" >&2; exit 1; }

(cd "$repo" && go build -o "$tmp/fillcast" ./cmd/fillcast && go build -o "$tmp/loadtest" ./bench/loadtest)
fc="$tmp/fillcast"
echo "k1 $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$tmp/keys"
admin=bench-admin

# Synthetic packaged titles.
mkdir -p "$tmp/origin"
files_json() { # title → JSON array of files
	local t=$1 first=1
	printf '['
	for f in $(cd "$tmp/origin/$t" && find . -type f | sed 's|^\./||' | sort); do
		[ $first = 1 ] || printf ','
		first=0
		printf '{"path":"%s","size":%d}' "$f" "$(stat -c %s "$tmp/origin/$t/$f")"
	done
	printf ']'
}
for i in $(seq -w 1 "$TITLES"); do
	t="t$i"
	for r in 360p 720p; do
		mkdir -p "$tmp/origin/$t/$r"
		head -c 1000 /dev/urandom >"$tmp/origin/$t/$r/init.mp4"
		for s in $(seq -f '%05g' 1 "$SEGMENTS"); do head -c "$SEG_BYTES" /dev/urandom >"$tmp/origin/$t/$r/seg-$s.m4s"; done
		{ echo '#EXTM3U'; echo '#EXT-X-MAP:URI="init.mp4"'; for s in $(seq -f '%05g' 1 "$SEGMENTS"); do echo '#EXTINF:4.0,'; echo "seg-$s.m4s"; done; echo '#EXT-X-ENDLIST'; } >"$tmp/origin/$t/$r/playlist.m3u8"
	done
	printf '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/playlist.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/playlist.m3u8\n' >"$tmp/origin/$t/master.m3u8"
	echo '<MPD/>' >"$tmp/origin/$t/manifest.mpd"
done

op=$(port); cph=$(port); cpr=$(port); ap=$(port)
"$fc" origin --root "$tmp/origin" --http "127.0.0.1:$op" 2>"$tmp/origin.log" & pids+=($!)
"$fc" controlplane --id n1 --data "$tmp/cp" --http "127.0.0.1:$cph" --raft "127.0.0.1:$cpr" --bootstrap \
	--token-keys "$tmp/keys" --admin-token "$admin" --origin "http://127.0.0.1:$op" \
	--rate-limits viewer=off 2>"$tmp/controlplane.log" & pids+=($!) # one session plays every player
cp="http://127.0.0.1:$cph"
wait_http "$cp/healthz"
for _ in $(seq 100); do curl -fsS -H "Authorization: Bearer $admin" "$cp/v1/cluster" 2>/dev/null | grep -q leader && break; sleep 0.1; done
auth=(-H "Authorization: Bearer $admin" -H 'Content-Type: application/json')
curl -fsS "${auth[@]}" -X PUT "$cp/v1/sites/local" -d '{"id":"local","kind":"isp","region":"lab","prefixes":["127.0.0.0/8"]}' >/dev/null
for i in $(seq -w 1 "$TITLES"); do
	t="t$i"
	curl -fsS "${auth[@]}" -X POST "$cp/v1/titles" -d "{\"id\":\"$t\",\"name\":\"Title $i\",\"status\":\"ready\",\"renditions\":[{\"id\":\"360p\",\"kind\":\"video\",\"width\":640,\"height\":360,\"bandwidth\":800000},{\"id\":\"720p\",\"kind\":\"video\",\"width\":1280,\"height\":720,\"bandwidth\":3000000}],\"files\":$(files_json "$t")}" >/dev/null
done
# A viewer: playback needs a session. Its plan allows 4 screens: the wait
# below and the target list each hold one stream lease.
curl -fsS "${auth[@]}" -X PUT "$cp/v1/plans/loadtest" -d '{"name":"Load test","max_height":2160,"max_streams":4,"downloads":true,"price":{"amount":0,"currency":"EUR"},"period":"month"}' >/dev/null
curl -fsS -H 'Content-Type: application/json' -X POST "$cp/v1/accounts" -d '{"email":"viewer@loadtest.example","password":"correct horse battery staple","plan":"loadtest"}' >/dev/null
session=$(curl -fsS -H 'Content-Type: application/json' -X POST "$cp/v1/sessions" -d '{"email":"viewer@loadtest.example","password":"correct horse battery staple"}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
viewer=(-H "Authorization: Bearer $session")
# Registered first: the appliance heartbeats with the credential answered.
curl -fsS "${auth[@]}" -X PUT "$cp/v1/appliances/a1" -d "{\"site\":\"local\",\"profile\":\"storage\",\"urls\":[\"http://127.0.0.1:$ap\"]}" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])' >"$tmp/a1.credential"
chmod 600 "$tmp/a1.credential"
"$fc" keys public --token-keys "$tmp/keys" >"$tmp/keys.pub"
"$fc" appliance --id a1 --site local --profile storage --http "127.0.0.1:$ap" --cache-dir "$tmp/cache" \
	--mem-bytes 1GiB --disk-bytes 4GiB --upstream "http://127.0.0.1:$op" --token-keys "$tmp/keys.pub" \
	--controlplane "$cp" --credential-file "$tmp/a1.credential" --heartbeat 1s 2>"$tmp/appliance.log" & pids+=($!)
wait_http "http://127.0.0.1:$ap/healthz"
# Asked again on the lease of the first answer (stream_id), one screen.
stream=
for _ in $(seq 100); do
	answer=$(curl -fsS "${viewer[@]}" "$cp/v1/playback/t01?protocol=hls&stream=$stream" 2>/dev/null) || true
	s=$(sed -n 's/.*"stream_id":"\([^"]*\)".*/\1/p' <<<"$answer")
	stream=${s:-$stream}
	grep -q "127.0.0.1:$ap" <<<"$answer" && break
	sleep 0.1
done

FILLCAST_SESSION=$session "$fc" targets --controlplane "$cp" --titles "$TITLES" --out "$tmp/targets.txt"
echo "warming the appliance (one pass over the target list at 200 req/s)"
"$tmp/loadtest" -targets "$tmp/targets.txt" -rates 200 -duration "$(( $(grep -c '^GET ' "$tmp/targets.txt") / 200 + 1 ))s" >/dev/null
"$tmp/loadtest" -targets "$tmp/targets.txt" -rates "$RATES" -duration "$DURATION"
