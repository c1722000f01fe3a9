# The README's commands. `make test` is what CI runs (with VSP_TEST_STRICT=1).
GO ?= go
FUZZTIME ?= 10s

.PHONY: demo test fuzz vet lint race deadcode cross build docs docs-check deb bench-short

demo:
	$(GO) run ./cmd/vsp demo

# Version stamped from git (`vsp version`); override with VERSION=… COMMIT=….
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# Both binaries, stamped alike (`vsp version`, `ezsim --version`), into $(BIN).
BIN ?= bin
build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN)/ ./cmd/vsp ./cmd/ezsim

test:
	$(GO) test -count=1 -timeout 12m ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# staticcheck at a pinned version (fetched through the Go module proxy).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) ./...

# The race detector over the packages that run goroutines against each
# other: the daemon, the bridge, pty, tlsconn, rfc2217.
RACE_PKGS ?= ./service/... ./pty/... ./tlsconn/... ./rfc2217/...
race:
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

# Short runs of every fuzz target (each target needs its own go test call).
# CI gives a count (FUZZTIME=10000x), not a duration: with a duration, Go
# 1.26's fuzz coordinator can fail a healthy target with "context deadline
# exceeded" at the end of the window on a loaded machine (go.dev/issue/75804,
# fixed in Go 1.27); a count has no deadline to race.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Go benchmarks of the bridge's byte path, short enough for CI (they must
# keep running; the figures that count come from `go run ./cmd/vspbench`).
BENCHTIME ?= 100ms
bench-short:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime $(BENCHTIME) ./service/bridge/

# The other platforms build, and their tests compile (Linux-only tests carry
# a linux build constraint).
cross:
	GOOS=linux GOARCH=arm64 $(GO) build ./...
	GOOS=linux GOARCH=arm $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) vet ./...

# Regenerate the CLI reference (docs/cli.md, docs/cli-ezsim.md) and man pages
# (docs/man/) from the CLI definitions; TestCLIDocsUpToDate fails until you do.
docs:
	$(GO) run ./cmd/vsp gen-docs docs
	$(GO) run ./cmd/ezsim gen-docs docs

# Fails when the committed CLI reference is not what the CLI generates.
docs-check:
	$(GO) run ./cmd/vsp gen-docs --check docs
	$(GO) run ./cmd/ezsim gen-docs --check docs

# Fails when a function of the binaries is unreachable from their mains
# (code reached only from tests is dead and goes). Pinned version.
DEADCODE ?= golang.org/x/tools/cmd/deadcode@v0.52.0
deadcode:
	@out=$$($(GO) run $(DEADCODE) ./cmd/...) || exit 1; \
	if [ -n "$$out" ]; then echo "$$out"; echo "deadcode: the functions above are reached by no binary"; exit 1; fi

# Debian package in dist/ (nfpm, pinned in packaging/go.mod). VERSION,
# COMMIT and GOARCH may be set; see packaging/README.md.
deb:
	GO=$(GO) packaging/build-deb.sh
