package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/geo"
)

func incident(id string, created time.Time, status dispatch.IncidentStatus) *dispatch.Incident {
	return &dispatch.Incident{
		ID: id, Location: dispatch.LatLon{Lat: 29.180123456789, Lon: 104.970987654321},
		Address: "新华路 12号, Fushun", Priority: 1, Category: dispatch.CatChestPain,
		Jurisdiction: "510322", Zone: geo.Urban, RadiusM: 5000, Status: status,
		Version: 1, CreatedAt: created, UpdatedAt: created,
	}
}

func assignment(id, inc, unit string, status dispatch.AssignmentStatus, created time.Time) *dispatch.Assignment {
	return &dispatch.Assignment{ID: id, Incident: inc, Unit: unit, Status: status, By: "dispatcher:li", Version: 1, CreatedAt: created, UpdatedAt: created}
}

// create stores the new assignment a on its own.
func create(t testing.TB, s dispatch.Store, a *dispatch.Assignment) error {
	t.Helper()
	return s.Apply(t.Context(), dispatch.Change{Assignments: []*dispatch.Assignment{a}})
}

// update stores a changed assignment a on its own, one version on.
func update(t testing.TB, s dispatch.Store, a *dispatch.Assignment) error {
	t.Helper()
	a.Version++
	err := s.Apply(t.Context(), dispatch.Change{Assignments: []*dispatch.Assignment{a}})
	if err != nil {
		a.Version--
	}
	return err
}

func testIncidents(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("CRUD", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		want := incident("INC-1", at(0), dispatch.IncidentOpen)
		want.ExternalID, want.Source = "call-77", "cad"
		got, created, err := s.CreateIncident(ctx, want)
		must(t, err)
		if !created {
			t.Fatal("created = false for a new incident")
		}
		same(t, got, want)
		got, err = s.Incident(ctx, "INC-1")
		must(t, err)
		same(t, got, want)

		want.Status, want.UpdatedAt, want.ClosedAt = dispatch.IncidentClosed, at(time.Hour), at(time.Hour)
		want.Priority, want.Address, want.RadiusM, want.Outcome, want.Version = 2, "other address", 10000, "transported", 2
		must(t, s.Apply(ctx, dispatch.Change{Incident: want}))
		got, err = s.Incident(ctx, "INC-1")
		must(t, err)
		same(t, got, want)
		if got == want {
			t.Fatal("the store returned the caller's pointer")
		}
		got.Address = "changed by the caller"
		again, err := s.Incident(ctx, "INC-1")
		must(t, err)
		same(t, again, want)

		_, _, err = s.CreateIncident(ctx, incident("INC-1", at(time.Minute), dispatch.IncidentOpen))
		wantCode(t, err, dispatch.CodeConflict)

		// A change made from version 1 again (another server decided from
		// the same state) is refused, and nothing of it is kept.
		stale := *want
		stale.Status, stale.Address = dispatch.IncidentCancelled, "stale"
		wantCode(t, s.Apply(ctx, dispatch.Change{Incident: &stale}), dispatch.CodeConflict)
		got, err = s.Incident(ctx, "INC-1")
		must(t, err)
		same(t, got, want)
	})

	t.Run("FilterNewestFirstLimit", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		all := []*dispatch.Incident{
			incident("INC-A", at(1*time.Minute), dispatch.IncidentOpen),
			incident("INC-B", at(3*time.Minute), dispatch.IncidentClosed),
			incident("INC-C", at(2*time.Minute), dispatch.IncidentOpen),
			incident("INC-D", at(5*time.Minute), dispatch.IncidentAssigned),
			incident("INC-E", at(4*time.Minute), dispatch.IncidentOpen),
			incident("INC-F", at(4*time.Minute), dispatch.IncidentOpen), // same time as E: by id
		}
		for _, inc := range all {
			_, _, err := s.CreateIncident(ctx, inc)
			must(t, err)
		}
		tests := []struct {
			name string
			f    dispatch.IncidentFilter
			want []string
		}{
			{"all", dispatch.IncidentFilter{}, []string{"INC-D", "INC-E", "INC-F", "INC-B", "INC-C", "INC-A"}},
			{"open", dispatch.IncidentFilter{Status: dispatch.IncidentOpen}, []string{"INC-E", "INC-F", "INC-C", "INC-A"}},
			{"open limit 2", dispatch.IncidentFilter{Status: dispatch.IncidentOpen, Limit: 2}, []string{"INC-E", "INC-F"}},
			{"limit 1", dispatch.IncidentFilter{Limit: 1}, []string{"INC-D"}},
			{"limit above count", dispatch.IncidentFilter{Limit: 100}, []string{"INC-D", "INC-E", "INC-F", "INC-B", "INC-C", "INC-A"}},
			{"closed", dispatch.IncidentFilter{Status: dispatch.IncidentClosed}, []string{"INC-B"}},
			{"cancelled", dispatch.IncidentFilter{Status: dispatch.IncidentCancelled}, nil},
			{"scope is the service's", dispatch.IncidentFilter{Status: dispatch.IncidentAssigned, Scope: "999999"}, []string{"INC-D"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.Incidents(ctx, tt.f)
				must(t, err)
				var ids []string
				for _, inc := range got {
					ids = append(ids, inc.ID)
				}
				same(t, ids, tt.want)
			})
		}
		got, err := s.Incidents(ctx, dispatch.IncidentFilter{Limit: 1})
		must(t, err)
		same(t, got, []*dispatch.Incident{all[3]})
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		first := incident("INC-1", at(0), dispatch.IncidentOpen)
		first.ExternalID, first.Source = "ext-1", "city"
		_, _, err := s.CreateIncident(ctx, first)
		must(t, err)
		tests := []struct {
			name        string
			id, ext     string
			source      string
			wantID      string
			wantCreated bool
		}{
			{"same source and external id", "INC-2", "ext-1", "city", "INC-1", false},
			{"other source", "INC-3", "ext-1", "county", "INC-3", true},
			{"other external id", "INC-4", "ext-2", "city", "INC-4", true},
			{"no external id", "INC-5", "", "city", "INC-5", true},
			{"no external id again", "INC-6", "", "city", "INC-6", true},
			{"empty source", "INC-7", "ext-1", "", "INC-7", true},
			{"empty source again", "INC-8", "ext-1", "", "INC-7", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				inc := incident(tt.id, at(time.Minute), dispatch.IncidentOpen)
				inc.ExternalID, inc.Source = tt.ext, tt.source
				got, created, err := s.CreateIncident(ctx, inc)
				must(t, err)
				if got.ID != tt.wantID || created != tt.wantCreated {
					t.Fatalf("got %s created %v, want %s created %v", got.ID, created, tt.wantID, tt.wantCreated)
				}
			})
		}
		if _, err := s.Incident(ctx, "INC-2"); dispatch.ErrorCode(err) != dispatch.CodeNotFound {
			t.Fatalf("the duplicate call was stored: %v", err)
		}
		got, _, err := s.CreateIncident(ctx, &dispatch.Incident{ID: "INC-9", ExternalID: "ext-1", Source: "city"})
		must(t, err)
		same(t, got, first) // the stored incident, not the one offered
	})

	t.Run("IdempotentConcurrent", func(t *testing.T) {
		s := open(t).Store
		ctx := t.Context()
		const n = 16
		var (
			wg      sync.WaitGroup
			ids     [n]string
			created [n]bool
			errs    [n]error
		)
		for i := range n {
			wg.Go(func() {
				inc := incident(fmt.Sprintf("INC-%02d", i), at(0), dispatch.IncidentOpen)
				inc.ExternalID, inc.Source = "retry-storm", "city"
				got, c, err := s.CreateIncident(ctx, inc)
				if err == nil {
					ids[i] = got.ID
				}
				created[i], errs[i] = c, err
			})
		}
		wg.Wait()
		winners := 0
		for i := range n {
			must(t, errs[i])
			if created[i] {
				winners++
			}
			if ids[i] != ids[0] {
				t.Fatalf("caller %d got %s, caller 0 got %s", i, ids[i], ids[0])
			}
		}
		if winners != 1 {
			t.Fatalf("%d callers created the incident, want 1", winners)
		}
		all, err := s.Incidents(ctx, dispatch.IncidentFilter{})
		must(t, err)
		if len(all) != 1 {
			t.Fatalf("%d incidents stored, want 1", len(all))
		}
	})
}

func testAssignments(t *testing.T, open func(t *testing.T) Stores) {
	setup := func(t *testing.T, incidents ...string) dispatch.Store {
		t.Helper()
		s := open(t).Store
		for i, id := range incidents {
			_, _, err := s.CreateIncident(t.Context(), incident(id, at(time.Duration(i)*time.Second), dispatch.IncidentOpen))
			must(t, err)
		}
		return s
	}

	t.Run("CRUD", func(t *testing.T) {
		s := setup(t, "INC-1", "INC-2")
		ctx := t.Context()
		a1 := assignment("ASG-1", "INC-1", "U1", dispatch.AssignOffered, at(time.Second))
		a2 := assignment("ASG-2", "INC-2", "U2", dispatch.AssignOffered, at(2*time.Second))
		a3 := assignment("ASG-0", "INC-1", "U3", dispatch.AssignAccepted, at(3*time.Second))
		for _, a := range []*dispatch.Assignment{a1, a2, a3} {
			must(t, create(t, s, a))
		}
		got, err := s.Assignment(ctx, "ASG-1")
		must(t, err)
		same(t, got, a1)

		a1.Status, a1.Reason, a1.UpdatedAt = dispatch.AssignDeclined, "crew at hospital", at(time.Minute)
		must(t, update(t, s, a1))
		got, err = s.Assignment(ctx, "ASG-1")
		must(t, err)
		same(t, got, a1)

		list, err := s.Assignments(ctx, "INC-1")
		must(t, err)
		same(t, list, []*dispatch.Assignment{a1, a3}) // oldest first
		list, err = s.Assignments(ctx, "INC-404")
		must(t, err)
		same(t, list, []*dispatch.Assignment(nil))

		active, err := s.ActiveAssignments(ctx)
		must(t, err)
		same(t, active, []*dispatch.Assignment{a3, a2}) // by id

		wantCode(t, create(t, s, assignment("ASG-2", "INC-1", "U9", dispatch.AssignOffered, at(0))), dispatch.CodeConflict)
		wantCode(t, create(t, s, assignment("ASG-9", "INC-404", "U9", dispatch.AssignOffered, at(0))), dispatch.CodeNotFound)

		// An update from a version that moved on is refused.
		stale := *a1
		stale.Status = dispatch.AssignAccepted // made from version 1, which is gone
		wantCode(t, s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{&stale}}), dispatch.CodeConflict)
		got, err = s.Assignment(ctx, "ASG-1")
		must(t, err)
		same(t, got, a1)
	})

	t.Run("OneActivePerUnit", func(t *testing.T) {
		s := setup(t, "INC-1", "INC-2", "INC-3")
		ctx := t.Context()
		first := assignment("ASG-1", "INC-1", "U1", dispatch.AssignOffered, at(0))
		must(t, create(t, s, first))
		steps := []struct {
			name string
			a    *dispatch.Assignment
			code string // "" for success
		}{
			{"offered unit", assignment("ASG-2", "INC-2", "U1", dispatch.AssignOffered, at(1)), dispatch.CodeConflict},
			{"offered unit, same incident", assignment("ASG-3", "INC-1", "U1", dispatch.AssignAccepted, at(1)), dispatch.CodeConflict},
			{"inactive record of the unit", assignment("ASG-4", "INC-2", "U1", dispatch.AssignDeclined, at(1)), ""},
			{"other unit", assignment("ASG-5", "INC-2", "U2", dispatch.AssignOffered, at(1)), ""},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				err := create(t, s, st.a)
				if st.code == "" {
					must(t, err)
					return
				}
				wantCode(t, err, st.code)
			})
		}

		// Accepting keeps the unit; completing frees it for the next call.
		first.Status = dispatch.AssignAccepted
		must(t, update(t, s, first))
		wantCode(t, create(t, s, assignment("ASG-6", "INC-3", "U1", dispatch.AssignOffered, at(2))), dispatch.CodeConflict)
		first.Status = dispatch.AssignCompleted
		must(t, update(t, s, first))
		next := assignment("ASG-7", "INC-3", "U1", dispatch.AssignOffered, at(3))
		must(t, create(t, s, next))

		// Reviving the completed one while ASG-7 holds the unit is a conflict too.
		first.Status = dispatch.AssignOffered
		wantCode(t, update(t, s, first), dispatch.CodeConflict)
		got, err := s.Assignment(ctx, "ASG-1")
		must(t, err)
		if got.Status != dispatch.AssignCompleted {
			t.Fatalf("rejected update was stored: status %s", got.Status)
		}

		active, err := s.ActiveAssignments(ctx)
		must(t, err)
		var ids []string
		for _, a := range active {
			ids = append(ids, a.ID)
		}
		same(t, ids, []string{"ASG-5", "ASG-7"})
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		const n = 16
		var incs []string
		for i := range n {
			incs = append(incs, fmt.Sprintf("INC-%02d", i))
		}
		s := setup(t, incs...)
		ctx := t.Context()
		for round := range 3 { // after each round the winner completes, and the unit is free again
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  [n]error
			)
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{assignment(fmt.Sprintf("ASG-%d-%02d", round, i), incs[i], "U1", dispatch.AssignOffered, at(time.Duration(round)*time.Minute))}})
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("round %d: callers %d and %d both assigned U1", round, winner, i)
					}
					winner = i
					continue
				}
				wantCode(t, err, dispatch.CodeConflict)
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody assigned U1", round)
			}
			active, err := s.ActiveAssignments(ctx)
			must(t, err)
			if len(active) != 1 || active[0].ID != fmt.Sprintf("ASG-%d-%02d", round, winner) {
				t.Fatalf("round %d: active %v, want the winner %d", round, active, winner)
			}
			active[0].Status = dispatch.AssignCompleted
			must(t, update(t, s, active[0]))
		}
	})
}

func testTransitions(t *testing.T, open func(t *testing.T) Stores) {
	s := open(t).Store
	ctx := t.Context()
	trs := []dispatch.Transition{
		{Unit: "U1", Incident: "INC-1", From: dispatch.Available, To: dispatch.Dispatched, At: at(0), Source: "system"},
		{Unit: "U2", Incident: "INC-2", From: dispatch.Available, To: dispatch.Dispatched, At: at(time.Second), Source: "dispatcher:li"},
		{Unit: "U1", Incident: "INC-1", From: dispatch.Dispatched, To: dispatch.EnRoute, At: at(2 * time.Second), Source: "terminal"},
		{Unit: "U3", From: dispatch.Available, To: dispatch.OutOfService, At: at(2 * time.Second), Source: "terminal"},
		// Appended later but earlier in time (a late terminal report): the
		// record keeps the order of appending.
		{Unit: "U1", Incident: "INC-1", From: dispatch.EnRoute, To: dispatch.OnScene, At: at(time.Second), Source: "terminal"},
	}
	for _, tr := range trs {
		must(t, s.Apply(ctx, dispatch.Change{Transitions: []dispatch.Transition{tr}}))
	}
	tests := []struct {
		incident string
		want     []dispatch.Transition
	}{
		{"INC-1", []dispatch.Transition{trs[0], trs[2], trs[4]}},
		{"INC-2", []dispatch.Transition{trs[1]}},
		{"INC-404", nil},
	}
	for _, tt := range tests {
		t.Run(tt.incident, func(t *testing.T) {
			got, err := s.Transitions(ctx, tt.incident)
			must(t, err)
			same(t, got, tt.want)
		})
	}
}

// testUnitRecords checks each unit's dispatch state: inserted at version
// 1, then changed only from the version it was read at.
func testUnitRecords(t *testing.T, open func(t *testing.T) Stores) {
	s := open(t).Store
	ctx := t.Context()
	got, err := s.UnitRecords(ctx)
	must(t, err)
	same(t, got, []dispatch.UnitRecord(nil))

	u1 := dispatch.UnitRecord{Unit: "U1", Status: dispatch.OutOfService, PressAt: at(time.Second), Version: 1, At: at(time.Second)}
	u2 := dispatch.UnitRecord{Unit: "U2", Status: dispatch.Dispatched, Incident: "INC-1", Assignment: "ASG-1", Version: 1, At: at(0)}
	must(t, s.Apply(ctx, dispatch.Change{Units: []dispatch.UnitRecord{u2, u1}}))
	got, err = s.UnitRecords(ctx)
	must(t, err)
	same(t, got, []dispatch.UnitRecord{u1, u2}) // by unit

	steps := []struct {
		name string
		r    dispatch.UnitRecord
		code string // "" for success
	}{
		{"insert of a unit that has a record", dispatch.UnitRecord{Unit: "U1", Status: dispatch.Available, Version: 1, At: at(2 * time.Second)}, dispatch.CodeConflict},
		{"update from the stored version", dispatch.UnitRecord{Unit: "U1", Status: dispatch.Available, PressAt: at(3 * time.Second), Version: 2, At: at(3 * time.Second)}, ""},
		{"update from that version again", dispatch.UnitRecord{Unit: "U1", Status: dispatch.OutOfService, Version: 2, At: at(4 * time.Second)}, dispatch.CodeConflict},
		{"update from a version ahead", dispatch.UnitRecord{Unit: "U1", Status: dispatch.OutOfService, Version: 9, At: at(4 * time.Second)}, dispatch.CodeConflict},
		{"update of a unit without a record", dispatch.UnitRecord{Unit: "U3", Status: dispatch.OutOfService, Version: 2, At: at(4 * time.Second)}, dispatch.CodeConflict},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := s.Apply(ctx, dispatch.Change{Units: []dispatch.UnitRecord{st.r}})
			if st.code == "" {
				must(t, err)
				got, err := s.UnitRecord(ctx, st.r.Unit)
				must(t, err)
				same(t, got, st.r)
				return
			}
			wantCode(t, err, st.code)
		})
	}
}

// testApplyAtomic checks that a refused change writes nothing, whichever
// part of it is refused, and that a whole decision (incident, assignment,
// unit, transition) is written together.
func testApplyAtomic(t *testing.T, open func(t *testing.T) Stores) {
	s := open(t).Store
	ctx := t.Context()
	inc := incident("INC-1", at(0), dispatch.IncidentOpen)
	_, _, err := s.CreateIncident(ctx, inc)
	must(t, err)
	busy := assignment("ASG-0", "INC-1", "U9", dispatch.AssignOffered, at(0))
	must(t, create(t, s, busy))

	decision := func(unit string, unitVersion int64) dispatch.Change {
		i := *inc
		i.Status, i.Version, i.UpdatedAt = dispatch.IncidentAssigned, inc.Version+1, at(time.Second)
		a := assignment("ASG-"+unit, "INC-1", unit, dispatch.AssignOffered, at(time.Second))
		return dispatch.Change{
			Incident:    &i,
			Assignments: []*dispatch.Assignment{a},
			Units:       []dispatch.UnitRecord{{Unit: unit, Status: dispatch.Dispatched, Incident: "INC-1", Assignment: a.ID, Version: unitVersion, At: at(time.Second)}},
			Transitions: []dispatch.Transition{{Unit: unit, Incident: "INC-1", From: dispatch.Available, To: dispatch.Dispatched, At: at(time.Second), Source: "dispatcher:li"}},
		}
	}
	refused := []struct {
		name string
		c    dispatch.Change
		code string
	}{
		{"unit already assigned", decision("U9", 1), dispatch.CodeConflict},
		{"unit version stale", decision("U1", 2), dispatch.CodeConflict},
		{"incident version stale", func() dispatch.Change { c := decision("U1", 1); c.Incident.Version = 5; return c }(), dispatch.CodeConflict},
		{"changed assignment missing", func() dispatch.Change {
			c := decision("U1", 1)
			ghost := assignment("ASG-404", "INC-1", "U7", dispatch.AssignCompleted, at(0))
			ghost.Version = 2
			c.Assignments = append(c.Assignments, ghost)
			return c
		}(), dispatch.CodeNotFound},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.Apply(ctx, tt.c), tt.code)
			got, err := s.Incident(ctx, "INC-1")
			must(t, err)
			same(t, got, inc)
			as, err := s.Assignments(ctx, "INC-1")
			must(t, err)
			same(t, as, []*dispatch.Assignment{busy})
			recs, err := s.UnitRecords(ctx)
			must(t, err)
			same(t, recs, []dispatch.UnitRecord(nil))
			trs, err := s.Transitions(ctx, "INC-1")
			must(t, err)
			same(t, trs, []dispatch.Transition(nil))
		})
	}
	t.Run("whole decision", func(t *testing.T) {
		c := decision("U1", 1)
		must(t, s.Apply(ctx, c))
		got, err := s.Incident(ctx, "INC-1")
		must(t, err)
		same(t, got, c.Incident)
		a, err := s.Assignment(ctx, "ASG-U1")
		must(t, err)
		same(t, a, c.Assignments[0])
		r, err := s.UnitRecord(ctx, "U1")
		must(t, err)
		same(t, r, c.Units[0])
		trs, err := s.Transitions(ctx, "INC-1")
		must(t, err)
		same(t, trs, c.Transitions)
	})
	t.Run("free and reassign in one change", func(t *testing.T) {
		// The unit's old assignment completes and a new one is made in the
		// same change: the store must not see two active ones.
		inc2 := incident("INC-2", at(time.Minute), dispatch.IncidentOpen)
		_, _, err := s.CreateIncident(ctx, inc2)
		must(t, err)
		done := *busy
		done.Status, done.Version = dispatch.AssignCompleted, busy.Version+1
		again := assignment("ASG-9b", "INC-2", "U9", dispatch.AssignOffered, at(time.Minute))
		must(t, s.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{again, &done}}))
		active, err := s.ActiveAssignments(ctx)
		must(t, err)
		var ids []string
		for _, a := range active {
			ids = append(ids, a.ID)
		}
		same(t, ids, []string{"ASG-9b", "ASG-U1"})
	})
}

// testNotFound checks the code of every lookup of something missing.
func testNotFound(t *testing.T, open func(t *testing.T) Stores) {
	st := open(t)
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"Incident", func() error { _, err := st.Store.Incident(ctx, "INC-404"); return err }},
		{"update of a missing incident", func() error {
			inc := incident("INC-404", at(0), dispatch.IncidentOpen)
			inc.Version = 2
			return st.Store.Apply(ctx, dispatch.Change{Incident: inc})
		}},
		{"Assignment", func() error { _, err := st.Store.Assignment(ctx, "ASG-404"); return err }},
		{"update of a missing assignment", func() error {
			a := assignment("ASG-404", "INC-404", "U1", dispatch.AssignCompleted, at(0))
			a.Version = 2
			return st.Store.Apply(ctx, dispatch.Change{Assignments: []*dispatch.Assignment{a}})
		}},
		{"assignment of a missing incident", func() error {
			return create(t, st.Store, assignment("ASG-1", "INC-404", "U1", dispatch.AssignOffered, at(0)))
		}},
		{"UnitRecord", func() error { _, err := st.Store.UnitRecord(ctx, "U404"); return err }},
		{"User", func() error { _, err := st.Users.User(ctx, "nobody"); return err }},
		{"UpdateUser", func() error { return st.Users.UpdateUser(ctx, user("nobody", dispatch.RoleAdmin, "")) }},
		{"UnitCredential", func() error { _, err := st.Users.UnitCredential(ctx, "U404"); return err }},
		{"Session", func() error { _, err := st.Users.Session(ctx, "no-such-hash"); return err }},
		{"DeleteSession", func() error { return st.Users.DeleteSession(ctx, "no-such-hash") }},
		{"CreateSession of a missing user", func() error {
			return st.Users.CreateSession(ctx, dispatch.Session{TokenHash: "h", Username: "nobody", CreatedAt: at(0), ExpiresAt: at(time.Hour)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), dispatch.CodeNotFound) })
	}
}
