// Command benchpeers measures Lifeline's hot paths side by side with
// well-known peers doing the same work on the same machine, and prints a
// markdown table of medians and ratios (make bench-peers; the numbers and
// how to read them are in docs/BENCHMARKS.md, "Peers, side by side").
//
// The pairs, each run interleaved for -rounds rounds:
//
//   - served nearest unit: lifelined, built from this module and started
//     on free loopback ports with a generated area of N units, each placed
//     by a real GPS fix over MQTT, answers GET
//     /api/v1/incidents/{id}/recommendations to 32 keep-alive clients;
//     Tile38 answers NEARBY fleet LIMIT 1 POINT and Redis GEOSEARCH over
//     the same units and call points; lifelined's /livez with the same
//     client is the ceiling of any call it serves here;
//   - MQTT ingest, one and 100 fixes per message: 1,000 terminals signed
//     in to lifelined's embedded broker (SQLite, then PostgreSQL) against
//     the same publishers through Mosquitto to one decoding subscriber;
//   - decoding one GPS fix: telemetry.DecodeFixes against encoding/json;
//   - websocket fan-out to 1,000 consoles and fix-to-console latency:
//     lifelined's /api/v1/live against a gorilla hub that encodes each
//     update once ("benchpeers hub", this program as a child process).
//
// The harness finds its peers and never fetches or builds them: Tile38 is
// $TILE38_SERVER or tile38-server on PATH (-tile38), Mosquitto and Redis
// the Debian binaries (-mosquitto, -redis), PostgreSQL the test server
// (-postgres). It starts its own instances on free loopback ports with
// no persistence, and stops every process it started when it ends or is
// interrupted. A missing peer skips only its rows, with a line saying
// why. The harness writes nothing into the repository unless told to
// (-out). -quick is a smoke test of a minute or two.
//
//	go run ./cmd/benchpeers                       # the full run, about half an hour
//	go run ./cmd/benchpeers -quick                # does everything still work?
//	go run ./cmd/benchpeers -pairs served -sizes 10000 -out /tmp/served.md
package main
