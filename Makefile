# csrfn — one Makefile for running, testing, benchmarking and building.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
FUZZTIME ?= 30s
export CSRFN_TOOLS_BIN := $(BIN)

.PHONY: run test bench fuzz lint build clean tools

## run: serve the API on 127.0.0.1:9000 with the embedded file store
run:
	$(GO) run ./functions/local

## test: every test, including the openssl cross-checks and the real-process server tests
test: tools
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

## bench: key generation against the whole create path, p50/p99 and ratios
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./core/service | tee $(BIN)/bench.txt
	$(GO) run ./internal/benchreport < $(BIN)/bench.txt

## fuzz: each fuzz target for FUZZTIME (default 30s)
FUZZ_TARGETS := ./core/params:FuzzFromQuery ./core/params:FuzzFromJSON ./core/names:FuzzParse ./core/request:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## lint: gofmt, go vet, staticcheck, go mod tidy
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

## tools: test and lint tools, built from tools/go.mod into ./bin
tools: $(BIN)/staticcheck $(BIN)/benchstat
$(BIN)/%: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ $$(grep -E '^\s+[a-z].*/$*$$' go.mod | tr -d '\t ')

clean:
	rm -rf build bin .csrfn
