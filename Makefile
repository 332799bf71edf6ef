# tally: `make dev` runs everything locally, `make test` runs the whole test suite.
GO      ?= go
BIN     ?= bin/tally
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: dev test build deps deps-test bench vet clean web check-web

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

## web: rebuild the dashboard bundle web/dist from web/src (npm; commit web/dist).
## `build` needs only Go: it embeds the committed web/dist.
web:
	cd web && npm install --no-audit --no-fund --loglevel=error && npm run build

## check-web: fail if web/dist is not the build of web/src
check-web:
	bash scripts/check-web.sh

deps:
	bash scripts/install-deps.sh

deps-test:
	bash scripts/install-deps.sh --test

vet:
	$(GO) vet ./...

clean:
	rm -rf bin .tally-dev
