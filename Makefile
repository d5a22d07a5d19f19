# mqstack: `make run` brings the stack up, `make test` runs every test.
SHELL := /bin/bash
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)
PG_CONFIG ?= $(lastword $(wildcard /usr/lib/postgresql/1[4-7]/bin/pg_config) $(shell command -v pg_config 2>/dev/null))
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin/mqstack
TEST_TIMEOUT ?= 14m

.PHONY: all deps godeps nodedeps build run test lint install-extension clean

all: build

## deps: Debian packages (PostgreSQL 15, pg_partman, server-dev, chromium for the console's tests) and Go modules
deps:
	@./scripts/deps.sh chromium
	@$(MAKE) --no-print-directory godeps nodedeps

godeps:
	@command -v $(GO) >/dev/null || { echo "go not found: install Go 1.26+ (expected at /usr/local/go/bin/go)"; exit 1; }
	@$(GO) mod download

## nodedeps: the Node clients the compatibility tests run (pgmq-js, pg)
nodedeps:
	@command -v npm >/dev/null || ./scripts/deps.sh nodejs npm
	@npm ci --prefix tests/clients/node --no-audit --no-fund --loglevel=error

## build: the mqstack binary in bin/
build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/mqstack

## run: install what is missing, build, and bring the whole stack up
run: deps build
	./$(BIN) up

## test: every test, with the race detector, then each fuzz target briefly
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@$(MAKE) --no-print-directory fuzz-run FUZZTIME=$(FUZZTIME_TEST)

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin

.PHONY: test-extension bench-extension

## install-extension: copy our pgmq extension into $(pg_config --sharedir)/extension (never over a real pgmq)
install-extension:
	@dir="$$($(PG_CONFIG) --sharedir)/extension"; \
	if [ -f "$$dir/pgmq.control" ] && ! grep -q '^# mqstack-pgmq' "$$dir/pgmq.control"; then \
		echo "install-extension: $$dir/pgmq.control belongs to a real pgmq; leaving it alone"; \
	else \
		install -d "$$dir" && \
		install -m 0644 extension/pgmq/pgmq--*.sql "$$dir/" && \
		install -m 0644 extension/pgmq/pgmq.control "$$dir/" && \
		echo "installed extension/pgmq into $$dir"; \
	fi

## test-extension: the pgmq extension's tests (pg_regress, isolation specs, Go hammer tests)
test-extension: install-extension
	$(GO) test -race -count=1 -timeout 10m ./extension/pgmq/...

## bench-extension: pgmq throughput table on a throwaway cluster (about 3 minutes)
bench-extension:
	PG_CONFIG=$(PG_CONFIG) GO=$(GO) ./extension/pgmq/bench/run.sh

.PHONY: bench bench-micro

# BENCH_FLAGS go to bench/cmd/mqbench, e.g. BENCH_FLAGS="-cell 3s -rounds 5" or "-only send,storm".
BENCH_FLAGS ?=

## bench: direct Postgres vs PgBouncer vs mqstack, interleaved, with CPU per operation (about 13 minutes); writes bench/results/latest.csv
bench:
	@./scripts/deps.sh pgbouncer
	@$(MAKE) --no-print-directory build
	$(GO) build -o bin/mqbench ./bench/cmd/mqbench
	./bin/mqbench -mqstack $(BIN) $(BENCH_FLAGS)

## bench-micro: the per-message micro-benchmarks (relay, Bind rewriting, token cache, statement cache)
bench-micro:
	$(GO) test -run '^$$' -bench 'RelayDataRow|BindRewrite|StmtCache' -benchmem ./proxy ./internal/backend
	$(GO) test -run '^$$' -bench 'VerifyWarmCache$$' -benchmem ./auth
	$(GO) test -run '^$$' -bench 'Classify' -benchmem ./router

.PHONY: fuzz fuzz-run soak

# Every fuzz target as package:Target; `go test -fuzz` takes one per run.
FUZZ_TARGETS := ./proxy:FuzzStartup ./proxy:FuzzSession ./proxy:FuzzPassword ./router:FuzzClassify \
	./auth:FuzzVerify ./auth:FuzzGrantParse ./rest:FuzzBuildCall ./rest:FuzzHandler ./rest:FuzzQueueTable
FUZZTIME ?= 30s

# make test fuzzes each target for a number of executions, not a duration:
# with a duration, Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" as the time runs out (golang/go#75804, fixed in 1.27).
FUZZTIME_TEST ?= 2000x

## fuzz: run each fuzz target for FUZZTIME (default 30s); `make test` runs each for FUZZTIME_TEST
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-run

fuzz-run:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

SOAK_DURATION ?= 10m

## soak: mixed load with a fault every minute for SOAK_DURATION (default 10m), then the accounting summary
soak: deps
	$(GO) test -tags soak -race -count=1 -timeout 0 -run '^TestSoak$$' -v ./tests/reliability -soak.duration=$(SOAK_DURATION)
