package dispatch

import (
	"context"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// IncidentFilter selects incidents. Zero fields do not filter.
type IncidentFilter struct {
	Status IncidentStatus
	// Scope keeps incidents of this jurisdiction or beneath it; applied by
	// the service, which knows the hierarchy.
	Scope string
	Limit int
}

// Store is the durable record of calls: incidents, assignments, each
// unit's dispatch state and every unit status transition.
// Implementations: dispatch/memory (in process) and the durable stores.
//
// Every decision is written with Apply, in one transaction, and every row
// it changes is a compare-and-set on a version, so that several servers
// sharing one database can never both win a race: never assign one unit
// twice, never both move one assignment.
type Store interface {
	// CreateIncident stores inc (Version 1). When an incident with the
	// same source and external id exists it returns that one and created
	// false.
	CreateIncident(ctx context.Context, inc *Incident) (got *Incident, created bool, err error)
	Incident(ctx context.Context, id string) (*Incident, error)
	Incidents(ctx context.Context, f IncidentFilter) ([]*Incident, error)

	Assignment(ctx context.Context, id string) (*Assignment, error)
	// Assignments returns the assignments of an incident, oldest first.
	Assignments(ctx context.Context, incident string) ([]*Assignment, error)
	// ActiveAssignments returns every assignment still holding its unit, by id.
	ActiveAssignments(ctx context.Context) ([]*Assignment, error)

	// Transitions returns the transitions recorded against an incident,
	// in the order they were appended.
	Transitions(ctx context.Context, incident string) ([]Transition, error)
	// UnitRecords returns the dispatch state of every unit that has one,
	// by unit, so that a restart restores every unit's status (an
	// out-of-service unit must not come back available).
	UnitRecords(ctx context.Context) ([]UnitRecord, error)
	// UnitRecord returns the dispatch state of one unit; not found when it
	// has none yet (it has been available since it was registered).
	UnitRecord(ctx context.Context, unit string) (UnitRecord, error)

	// CallRecords returns the calls f selects, oldest first (by id among
	// equals), each with the times of its stages as the record holds
	// them: what the KPI ledger is computed from.
	CallRecords(ctx context.Context, f KPIFilter) ([]CallRecord, error)

	// Apply writes c in one transaction, all of it or nothing. It fails
	// with a conflict error when a row's stored version is not the one c
	// was decided from, or when a unit would hold two active assignments;
	// with not found when c updates a row that does not exist.
	Apply(ctx context.Context, c Change) error

	Outbox
	HospitalStates
}

// UnitRecord is a unit's dispatch state as the record keeps it: its
// status, the call and assignment it works, and when its crew last
// pressed a status (a press older than that one is a redelivery and is
// ignored).
type UnitRecord struct {
	Unit       string
	Status     UnitStatus
	Incident   string
	Assignment string
	PressAt    time.Time // the last crew status press applied; zero when none
	Version    int64
	At         time.Time // when the status last changed
}

// Change is one dispatch decision as the record keeps it: an incident's
// new state, new and changed assignments, units' new states, and the
// transitions that explain them. Store.Apply writes all of it or none.
//
// Every row is versioned. A change carries each row as it must be after
// the change, with Version one more than the version it was read at (1
// for a row that does not exist yet: a new assignment, a unit's first
// record); Apply refuses the whole change with a conflict when a stored
// version is not Version-1.
type Change struct {
	Incident    *Incident     // updated; nil when the change leaves the incident alone
	Assignments []*Assignment // inserted (Version 1) or updated
	Units       []UnitRecord  // inserted (Version 1) or updated
	Transitions []Transition  // appended
	// Commands are the commands to terminals the decision causes,
	// inserted into the outbox (pending).
	Commands []OutboxCommand
	// Consents are inserted (Version 1) or updated: a request asked, or
	// answered in the transaction of the assignment it makes. A unit has
	// at most one pending request; a second is a conflict.
	Consents []*Consent
}

// Tracks reads the position history that telemetry records
// (telemetry.History implements it).
type Tracks interface {
	// Track reads one page of a unit's track, streaming it to fn (see
	// telemetry.History).
	Track(ctx context.Context, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (more bool, err error)
	// Latest returns each unit's newest fix, to rebuild the picture after a restart.
	Latest(ctx context.Context) ([]telemetry.Fix, error)
}
