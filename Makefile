# rtpkit — run `make help` for the targets.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X github.com/rtpkit/rtpkit/pkg/version.Version=$(VERSION)
BIN         := $(CURDIR)/bin
TOOLS       := $(CURDIR)/.cache/tools
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
FUZZTIME    ?= 5s
RUN_ARGS    ?=

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

# Transcoding links libopus, spandsp, speexdsp, bcg729 and libgsm (cgo);
# without them the build carries G.711 only (-tags notranscode) and ng-ctl
# refuses the rest.
CODEC_LIBS  := opus opusfile spandsp speexdsp libbcg729
TAGS        ?= $(shell pkg-config --exists $(CODEC_LIBS) 2>/dev/null && test -e /usr/include/gsm/gsm.h || echo notranscode)

build: ## Build every binary into bin/ (without the codec libraries: G.711 transcoding only)
	@mkdir -p $(BIN)
	@if [ -n "$(TAGS)" ]; then echo "build: tags '$(TAGS)' (codec libraries missing: transcoding to G.711 only; make deps installs them)"; fi
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

run: build ## Build and run a whole node on loopback (rtpctl up); RUN_ARGS adds options
	$(BIN)/rtpctl up $(RUN_ARGS)

deps: ## Install what the tests need (redis-server, iproute2; apt-get when root) and the lint tools
	@bash scripts/deps.sh
	@mkdir -p $(TOOLS)
	@test -x $(STATICCHECK) || GOBIN=$(TOOLS) GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: deps ## gofmt, go vet and staticcheck; fails on any finding
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

test: deps lint build ## Install what is missing, lint, then run every test (root: network namespaces too) and short fuzz runs
	bash scripts/check-bpf-generated.sh
	RTPKIT_TEST_BINDIR=$(BIN) RTPKIT_REQUIRE_DEPS=1 $(GO) test -race -count=1 -timeout 9m ./...
	# The race detector allocates: the zero-allocation tests run again without it.
	$(GO) test -count=1 -run 'Alloc' ./pkg/fwd/ ./pkg/mediabench/ ./pkg/bencode/
	# A build without the codec libraries: G.711 only, the rest refused.
	$(GO) test -count=1 -tags notranscode ./pkg/codec/... ./pkg/calls/
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bench: build ## Run the Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## Run every fuzz target for FUZZTIME each (default 5s; e.g. make fuzz FUZZTIME=5m)
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

generate: ## Regenerate pkg/fastpath's BPF object and Go bindings (needs clang, llvm-strip, libbpf-dev: make deps)
	$(GO) generate ./pkg/fastpath/

check-bpf: ## Check that pkg/fastpath's committed BPF object and bindings are up to date (make test runs it)
	bash scripts/check-bpf-generated.sh

clean: ## Remove build outputs
	rm -rf $(BIN)

.PHONY: help build run deps lint test bench fuzz generate check-bpf clean
