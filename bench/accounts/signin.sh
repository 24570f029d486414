#!/usr/bin/env bash
# bench/accounts/signin.sh: sign-in latency (POST /v1/sessions) on one
# control-plane node bootstrapped on loopback with the default accounts
# configuration (argon2id 19 MiB, t=2, p=1; 2 x GOMAXPROCS hashes at
# once): bench/accounts/signin signs ACCOUNTS accounts up, then signs in
# with CONCURRENCY clients at once for DURATION each and prints count,
# rate and p50/p90/p99 latency. Target: p99 < 250 ms.
#
#   bench/accounts/signin.sh
#   CONCURRENCY=4 DURATION=3s bench/accounts/signin.sh   # quick
set -euo pipefail
cd "$(dirname "$0")/../.."
accounts=${ACCOUNTS:-32}
concurrency=${CONCURRENCY:-4,8,16}
duration=${DURATION:-10s}
tmp=$(mktemp -d /tmp/fillcast-signin-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/fillcast" ./cmd/fillcast
go build -o "$tmp/signin" ./bench/accounts/signin
echo "k1 $(openssl rand -hex 32)" >"$tmp/keys"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=127.0.0.1:$(port) raft=127.0.0.1:$(port)
"$tmp/fillcast" controlplane --id n1 --data "$tmp/n1" --http "$http" --raft "$raft" --bootstrap \
	--token-keys "$tmp/keys" --admin-token T --origin http://127.0.0.1:9 --log-level warn --signups-per-hour -1 2>"$tmp/cp.log" &
pids+=($!)
cp=http://$http
for _ in $(seq 100); do curl -fsS -H 'Authorization: Bearer T' "$cp/v1/cluster" 2>/dev/null | grep -q leader && break; sleep 0.1; done
"$tmp/signin" -controlplane "$cp" -admin T -accounts "$accounts" -concurrency "$concurrency" -duration "$duration"
