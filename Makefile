# Vantage: `make test` is what CI runs; `make demo` is the newcomer's first run.
GO      ?= go
BIN     := bin
PKGS    := ./...
# Short fuzz runs per target; override with FUZZTIME=1m.
FUZZTIME ?= 10s
# Benchmarks run a fixed number of iterations so `make bench` stays short.
BENCHTIME ?= 1x

.PHONY: all build deps test vet demo bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Debian packages that tests use as real peers (git, hg, alertmanager, …).
deps:
	@./scripts/install-deps.sh

vet:
	$(GO) vet $(PKGS)

test: deps vet
	$(GO) test -race -count=1 -timeout 12m $(PKGS)

demo: deps build
	./scripts/demo.sh

# Every comparison benchmark reports value, baseline, ratio and goal; the
# table prints one `bench:` line per figure.
bench: deps
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -count 1 -timeout 20m $(PKGS) | tee $(BIN)/bench.out | ./scripts/benchtable.sh

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
