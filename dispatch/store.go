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

// Store is the durable record of calls: incidents, assignments and every
// unit status transition. Implementations: dispatch/memory (in process)
// and the durable stores. Assignment exclusivity is the store's job, so
// that several servers sharing one database can never assign a unit twice.
type Store interface {
	// CreateIncident stores inc. When an incident with the same source and
	// external id exists it returns that one and created false.
	CreateIncident(ctx context.Context, inc *Incident) (got *Incident, created bool, err error)
	Incident(ctx context.Context, id string) (*Incident, error)
	Incidents(ctx context.Context, f IncidentFilter) ([]*Incident, error)
	UpdateIncident(ctx context.Context, inc *Incident) error

	// CreateAssignment stores a, failing with a conflict error when the
	// unit already holds an active assignment.
	CreateAssignment(ctx context.Context, a *Assignment) error
	UpdateAssignment(ctx context.Context, a *Assignment) error
	Assignment(ctx context.Context, id string) (*Assignment, error)
	// Assignments returns the assignments of an incident, oldest first.
	Assignments(ctx context.Context, incident string) ([]*Assignment, error)
	// ActiveAssignments returns every assignment still holding its unit.
	ActiveAssignments(ctx context.Context) ([]*Assignment, error)

	AppendTransition(ctx context.Context, t Transition) error
	Transitions(ctx context.Context, incident string) ([]Transition, error)
	// LastTransitions returns each unit's newest transition, so that a
	// restart restores every unit's status (an out-of-service unit must
	// not come back available).
	LastTransitions(ctx context.Context) ([]Transition, error)
}

// Tracks reads the position history that telemetry records
// (telemetry.History implements it).
type Tracks interface {
	// Track returns the fixes of unit with fix time in [from, to], in time order.
	Track(ctx context.Context, unit string, from, to time.Time) ([]telemetry.Fix, error)
	// Latest returns each unit's newest fix, to rebuild the picture after a restart.
	Latest(ctx context.Context) ([]telemetry.Fix, error)
}
