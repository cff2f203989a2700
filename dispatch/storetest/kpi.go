package storetest

import (
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// testCallRecords checks what the KPI ledger reads: the satisfaction
// kept with a call and the acceptance time of an assignment survive
// every update, and CallRecords returns the calls of a period and of the
// jurisdictions asked for, each with the earliest time of each stage.
func testCallRecords(t *testing.T, open func(t *testing.T) Stores) {
	s := open(t).Store
	ctx := t.Context()
	incs := []*dispatch.Incident{
		incident("INC-A", at(0), dispatch.IncidentOpen),
		incident("INC-B", at(time.Minute), dispatch.IncidentOpen),
		incident("INC-C", at(2*time.Minute), dispatch.IncidentOpen),
		incident("INC-D", at(3*time.Minute), dispatch.IncidentOpen),
		incident("INC-E", at(2*time.Hour), dispatch.IncidentOpen),
	}
	incs[0].Satisfaction = dispatch.SatisfiedOwn
	incs[1].Satisfaction, incs[1].SatisfactionReason, incs[1].Jurisdiction, incs[1].Priority = dispatch.SatisfiedLinked, "linkage: N01 of 510302 at 3.1 km", "510302", 2
	incs[2].Satisfaction, incs[2].SatisfactionReason = dispatch.Unsatisfied, "no available unit within the urban 5 km radius: nearest available U09 at 7.2 km"
	incs[4].Satisfaction = dispatch.SatisfiedOwn // incs[3]: taken before satisfaction was recorded
	for _, inc := range incs {
		_, _, err := s.CreateIncident(ctx, inc)
		must(t, err)
	}
	got, err := s.Incident(ctx, "INC-C")
	must(t, err)
	same(t, got, incs[2])

	// INC-A: U1 is offered it and declines; U2 accepts (explicitly), goes
	// en route, reaches the scene and a hospital, and clears; U3, sent as
	// well, presses en_route earlier than U2 but is recorded after it.
	a1 := assignment("ASG-1", "INC-A", "U1", dispatch.AssignOffered, at(10*time.Second))
	a2 := assignment("ASG-2", "INC-A", "U2", dispatch.AssignOffered, at(30*time.Second))
	a3 := assignment("ASG-3", "INC-A", "U3", dispatch.AssignOffered, at(40*time.Second))
	must(t, create(t, s, a1))
	must(t, create(t, s, a2))
	must(t, create(t, s, a3))
	a1.Status, a1.UpdatedAt = dispatch.AssignDeclined, at(20*time.Second)
	must(t, update(t, s, a1))
	a2.Status, a2.UpdatedAt, a2.AcceptedAt = dispatch.AssignAccepted, at(50*time.Second), at(50*time.Second)
	must(t, update(t, s, a2))
	a3.Status, a3.UpdatedAt, a3.AcceptedAt = dispatch.AssignAccepted, at(55*time.Second), at(55*time.Second)
	must(t, update(t, s, a3))
	a2.Status, a2.UpdatedAt = dispatch.AssignCompleted, at(50*time.Minute)
	must(t, update(t, s, a2))
	gotA, err := s.Assignment(ctx, "ASG-2")
	must(t, err)
	same(t, gotA, a2)
	as, err := s.Assignments(ctx, "INC-A")
	must(t, err)
	same(t, as, []*dispatch.Assignment{a1, a2, a3})

	tr := func(unit, inc string, from, to dispatch.UnitStatus, d time.Duration) dispatch.Transition {
		return dispatch.Transition{Unit: unit, Incident: inc, From: from, To: to, At: at(d), Source: dispatch.SourceTerminal}
	}
	must(t, s.Apply(ctx, dispatch.Change{Transitions: []dispatch.Transition{
		tr("U2", "INC-A", dispatch.Dispatched, dispatch.EnRoute, 70*time.Second),
		tr("U3", "INC-A", dispatch.Dispatched, dispatch.EnRoute, 65*time.Second),
		tr("U2", "INC-A", dispatch.EnRoute, dispatch.OnScene, 6*time.Minute),
		tr("U2", "INC-A", dispatch.OnScene, dispatch.Transporting, 15*time.Minute),
		tr("U2", "INC-A", dispatch.Transporting, dispatch.AtHospital, 30*time.Minute),
		tr("U3", "INC-A", dispatch.EnRoute, dispatch.OnScene, 7*time.Minute),
		tr("U2", "INC-A", dispatch.AtHospital, dispatch.Available, 50*time.Minute),
		tr("N01", "INC-B", dispatch.Dispatched, dispatch.OnScene, 9*time.Minute),
		tr("U9", "INC-E", dispatch.Dispatched, dispatch.AtHospital, 3*time.Hour),
	}}))
	closed := *incs[0]
	closed.Status, closed.ClosedAt, closed.UpdatedAt, closed.Version = dispatch.IncidentClosed, at(50*time.Minute), at(50*time.Minute), 2
	must(t, s.Apply(ctx, dispatch.Change{Incident: &closed}))
	cancelled := *incs[2]
	cancelled.Status, cancelled.Outcome, cancelled.ClosedAt, cancelled.UpdatedAt, cancelled.Version = dispatch.IncidentCancelled, "false alarm", at(4*time.Minute), at(4*time.Minute), 2
	must(t, s.Apply(ctx, dispatch.Change{Incident: &cancelled}))
	got, err = s.Incident(ctx, "INC-C")
	must(t, err)
	same(t, got, &cancelled)

	recA := dispatch.CallRecord{
		Incident: "INC-A", Jurisdiction: "510322", Priority: 1, Status: dispatch.IncidentClosed, Satisfaction: dispatch.SatisfiedOwn,
		CreatedAt: at(0), Dispatched: at(10 * time.Second), Accepted: at(50 * time.Second), EnRoute: at(65 * time.Second),
		OnScene: at(6 * time.Minute), AtHospital: at(30 * time.Minute), ClosedAt: at(50 * time.Minute),
	}
	recB := dispatch.CallRecord{
		Incident: "INC-B", Jurisdiction: "510302", Priority: 2, Status: dispatch.IncidentOpen,
		Satisfaction: dispatch.SatisfiedLinked, SatisfactionReason: incs[1].SatisfactionReason,
		CreatedAt: at(time.Minute), OnScene: at(9 * time.Minute),
	}
	recC := dispatch.CallRecord{
		Incident: "INC-C", Jurisdiction: "510322", Priority: 1, Status: dispatch.IncidentCancelled,
		Satisfaction: dispatch.Unsatisfied, SatisfactionReason: incs[2].SatisfactionReason,
		CreatedAt: at(2 * time.Minute), ClosedAt: at(4 * time.Minute),
	}
	recD := dispatch.CallRecord{Incident: "INC-D", Jurisdiction: "510322", Priority: 1, Status: dispatch.IncidentOpen, CreatedAt: at(3 * time.Minute)}
	tests := []struct {
		name string
		f    dispatch.KPIFilter
		want []dispatch.CallRecord
	}{
		{"the hour", dispatch.KPIFilter{From: at(0), To: at(time.Hour)}, []dispatch.CallRecord{recA, recB, recC, recD}},
		{"from is inside", dispatch.KPIFilter{From: at(time.Minute), To: at(time.Hour)}, []dispatch.CallRecord{recB, recC, recD}},
		{"to is outside", dispatch.KPIFilter{From: at(0), To: at(time.Minute)}, []dispatch.CallRecord{recA}},
		{"one jurisdiction", dispatch.KPIFilter{From: at(0), To: at(time.Hour), Jurisdictions: []string{"510302"}}, []dispatch.CallRecord{recB}},
		{"two jurisdictions", dispatch.KPIFilter{From: at(0), To: at(time.Hour), Jurisdictions: []string{"510322", "510302"}}, []dispatch.CallRecord{recA, recB, recC, recD}},
		{"a jurisdiction without calls", dispatch.KPIFilter{From: at(0), To: at(time.Hour), Jurisdictions: []string{"510311"}}, nil},
		{"an empty period", dispatch.KPIFilter{From: at(time.Hour), To: at(time.Hour)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.CallRecords(ctx, tt.f)
			must(t, err)
			same(t, got, tt.want)
		})
	}
}
