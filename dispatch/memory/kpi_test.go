package memory_test

import (
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
)

// BenchmarkLedger: one round of the kpi feed on a day of 1,000 calls
// (docs/BENCHMARKS.md).
func BenchmarkLedger(b *testing.B) {
	storetest.BenchmarkLedger(b, memory.NewStore(), 1000)
}
