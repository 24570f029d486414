# Fillcast: make demo | make test | make bench | make chaos | make fuzz | make build
GO      ?= go
BIN     := bin/fillcast
# Debian packages each target needs; scripts/ensure-packages installs the
# missing ones with apt-get and says so.
TEST_PKGS  := ffmpeg chromium postgresql nats-server prometheus iproute2
BENCH_PKGS := ffmpeg nginx-light varnish wrk caddy curl openssl python3 postgresql

.PHONY: build test bench demo vet fuzz chaos clean web

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
	scripts/check-deploy
	FILLCAST_BROWSER_TESTS=require GORACE='$(GORACE)' $(GO) test -race -vet=off -p $(TEST_P) -timeout 12m ./demo ./...
	$(GO) test -vet=off -run Allocs $(ALLOCS_PKGS)
	GO=$(GO) scripts/fuzz 3s

# Fuzzing of every fuzz target scripts/fuzz finds (every func Fuzz* in a
# _test.go file), 60 s each; make test fuzzes each for 3 s, and go test
# runs every seed corpus.
fuzz:
	GO=$(GO) scripts/fuzz 60s

# Ten minutes of leader kills and partitions against three control-plane
# processes in network namespaces, the history checked with porcupine
# (root; make test runs one minute of it).
chaos:
	@scripts/ensure-packages iproute2
	FILLCAST_CHAOS_DURATION=10m $(GO) test -race -count=1 -timeout 30m -run '^TestLinearizable$$' -v ./controlplane/chaos/

bench: build
	@scripts/ensure-packages $(BENCH_PKGS)
	$(GO) test -run x -bench . -benchmem ./appliance/... ./steering/... ./controlplane/...
	bench/edge-vs-nginx/run.sh
	bench/disks/run.sh
	bench/steering/run.sh
	bench/accounts/run.sh
	bench/billing/run.sh
	bench/hit-vs-rev/run.sh
	bench/transcode/run.sh
	bench/search/run.sh
	bench/recs/run.sh
	bench/cachesim/run.sh --quick
	bench/fillsim/run.sh
	bench/catalog/run.sh
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
