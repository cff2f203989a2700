package storetest

import (
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

func command(id, unit, typ, assignment string, created time.Time) dispatch.OutboxCommand {
	return dispatch.OutboxCommand{
		ID: id, Unit: unit, State: dispatch.CommandPending, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour),
		Command: telemetry.Command{Type: typ, Assignment: assignment, Reason: "原因 " + id},
	}
}

func testOutbox(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("WrittenWithTheDecision", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		_, _, err := s.CreateIncident(ctx, incident("INC-1", at(0), dispatch.IncidentOpen))
		must(t, err)
		a := assignment("ASG-1", "INC-1", "U1", dispatch.AssignOffered, at(0))
		assign := command("CMD-1", "U1", telemetry.CommandAssign, "ASG-1", at(0))
		assign.Command.Incident = []byte(`{"id":"INC-1","priority":1}`)
		must(t, s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{a}, Commands: []dispatch.OutboxCommand{assign}}))

		// A change refused for a stale row keeps none of its commands.
		stale := *a
		stale.Version, stale.Status = 3, dispatch.AssignCancelled // made from version 2; 1 is stored
		wantCode(t, s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{&stale},
			Commands: []dispatch.OutboxCommand{command("CMD-lost", "U1", telemetry.CommandCancel, "ASG-1", at(time.Minute))}}), dispatch.CodeConflict)
		// A taken command id refuses the whole change.
		b := assignment("ASG-2", "INC-1", "U2", dispatch.AssignOffered, at(time.Minute))
		wantCode(t, s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{b}, Commands: []dispatch.OutboxCommand{command("CMD-1", "U2", telemetry.CommandAssign, "ASG-2", at(time.Minute))}}), dispatch.CodeConflict)
		if _, err := s.Assignment(ctx, "ASG-2"); dispatch.ErrorCode(err) != dispatch.CodeNotFound {
			t.Fatalf("assignment of a refused change stored: %v", err)
		}

		got, err := s.PendingCommands(ctx, "")
		must(t, err)
		if len(got) != 1 || got[0].Seq <= 0 {
			t.Fatalf("pending %+v, want the one command with a seq", got)
		}
		assign.Seq = got[0].Seq
		same(t, got[0], assign)
	})

	t.Run("PendingInOrderSettledOnce", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		// Same creation time: the order of writing decides.
		cmds := []dispatch.OutboxCommand{
			command("CMD-b", "U1", telemetry.CommandCancel, "ASG-1", at(0)),
			command("CMD-a", "U2", telemetry.CommandReject, "", at(0)),
			command("CMD-c", "U1", telemetry.CommandCancel, "ASG-2", at(0)),
		}
		for _, c := range cmds {
			must(t, s.Apply(ctx, dispatch.Change{Commands: []dispatch.OutboxCommand{c}}))
		}
		ids := func(unit string) []string {
			t.Helper()
			got, err := s.PendingCommands(ctx, unit)
			must(t, err)
			var out []string
			for i, c := range got {
				if i > 0 && c.Seq <= got[i-1].Seq {
					t.Fatalf("seq not increasing: %+v", got)
				}
				out = append(out, c.ID)
			}
			return out
		}
		same(t, ids(""), []string{"CMD-b", "CMD-a", "CMD-c"})
		same(t, ids("U1"), []string{"CMD-b", "CMD-c"})
		same(t, ids("U9"), []string(nil))

		// An attempt that did not reach the terminal: still pending.
		all, err := s.PendingCommands(ctx, "U1")
		must(t, err)
		b := all[0]
		b.Attempts = 1
		must(t, s.UpdateCommand(ctx, b))
		got, err := s.PendingCommands(ctx, "U1")
		must(t, err)
		same(t, got[0], b)

		// Delivered: gone from the pending ones, and settled once.
		b.Attempts, b.State, b.SentAt, b.SettledAt = 2, dispatch.CommandDelivered, at(time.Minute), at(time.Minute)
		must(t, s.UpdateCommand(ctx, b))
		same(t, ids("U1"), []string{"CMD-c"})
		again := b
		again.State, again.SettledAt = dispatch.CommandExpired, at(time.Hour)
		wantCode(t, s.UpdateCommand(ctx, again), dispatch.CodeConflict)
		wantCode(t, s.UpdateCommand(ctx, command("CMD-none", "U1", telemetry.CommandCancel, "", at(0))), dispatch.CodeNotFound)
	})
}

func testHospitalStates(t *testing.T, open func(t *testing.T) Stores) {
	s := open(t).Store
	ctx := t.Context()
	got, err := s.HospitalStates(ctx)
	must(t, err)
	same(t, got, []dispatch.HospitalState(nil))
	h2 := dispatch.HospitalState{Hospital: "H2", Diversion: true, Until: at(2 * time.Hour), Reason: "CT 故障", By: "li", UpdatedAt: at(0)}
	h1 := dispatch.HospitalState{Hospital: "H1", Diversion: true, Reason: "full", By: "li", UpdatedAt: at(0)} // until lifted
	must(t, s.SetHospitalState(ctx, h2))
	must(t, s.SetHospitalState(ctx, h1))
	got, err = s.HospitalStates(ctx)
	must(t, err)
	same(t, got, []dispatch.HospitalState{h1, h2})
	lifted := dispatch.HospitalState{Hospital: "H2", By: "wang", UpdatedAt: at(time.Hour)}
	must(t, s.SetHospitalState(ctx, lifted))
	got, err = s.HospitalStates(ctx)
	must(t, err)
	same(t, got, []dispatch.HospitalState{h1, lifted})
}
