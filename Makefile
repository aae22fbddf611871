# Campaign Manager. `make run` starts campaignd with an embedded NATS and a private Postgres
# under ./.data; `make test` runs every test against real servers the tests start.
GO ?= go
BIN := bin
PKGS := ./...

.PHONY: build run test test-race vet lint hooks fmt fuzz bench clean

# build compiles every binary into ./bin.
build:
	$(GO) build -o $(BIN)/ ./cmd/...

# run builds and starts campaignd in all-in-one mode (Ctrl-C stops it cleanly).
run: build
	./$(BIN)/campaignd

# test runs vet, golangci-lint, a gofmt check, the whole suite (unit and integration, with
# -race; the crash, outage, scale-out, promtool and browser tests included), then each fuzz
# target for its smoke budget (see fuzz).
test: vet lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || (gofmt -l . && echo "gofmt needed" && exit 1)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory fuzz

# vet runs go vet on every package.
vet:
	$(GO) vet $(PKGS)

# The pinned golangci-lint (.ci/run installs this version): the one on PATH or in GOBIN
# when its version is this one, else `go run` of it (built once, then cached).
GOLANGCI_LINT_VERSION := 2.15.0
GOLANGCI_LINT_PKG := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_LINT_VERSION)
GOLANGCI_LINT = $(shell gobin="$$($(GO) env GOBIN)"; gobin="$${gobin:-$$($(GO) env GOPATH)/bin}"; \
	for b in golangci-lint "$$gobin/golangci-lint"; do \
	  if "$$b" version --short 2>/dev/null | grep -qx '$(GOLANGCI_LINT_VERSION)'; then echo "$$b"; exit; fi; \
	done; echo '$(GO) run $(GOLANGCI_LINT_PKG)')
LINTPKGS ?= $(PKGS)

# lint runs golangci-lint (.golangci.yml) on LINTPKGS (default every package).
lint:
	$(GOLANGCI_LINT) run $(LINTPKGS)

# hooks installs a git pre-commit hook that runs this checkout's .githooks/pre-commit (gofmt,
# go vet, golangci-lint on the staged packages); pre-commit users run `pre-commit install`.
hooks:
	@h="$$(git rev-parse --git-path hooks)/pre-commit"; \
	if [ "$$h" -ef .githooks/pre-commit ]; then echo "core.hooksPath runs .githooks already"; exit 0; fi; \
	if [ -e "$$h" ] && ! grep -q 'Installed by `make hooks`' "$$h"; then echo "$$h exists: move it away first"; exit 1; fi; \
	mkdir -p "$$(dirname "$$h")" && printf '%s\n' '#!/bin/sh' '# Installed by `make hooks`.' \
	  'exec "$$(git rev-parse --show-toplevel)/.githooks/pre-commit" "$$@"' >"$$h" && chmod +x "$$h" && echo "installed $$h"

# fmt formats the code.
fmt:
	gofmt -w $$(git ls-files '*.go')

# fuzz runs each fuzz target for FUZZTIME (`make fuzz FUZZTIME=1m` to explore); new crashers
# land in testdata/fuzz. Without FUZZTIME each target runs a count of inputs worth about 10 s
# here: a count has no wall-clock deadline, so it cannot hit Go 1.26's fuzztime shutdown race
# (go.dev/issue/75804, a bare "context deadline exceeded" FAIL on a busy machine).
FUZZTIME ?=
FUZZFLAGS = -run '^$$' -fuzzminimizetime 0
fuzzbudget = -fuzztime $(if $(FUZZTIME),$(FUZZTIME),$(1))
fuzz:
	$(GO) test ./ingress/event $(FUZZFLAGS) $(call fuzzbudget,300000x) -fuzz '^FuzzDecode$$'
	$(GO) test ./ingress/event $(FUZZFLAGS) $(call fuzzbudget,300000x) -fuzz '^FuzzToken$$'
	$(GO) test ./cel $(FUZZFLAGS) $(call fuzzbudget,15000x) -fuzz '^FuzzCompile$$'
	$(GO) test ./cel $(FUZZFLAGS) $(call fuzzbudget,20000x) -fuzz '^FuzzExplain$$'
	$(GO) test ./ingress/api $(FUZZFLAGS) $(call fuzzbudget,150000x) -fuzz '^FuzzCheckJSON$$'

# bench runs the quick load scenario (campaignbench starts its own campaignd; results in
# bench/results/) and then the Go micro-benchmarks: decode, tokens, rules and their index,
# single-event ingest, actor dispatch, Postgres batch commits, memory per user, webhook
# delivery. SCENARIO=standard, latency, scale or delivery for more.
SCENARIO ?= quick
bench:
	$(GO) run ./bench/cmd/campaignbench -scenario $(SCENARIO)
	$(GO) test -run '^$$' -bench . -benchmem ./cel ./ingress/event
	$(GO) test -run '^$$' -bench SingleEventIngest -benchtime 20000x ./ingress
	$(GO) test -run '^$$' -bench ActorDispatch -benchmem ./actors
	$(GO) test -run '^$$' -bench CommitBatch -benchtime 2000x ./persistence
	$(GO) test -run '^$$' -bench ResidentUserMemory -benchtime 100000x ./actors
	$(GO) test -run '^$$' -bench Delivery -benchtime 20000x ./actors/webhook

# clean removes build output (not the data dir).
clean:
	rm -rf $(BIN)
