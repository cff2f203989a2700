#!/usr/bin/env bash
# Runs every Fuzz target in the module for FUZZTIME each (20000 inputs in
# `make test`, a time under `make fuzz`). An input count, not a time, in CI:
# a time budget makes the fuzz coordinator fail with "context deadline
# exceeded" when a worker is slow at the deadline on a loaded machine.
# Targets are discovered, not listed, so a new decoder's fuzz test runs in
# CI the day it is written.
set -euo pipefail
FUZZTIME=${FUZZTIME:-20000x}
GO=${GO:-go}
n=0
for pkg in $($GO list ./...); do
	targets=$($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		echo "fuzz $pkg $t ($FUZZTIME)"
		$GO test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; rm -f /tmp/fuzz.$$.log; exit 1; }
		n=$((n + 1))
	done
done
rm -f /tmp/fuzz.$$.log
[ "$n" -gt 0 ] || { echo "no fuzz targets found" >&2; exit 1; }
echo "fuzzed $n targets for $FUZZTIME each"
