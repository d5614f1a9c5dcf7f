# Vantage: `make test` is what CI runs; `make demo` is the newcomer's first run.
GO      ?= go
BIN     := bin
PKGS    := ./...
# Short fuzz runs per target; override with FUZZTIME=1m.
FUZZTIME ?= 10s
# Benchmarks run a fixed number of iterations so `make bench` stays short.
BENCHTIME ?= 1x

.PHONY: all build deps test vet demo campaign bench fuzz chaos clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Debian packages that tests use as real peers (git, hg, alertmanager, …).
deps:
	@./scripts/install-deps.sh

vet:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*')); \
	  if [ -n "$$out" ]; then echo "gofmt -w needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# The end-to-end campaign (lab/campaign) runs a whole fleet of processes;
# it runs after the other packages so that it does not share the CPU with
# them (its timings are those of a quiet machine).
E2E_PKG := ./lab/campaign

test: deps vet
	$(GO) test -race -count=1 -timeout 12m $$($(GO) list $(PKGS) | grep -v '/lab/campaign$$')
	$(GO) test -race -count=1 -timeout 12m $(E2E_PKG)

# Chaos tests (lab/chaos): each region's probers in their own network
# namespace, real links cut with nftables. They need root (they skip
# without it) and take about 4 minutes, so `make test` leaves them out.
chaos: deps
	VANTAGE_CHAOS=1 $(GO) test -count=1 -v -timeout 12m -run '^TestChaos_' ./lab/chaos/

demo: deps build
	./scripts/demo.sh

# A seeded, randomised fault campaign against the whole fleet; the seed is
# printed (replay with SEED=N), FAULTS sets the count. Reports go to the run
# directory (CAMPAIGN_DIR, default a new temporary one) as report.md and
# report.json; the Markdown is printed too.
SEED   ?= 0
FAULTS ?= 30
campaign: deps build
	./$(BIN)/lab campaign -seed $(SEED) -faults $(FAULTS) $(if $(CAMPAIGN_DIR),-dir $(CAMPAIGN_DIR))

# Every comparison benchmark reports value, baseline, ratio and goal; the
# table prints one `bench: NAME value=V baseline=B ratio=R goal=G` line per
# figure. Packages run one at a time (-p 1) so that one package's
# benchmarks do not steal CPU or memory from another's measurements. The
# lines are printed again at the end, with any failure, and written to
# $(BIN)/bench.txt; the raw output is in $(BIN)/bench.out. BENCH selects
# benchmarks by regexp, e.g. `make bench BENCH=Blackbox`.
BENCH ?= .
bench: deps
	@mkdir -p $(BIN)
	@{ $(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count 1 -timeout 20m $(PKGS) 2>&1; \
	   echo $$? > $(BIN)/bench.status; } | tee $(BIN)/bench.out | ./scripts/benchtable.sh
	@./scripts/benchtable.sh < $(BIN)/bench.out | grep '^bench: ' > $(BIN)/bench.txt || true
	@echo; echo "== benchmark table ($(BIN)/bench.txt) =="; cat $(BIN)/bench.txt
	@grep -E '^(--- FAIL|FAIL)' $(BIN)/bench.out || true
	@exit $$(cat $(BIN)/bench.status)

# Runs every Fuzz target briefly.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz: $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BIN)
