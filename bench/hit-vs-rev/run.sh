#!/usr/bin/env bash
# bench/hit-vs-rev/run.sh [REV]: the appliance's 1.5 MiB segment hit rate
# of the working tree against that of an earlier commit (default: the
# commit before issue 13, HMAC tokens without a verified-token cache), side
# by side in one run: each build runs an origin and an appliance whose
# memory tier holds every object; wrk rounds alternate between them and
# the medians and their ratio are printed. Issue 13's target: the ratio
# stays at 0.95 or above.
#
#   bench/hit-vs-rev/run.sh                 # 5 rounds of 5 s each
#   ROUNDS=9 bench/hit-vs-rev/run.sh 6862f33
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
rev=${1:-6862f33}
rounds=${ROUNDS:-5} duration=${DURATION:-5} objects=${OBJECTS:-100} conns=${CONNS:-32}
command -v wrk >/dev/null || scripts/ensure-packages wrk
tmp=$(mktemp -d /tmp/fillcast-hit-vs-rev.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	git -C "$repo" worktree remove --force "$tmp/old-src" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

git worktree add -q --detach "$tmp/old-src" "$rev"
(cd "$tmp/old-src" && go build -o "$tmp/fc-old" ./cmd/fillcast)
go build -o "$tmp/fc-new" ./cmd/fillcast
root=$tmp/origin
mkdir -p "$root/t1/720p"
for ((i = 1; i <= objects; i++)); do head -c 1572864 /dev/urandom >"$(printf '%s/t1/720p/seg-%05d.m4s' "$root" "$i")"; done
# 32 random bytes in hex: an HMAC secret to the old build, an Ed25519
# seed to the new one, whose appliance gets only the public key.
echo "k1 $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$tmp/keys"
"$tmp/fc-new" keys public --token-keys "$tmp/keys" >"$tmp/keys.pub"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A app
for v in old new; do
	op=$(port) ap=$(port)
	k=$tmp/keys
	[[ $v == new ]] && k=$tmp/keys.pub
	"$tmp/fc-$v" origin --root "$root" --http "127.0.0.1:$op" --log-level warn 2>"$tmp/origin-$v.log" &
	pids+=($!)
	"$tmp/fc-$v" appliance --id "a$v" --site s1 --http "127.0.0.1:$ap" --cache-dir "$tmp/cache-$v" --mem-bytes 1GiB \
		--disk-bytes 4GiB --upstream "http://127.0.0.1:$op" --token-keys "$k" --log-level warn 2>"$tmp/appliance-$v.log" &
	pids+=($!)
	app[$v]=http://127.0.0.1:$ap
done
for v in old new; do
	for _ in $(seq 100); do curl -fs -o /dev/null "${app[$v]}/healthz" && break; sleep 0.1; done
	prefix=$("$tmp/fc-$v" sign --token-keys "$tmp/keys" --title t1 --ttl 4h)
	: >"$tmp/paths-$v"
	for ((i = 1; i <= objects; i++)); do
		p=$(printf '%s/720p/seg-%05d.m4s' "$prefix" "$i")
		echo "$p" >>"$tmp/paths-$v"
		curl -fs -o /dev/null "${app[$v]}$p" # warm: every object in memory
	done
done
declare -A rps
for ((r = 1; r <= rounds; r++)); do
	for v in old new; do
		out=$(wrk -t2 -c"$conns" -d"${duration}s" -s bench/edge-vs-nginx/random-path.lua "${app[$v]}" -- "$tmp/paths-$v")
		q=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
		echo "round $r $v ($([[ $v == old ]] && echo "$rev" || echo "working tree")): $q req/s"
		rps[$v]+="$q "
	done
done
med() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
old=$(med ${rps[old]}) new=$(med ${rps[new]})
echo "median $rev: $old req/s; working tree: $new req/s ($rounds x ${duration}s, wrk -t2 -c$conns, $objects x 1.5 MiB from memory)"
awk -v n="$new" -v o="$old" -v rev="$rev" 'BEGIN { r = n / o; printf "ratio working tree / %s: %.3f (target >= 0.95): %s\n", rev, r, (r >= 0.95 ? "PASS" : "MISS") }'
