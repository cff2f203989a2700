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
SOAK_DURATION  ?= 10m
SOAK_STORES    ?= postgres,sqlite
SOAK_TERMINALS ?= 2000
SOAK_CONSOLES  ?= 200
SOAK_TIMEOUT   ?= 90m

.PHONY: run test services lint vet fmt bench bench-peers load load-long soak fuzz screenshot

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

# The same, long: minutes of sustained ingest (20 million fixes).
load-long: services
	$(GO) test ./cmd/lifelined -run '^$$' -bench 'LoadEndToEnd/postgres/batch=100' -benchtime 20000000x -timeout 60m

# The soak (issue 7): the built lifelined with 2,000 MQTT terminals and
# 200 websocket consoles for SOAK_DURATION on each store in SOAK_STORES;
# resident memory, goroutines and descriptors must stay flat after
# warm-up and every acknowledged fix be stored once (docs/BENCHMARKS.md).
# The default tests run it with tiny numbers (TestSoakSmoke).
soak: services
	LIFELINE_SOAK_DURATION=$(SOAK_DURATION) LIFELINE_SOAK_STORES=$(SOAK_STORES) \
	LIFELINE_SOAK_TERMINALS=$(SOAK_TERMINALS) LIFELINE_SOAK_CONSOLES=$(SOAK_CONSOLES) \
	$(GO) test ./cmd/lifelined -run '^TestSoak$$' -count=1 -v -timeout $(SOAK_TIMEOUT)

fuzz:
	FUZZTIME=$(FUZZTIME) bash .ci/fuzz.sh

screenshot:
	LIFELINE_SCREENSHOT=$(CURDIR)/docs/console.png $(GO) test ./cmd/lifelined -run TestConsole -count=1 -v
