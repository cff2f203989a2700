package postgres_test

import (
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
)

// BenchmarkLedger: one round of the kpi feed on a day of 1,000 calls
// (docs/BENCHMARKS.md).
func BenchmarkLedger(b *testing.B) {
	storetest.BenchmarkLedger(b, open(b, pgtest.DSN(b)), 1000)
}
