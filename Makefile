# Lifeline. `make run` starts the server on its embedded default with the
# demo fleet; `make test` runs every test against real PostgreSQL, Redis,
# Mosquitto and headless Chromium on loopback (.ci/services.sh brings
# them up, installing them from Debian's packages when missing).

GO        ?= go
PKGS      ?= ./...
MQTT_PORT ?= 1883
HTTP_PORT ?= 8080
BENCHTIME ?= 1s
FUZZTIME  ?= 60s

.PHONY: run test services lint vet fmt bench bench-peers load soak fuzz screenshot

run:
	$(GO) run ./cmd/lifelined --demo --mqtt-listen :$(MQTT_PORT) --http :$(HTTP_PORT)

test: services lint
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	FUZZTIME=20000x bash .ci/fuzz.sh

services:
	bash .ci/services.sh

lint: vet fmt

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 5 ./geo/... ./telemetry/... ./dispatch/...

# Lifeline beside its peers on this machine, interleaved: Tile38, Redis,
# Mosquitto, a gorilla hub (docs/BENCHMARKS.md, "Peers, side by side").
# Tile38 is found, never fetched: TILE38_SERVER=/path/to/tile38-server.
# BENCHPEERS_FLAGS="-quick" for a smoke test, "-out FILE" to keep the table.
bench-peers: services
	$(GO) run ./cmd/benchpeers $(BENCHPEERS_FLAGS)

# The load harness: the real server on PostgreSQL and SQLite, real MQTT
# terminals, everything on this machine (docs/BENCHMARKS.md).
load: services
	$(GO) test ./cmd/lifelined -run '^$$' -bench LoadEndToEnd -benchtime 200000x -count 3

# The same, long: minutes of sustained ingest.
soak: services
	$(GO) test ./cmd/lifelined -run '^$$' -bench 'LoadEndToEnd/postgres/batch=100' -benchtime 20000000x -timeout 60m

fuzz:
	FUZZTIME=$(FUZZTIME) bash .ci/fuzz.sh

screenshot:
	LIFELINE_SCREENSHOT=$(CURDIR)/docs/console.png $(GO) test ./cmd/lifelined -run TestConsole -count=1 -v
