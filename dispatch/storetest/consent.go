package storetest

import (
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// consents returns the consent record of a store: the Store keeps it,
// since its requests are written with Store.Apply.
func consents(t *testing.T, st Stores) dispatch.Consents {
	t.Helper()
	cs, ok := st.Store.(dispatch.Consents)
	if !ok {
		t.Fatalf("%T does not implement dispatch.Consents", st.Store)
	}
	return cs
}

func consent(id, inc, unit string, created time.Time) *dispatch.Consent {
	return &dispatch.Consent{
		ID: id, Status: dispatch.ConsentPending, Incident: inc, Unit: unit, From: "510302", To: "510322",
		Priority: 1, Category: dispatch.CatStroke, Location: dispatch.LatLon{Lat: 29.180123456789, Lon: 104.970987654321},
		RequestedBy: "li", Version: 1, CreatedAt: created, ExpiresAt: created.Add(time.Minute),
	}
}

// answered returns c, one version on, ended with status.
func answered(c *dispatch.Consent, status dispatch.ConsentStatus, at time.Time) *dispatch.Consent {
	e := *c
	e.Version++
	e.Status, e.DecidedBy, e.Reason, e.DecidedAt = status, "wang", "crew needed at home", at
	return &e
}

func testConsents(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("AskAndAnswer", func(t *testing.T) {
		st := open(t)
		s, cs := st.Store, consents(t, st)
		ctx := t.Context()
		for _, id := range []string{"INC-1", "INC-2"} {
			_, _, err := s.CreateIncident(ctx, incident(id, at(0), dispatch.IncidentOpen))
			must(t, err)
		}
		ask := func(c *dispatch.Consent) error {
			return s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{c}})
		}

		c1 := consent("CNS-1", "INC-1", "N01", at(time.Second))
		must(t, ask(c1))
		got, err := cs.Consent(ctx, "CNS-1")
		must(t, err)
		same(t, got, c1)
		wantCode(t, ask(c1), dispatch.CodeConflict)
		wantCode(t, ask(consent("CNS-X", "INC-404", "N09", at(0))), dispatch.CodeNotFound)
		// One pending request per unit.
		wantCode(t, ask(consent("CNS-2", "INC-2", "N01", at(2*time.Second))), dispatch.CodeConflict)

		// An answer is a compare-and-set: of two answers made from the
		// same version, one stands.
		declined := answered(c1, dispatch.ConsentDeclined, at(3*time.Second))
		accepted := answered(c1, dispatch.ConsentAccepted, at(3*time.Second))
		must(t, s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{declined}}))
		wantCode(t, s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{accepted}}), dispatch.CodeConflict)
		got, err = cs.Consent(ctx, "CNS-1")
		must(t, err)
		same(t, got, declined)
		ghost := answered(consent("CNS-404", "INC-1", "N08", at(0)), dispatch.ConsentDeclined, at(0))
		wantCode(t, s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{ghost}}), dispatch.CodeNotFound)

		// The unit is free to be asked for again.
		c2 := consent("CNS-2", "INC-2", "N01", at(4*time.Second))
		must(t, ask(c2))
		// Ending a request and asking another for the same unit in one
		// change passes the one-pending rule.
		c3 := consent("CNS-3", "INC-1", "N01", at(5*time.Second))
		void := answered(c2, dispatch.ConsentVoid, at(5*time.Second))
		must(t, s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{c3, void}}))

		list, err := cs.Consents(ctx, dispatch.ConsentFilter{})
		must(t, err)
		same(t, list, []*dispatch.Consent{c3, void, declined})
		list, err = cs.Consents(ctx, dispatch.ConsentFilter{Status: dispatch.ConsentPending})
		must(t, err)
		same(t, list, []*dispatch.Consent{c3})
		list, err = cs.Consents(ctx, dispatch.ConsentFilter{Incident: "INC-1"})
		must(t, err)
		same(t, list, []*dispatch.Consent{c3, declined})
		list, err = cs.Consents(ctx, dispatch.ConsentFilter{Incident: "INC-1", Status: dispatch.ConsentDeclined})
		must(t, err)
		same(t, list, []*dispatch.Consent{declined})
		list, err = cs.Consents(ctx, dispatch.ConsentFilter{Limit: 2})
		must(t, err)
		same(t, list, []*dispatch.Consent{c3, void})
		list, err = cs.Consents(ctx, dispatch.ConsentFilter{Incident: "INC-404"})
		must(t, err)
		same(t, list, []*dispatch.Consent(nil))
		_, err = cs.Consent(ctx, "CNS-404")
		wantCode(t, err, dispatch.CodeNotFound)
	})

	t.Run("AcceptWithAssignment", func(t *testing.T) {
		// Accepting writes the consent and the assignment together: when
		// the assignment is refused, the request stays pending.
		st := open(t)
		s, cs := st.Store, consents(t, st)
		ctx := t.Context()
		inc := incident("INC-1", at(0), dispatch.IncidentOpen)
		_, _, err := s.CreateIncident(ctx, inc)
		must(t, err)
		c := consent("CNS-1", "INC-1", "N01", at(time.Second))
		must(t, s.Apply(ctx, dispatch.Change{Consents: []*dispatch.Consent{c}}))
		busy := assignment("ASG-0", "INC-1", "N01", dispatch.AssignOffered, at(time.Second))
		must(t, create(t, s, busy))

		accept := func(asg string) dispatch.Change {
			i := *inc
			i.Status, i.Version, i.UpdatedAt = dispatch.IncidentAssigned, inc.Version+1, at(2*time.Second)
			a := assignment(asg, "INC-1", "N01", dispatch.AssignOffered, at(2*time.Second))
			acc := answered(c, dispatch.ConsentAccepted, at(2*time.Second))
			acc.Assignment = a.ID
			return dispatch.Change{Incident: &i, Assignments: []*dispatch.Assignment{a}, Consents: []*dispatch.Consent{acc}}
		}
		wantCode(t, s.Apply(ctx, accept("ASG-1")), dispatch.CodeConflict) // N01 holds ASG-0
		got, err := cs.Consent(ctx, "CNS-1")
		must(t, err)
		same(t, got, c)
		as, err := s.Assignments(ctx, "INC-1")
		must(t, err)
		same(t, as, []*dispatch.Assignment{busy})

		done := *busy
		done.Status = dispatch.AssignCompleted
		must(t, update(t, s, &done))
		ch := accept("ASG-2")
		must(t, s.Apply(ctx, ch))
		got, err = cs.Consent(ctx, "CNS-1")
		must(t, err)
		same(t, got, ch.Consents[0])
		a, err := s.Assignment(ctx, "ASG-2")
		must(t, err)
		same(t, a, ch.Assignments[0])
	})

	t.Run("Policies", func(t *testing.T) {
		cs := consents(t, open(t))
		ctx := t.Context()
		got, err := cs.ConsentPolicies(ctx)
		must(t, err)
		same(t, got, []dispatch.PolicyRecord(nil))
		b := dispatch.PolicyRecord{Jurisdiction: "510302", Consent: dispatch.ConsentAuto, By: "wang", At: at(time.Second)}
		a := dispatch.PolicyRecord{Jurisdiction: "510322", Consent: dispatch.ConsentAuto, By: "li", At: at(2 * time.Second)}
		must(t, cs.SetConsentPolicy(ctx, b))
		must(t, cs.SetConsentPolicy(ctx, a))
		a.Consent, a.By, a.At = dispatch.ConsentAsk, "zhao", at(3*time.Second)
		must(t, cs.SetConsentPolicy(ctx, a))
		got, err = cs.ConsentPolicies(ctx)
		must(t, err)
		same(t, got, []dispatch.PolicyRecord{b, a})
	})
}
