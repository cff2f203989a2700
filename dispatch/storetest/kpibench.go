package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// BenchmarkLedger measures one round of the kpi feed on s: reading a
// day's calls of the whole area (calls of them, each with an assignment
// and four transitions) and computing the ledger. It stores the calls
// first, outside the timing.
func BenchmarkLedger(b *testing.B, s dispatch.Store, calls int) {
	ctx := b.Context()
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for i := range calls {
		at := day.Add(time.Duration(i) * 24 * time.Hour / time.Duration(calls))
		inc := incident(fmt.Sprintf("INC-%05d", i), at, dispatch.IncidentClosed)
		inc.Satisfaction, inc.ClosedAt, inc.Priority = dispatch.SatisfiedOwn, at.Add(time.Hour), dispatch.Priority(1+i%4)
		if _, _, err := s.CreateIncident(ctx, inc); err != nil {
			b.Fatal(err)
		}
		a := assignment(fmt.Sprintf("ASG-%05d", i), inc.ID, fmt.Sprintf("U%02d", i%30), dispatch.AssignCompleted, at.Add(time.Minute))
		a.AcceptedAt = at.Add(90 * time.Second)
		c := dispatch.Change{Assignments: []*dispatch.Assignment{a}}
		for j, to := range []dispatch.UnitStatus{dispatch.EnRoute, dispatch.OnScene, dispatch.Transporting, dispatch.AtHospital} {
			c.Transitions = append(c.Transitions, dispatch.Transition{Unit: a.Unit, Incident: inc.ID, To: to, At: at.Add(time.Duration(j+2) * 5 * time.Minute), Source: dispatch.SourceTerminal})
		}
		if err := s.Apply(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		recs, err := s.CallRecords(ctx, dispatch.KPIFilter{From: day, To: day.Add(24 * time.Hour)})
		if err != nil || len(recs) != calls {
			b.Fatalf("%d records, %v", len(recs), err)
		}
		dispatch.Ledger(recs, day.Add(25*time.Hour))
	}
}
