# Fillcast: make demo | make test | make bench | make build
GO      ?= go
BIN     := bin/fillcast
# Debian packages each target needs; scripts/ensure-packages installs the
# missing ones with apt-get and says so.
TEST_PKGS  := ffmpeg chromium postgresql nats-server
BENCH_PKGS := ffmpeg nginx-light varnish wrk caddy curl openssl python3 postgresql

.PHONY: build test bench demo vet fuzz clean web

# The web pages embed the player library from npm: fetch and copy it first.
web:
	@scripts/web-deps

build: web
	$(GO) build -o $(BIN) ./cmd/fillcast

vet:
	$(GO) vet ./...

# FILLCAST_BROWSER_TESTS=require: the browser test fails, not skips,
# when Chromium or the npm packages are missing.
#
# go vet ./... already runs every check go test would repeat in each
# package: hence -vet=off. Most test binaries wait more than they compute
# (the browser test plays video in real time for a minute), so the race
# pass runs TEST_P of them at once, and ./demo, the longest, is named
# first so that it starts first (./... adds every other package, once).
# GORACE: a race-enabled binary otherwise sleeps 1 s on exit in case a
# goroutine still running races; make test GORACE= restores that. The
# allocation tests (built without -race) run in a second pass over the
# packages with a test named *Allocs*, the tests -run Allocs ./... would
# run, without building every package a second time.
TEST_P ?= 4
GORACE ?= atexit_sleep_ms=0
ALLOCS_PKGS = $(sort $(patsubst %/,%,$(dir $(shell grep -rlE --include='*_test.go' \
	--exclude-dir=testdata --exclude-dir='[._][!.]*' --exclude-dir=node_modules \
	'^func (Test|Example|Fuzz)[A-Za-z0-9_]*Allocs' .))))

test: web
	@scripts/ensure-packages $(TEST_PKGS)
	$(GO) vet ./...
	FILLCAST_BROWSER_TESTS=require GORACE='$(GORACE)' $(GO) test -race -vet=off -p $(TEST_P) -timeout 12m ./demo ./...
	$(GO) test -vet=off -run Allocs $(ALLOCS_PKGS)

# Short fuzzing of every parser; the seed corpora also run in make test.
fuzz:
	$(GO) test -run x -fuzz FuzzParse -fuzztime 20s ./appliance/byterange
	$(GO) test -run x -fuzz FuzzParse -fuzztime 20s ./appliance/cmcd
	$(GO) test -run x -fuzz FuzzUsageJSON -fuzztime 20s .
	$(GO) test -run x -fuzz '^FuzzVerify$$' -fuzztime 20s ./auth
	$(GO) test -run x -fuzz FuzzVerifyCredential -fuzztime 20s ./auth
	$(GO) test -run x -fuzz FuzzParseKeys -fuzztime 20s ./auth
	$(GO) test -run x -fuzz FuzzParseIdentity -fuzztime 20s ./auth/pki
	$(GO) test -run x -fuzz FuzzParseConfig -fuzztime 20s ./cmd/fillcast
	$(GO) test -run x -fuzz FuzzContentPath -fuzztime 20s ./appliance/server
	$(GO) test -run x -fuzz FuzzMaster -fuzztime 20s ./manifestfilter
	$(GO) test -run x -fuzz FuzzMPD -fuzztime 20s ./manifestfilter
	$(GO) test -run x -fuzz FuzzSteerMaster -fuzztime 20s ./manifestfilter
	$(GO) test -run x -fuzz FuzzSteerMPD -fuzztime 20s ./manifestfilter
	$(GO) test -run x -fuzz FuzzString -fuzztime 20s ./internal/jsonappend
	$(GO) test -run x -fuzz FuzzPasswordMatches -fuzztime 20s ./accounts
	$(GO) test -run x -fuzz FuzzNormalizeEmail -fuzztime 20s ./accounts
	$(GO) test -run x -fuzz '^FuzzDecodeBatch$$' -fuzztime 20s ./controlplane/events
	$(GO) test -run x -fuzz '^FuzzDecodeRecord$$' -fuzztime 20s ./controlplane/events
	$(GO) test -run x -fuzz '^FuzzViewingUnmarshal$$' -fuzztime 20s ./controlplane/events
	$(GO) test -run x -fuzz '^FuzzModelUnmarshal$$' -fuzztime 20s ./controlplane/recs
	$(GO) test -run x -fuzz '^FuzzParseQuery$$' -fuzztime 20s ./controlplane/opsindex
	$(GO) test -run x -fuzz '^FuzzParseLimits$$' -fuzztime 20s ./controlplane/ratelimit
	$(GO) test -run x -fuzz '^FuzzRule$$' -fuzztime 20s ./controlplane/rules
	$(GO) test -run x -fuzz '^FuzzParse$$' -fuzztime 20s ./controlplane/squeeze
	$(GO) test -run x -fuzz '^FuzzTraceID$$' -fuzztime 20s ./internal/tracing
	$(GO) test -run x -fuzz '^FuzzBucket$$' -fuzztime 20s ./appliance/latency
	$(GO) test -run x -fuzz '^FuzzAppendLine$$' -fuzztime 20s ./appliance/accesslog
	$(GO) test -run x -fuzz '^FuzzParseNumber$$' -fuzztime 20s ./billing
	$(GO) test -run x -fuzz '^FuzzProrate$$' -fuzztime 20s ./billing
	$(GO) test -run x -fuzz '^FuzzNextPeriodEnd$$' -fuzztime 20s ./billing
	$(GO) test -run x -fuzz '^FuzzCardNumber$$' -fuzztime 20s ./billing/testprovider
	$(GO) test -run x -fuzz '^FuzzReplay$$' -fuzztime 20s ./billing/testprovider
	$(GO) test -run x -fuzz '^FuzzApply$$' -fuzztime 20s ./billing/embedded
	$(GO) test -run x -fuzz '^FuzzParse$$' -fuzztime 20s ./internal/failpoint

bench: build
	@scripts/ensure-packages $(BENCH_PKGS)
	$(GO) test -run x -bench . -benchmem ./appliance/... ./steering/... ./controlplane/...
	bench/edge-vs-nginx/run.sh
	bench/steering/run.sh
	bench/accounts/run.sh
	bench/billing/run.sh
	bench/hit-vs-rev/run.sh
	bench/transcode/run.sh
	bench/search/run.sh
	bench/recs/run.sh
	bench/cachesim/run.sh --quick
	bench/fillsim/run.sh
	bench/h3/run.sh
	bench/upgrade/run.sh
	bench/loadtest/run.sh
	$(GO) run ./bench/overload

# The whole CDN on one machine: origin, control plane, a flash and a
# storage appliance, sample titles made with ffmpeg and ingested.
demo: build
	@scripts/ensure-packages ffmpeg
	$(BIN) demo --dir fillcast-demo

clean:
	rm -rf bin
