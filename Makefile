# tally: `make dev` runs everything locally, `make test` runs the whole test suite.
GO      ?= go
BIN     ?= bin/tally
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: dev test build deps deps-test bench vet clean

## dev: install what is missing (clickhouse-server), build, run `tally dev`
dev: deps build
	$(BIN) dev

## test: install what is missing (clickhouse-server, chdb), vet, run every test
test: deps-test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

## bench: the benchmark table (ingest, end-to-end, freshness, projector RSS, ceilings)
bench: deps build
	$(BIN) bench

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tally

deps:
	bash scripts/install-deps.sh

deps-test:
	bash scripts/install-deps.sh --test

vet:
	$(GO) vet ./...

clean:
	rm -rf bin .tally-dev
