# csrfn — one Makefile for running, testing, benchmarking and building.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
FUZZTIME ?= 30s
export CSRFN_TOOLS_BIN := $(BIN)

.PHONY: run test bench fuzz lint build clean tools invoke-lambda invoke-fc build-CsrfnFunction

## run: serve the API on 127.0.0.1:9000 with the embedded file store
run:
	$(GO) run ./functions/local

## test: every test, including the openssl cross-checks and the real-process server tests
test: tools node_modules/.bin/s
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

## bench: key generation against the whole create path, p50/p99 and ratios
## (each benchmark takes a fixed number of samples; BENCH_SCALE multiplies them)
BENCH_SCALE ?= 1
bench: tools
	@mkdir -p $(BIN)
	set -o pipefail; CSRFN_BENCH_SCALE=$(BENCH_SCALE) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./core/service | tee $(BIN)/bench.txt
	$(GO) run ./internal/benchreport < $(BIN)/bench.txt
	@echo; echo "function binaries: cold start (process start to ready), first RSA_2048 response, peak RSS (medians of 10 starts)"
	set -o pipefail; $(GO) test -run '^$$' -bench ColdStart -benchtime 10x ./functions/aws-lambda ./functions/alibaba-fc | grep -E '^(Benchmark|ok|FAIL|---)'
	@$(MAKE) --no-print-directory build >/dev/null
	@echo; echo "binary sizes (target < 10 MiB):"; for f in build/aws-lambda/bootstrap build/alibaba-fc/main build/aws-lambda/bootstrap.zip build/alibaba-fc/main.zip; do \
	  printf '  %-32s %6.2f MiB\n' $$f $$(awk "BEGIN{print $$(stat -c %s $$f)/1048576}"); done

## fuzz: each fuzz target for FUZZTIME (default 30s; a count such as 200000x avoids the
## spurious end-of-run "context deadline exceeded" of Go 1.26, golang/go#75804)
FUZZ_TARGETS := ./core/params:FuzzFromQuery ./core/params:FuzzFromJSON ./core/names:FuzzParse ./core/request:FuzzParse
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	done

## lint: gofmt, go vet, staticcheck, go mod tidy
lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

## node_modules/.bin/s: the pinned Serverless Devs CLI (package.json) that checks s.yaml
node_modules/.bin/s: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

## tools: test and lint tools, built from tools/go.mod into ./bin
tools: $(BIN)/staticcheck $(BIN)/benchstat $(BIN)/aws-lambda-rie $(BIN)/versitygw
$(BIN)/%: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ $$(grep -E '^\s+[a-z].*/$*$$' go.mod | tr -d '\t ')

## build: the two function binaries (static, stripped) and their deployment zips
GOFLAGS_REL := -trimpath -ldflags='-s -w -buildid='
build: build/aws-lambda/bootstrap.zip build/alibaba-fc/main.zip

build/aws-lambda/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc $(GOFLAGS_REL) -o $@ ./functions/aws-lambda

build/alibaba-fc/main: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build $(GOFLAGS_REL) -o $@ ./functions/alibaba-fc

## build-CsrfnFunction: called by `sam build` (template.yaml, BuildMethod: makefile)
build-CsrfnFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc $(GOFLAGS_REL) -o $(ARTIFACTS_DIR)/bootstrap ./functions/aws-lambda

build/%.zip: build/%
	$(GO) run ./deploy/mkzip $@ $<

## invoke-lambda / invoke-fc EVENT=deploy/events/…: run the real binary under the
## Lambda Runtime Interface Emulator / the FC runtime emulator and print the response
invoke-lambda: $(BIN)/aws-lambda-rie
	@test -n "$(EVENT)" || { echo "usage: make invoke-lambda EVENT=deploy/events/aws-lambda/direct-one.json"; exit 2; }
	@set -o pipefail; CSRFN_EVENT=$(EVENT) $(GO) test -count=1 -v -run '^TestInvokeEvent$$' ./functions/aws-lambda | sed -n '/^----- response/,/^----- end/p;/^--- FAIL/,$$p'
invoke-fc:
	@test -n "$(EVENT)" || { echo "usage: make invoke-fc EVENT=deploy/events/alibaba-fc/http-json.json"; exit 2; }
	@set -o pipefail; CSRFN_EVENT=$(EVENT) $(GO) test -count=1 -v -run '^TestInvokeEvent$$' ./functions/alibaba-fc | sed -n '/^----- response/,/^----- end/p;/^function error/p;/^--- FAIL/,$$p'

.PHONY: FORCE
FORCE:

clean:
	rm -rf build bin .csrfn
