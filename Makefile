# relaymesh — `make` (or `make help`) lists the targets.

VERSION ?= $(shell sh packaging/version.sh 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/relaymesh/relaymesh/agent.Version=$(VERSION)
BIN     := bin/relaymesh
GO      ?= go
# the go test timeout for the whole suite; CI budget is about 20 minutes
TEST_TIMEOUT ?= 25m

.DEFAULT_GOAL := help
.PHONY: help build build-deps run test test-deps test-unit test-e2e fuzz bench lint clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: build-deps ## build bin/relaymesh (trimmed, version stamped; links libsrt, the SRT engine)
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/relaymesh

build-deps: ## check (as root on Debian: install) what the cgo build needs: gcc, pkg-config, libsrt-gnutls-dev
	@sh packaging/build-deps.sh

run: build ## build and run on the built-in standalone default (RTMP :1935, HTTP-FLV :8080, SRT :8890, API 127.0.0.1:9997)
	$(BIN) run

test: build-deps test-deps lint ## install the test peers (root), lint, then every test: unit, end-to-end with ffmpeg/srt-live-transmit, netns cluster and tc tests (root), .deb checks (root)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory deb-test; else echo "deb-test: skipped, needs root (CI runs it as root)"; fi

test-deps: ## install the Debian packages the tests need (as root), or print the apt-get command
	test/deps.sh

test-unit: ## fast tests only (no ffmpeg, no namespaces)
	$(GO) test -count=1 -short ./...

test-e2e: ## end-to-end and cluster tests only
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./media/... ./test/... ./agent/...

FUZZTIME ?= 30s
# the minimizer's default of 60 s per new input would take all of FUZZTIME
FUZZMINIMIZE ?= 5s
HOSTILE_N ?= 2000000
fuzz: ## every fuzz target for FUZZTIME (30s) each, then hostile input to the binary at HOSTILE_N SRT datagrams (test/hostile)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || exit 1; \
	  done; \
	done
	RELAYMESH_HOSTILE_N=$(HOSTILE_N) $(GO) test -count=1 -timeout 3h -v ./test/hostile/

bench: build ## benchmarks side by side with nginx-rtmp and srt-live-transmit (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchmem ./media/... ./bench/...
	bench/fanout.sh
	@if [ -x bench/srt.sh ]; then bench/srt.sh; fi
	bench/streams.sh
	bench/delay.sh
	PROTO=srt STREAMS=20 SERVERS=relaymesh bench/streams.sh
	bench/readers.sh

lint: ## go vet, gofmt, go mod tidy -diff
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

clean: deb-clean ## remove build outputs
	rm -rf bin dist

include packaging/deb.mk
