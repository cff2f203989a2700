package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const incidentColumns = `id, external_id, source, lat, lon, address, priority, category,
	jurisdiction, zone, radius_m, status, created_at, updated_at, closed_at`

func scanIncident(row pgx.Row) (*dispatch.Incident, error) {
	var (
		inc    dispatch.Incident
		closed *time.Time
	)
	err := row.Scan(&inc.ID, &inc.ExternalID, &inc.Source, &inc.Location.Lat, &inc.Location.Lon,
		&inc.Address, &inc.Priority, &inc.Category, &inc.Jurisdiction, &inc.Zone,
		&inc.RadiusM, &inc.Status, &inc.CreatedAt, &inc.UpdatedAt, &closed)
	if err != nil {
		return nil, err
	}
	inc.CreatedAt, inc.UpdatedAt = utc(inc.CreatedAt), utc(inc.UpdatedAt)
	if closed != nil {
		inc.ClosedAt = utc(*closed)
	}
	return &inc, nil
}

func incidentArgs(inc *dispatch.Incident) []any {
	return []any{inc.ID, inc.ExternalID, inc.Source, inc.Location.Lat, inc.Location.Lon, inc.Address,
		inc.Priority, inc.Category, inc.Jurisdiction, inc.Zone, inc.RadiusM, inc.Status,
		inc.CreatedAt, inc.UpdatedAt, nullTime(inc.ClosedAt)}
}

// CreateIncident implements dispatch.Store. Creating is idempotent on
// (source, external id) across servers: the unique index makes a
// concurrent second insert wait for the first and then do nothing.
func (db *DB) CreateIncident(ctx context.Context, inc *dispatch.Incident) (*dispatch.Incident, bool, error) {
	byExternal := func() (*dispatch.Incident, error) {
		return scanIncident(db.pool.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents
			WHERE source = $1 AND external_id = $2 AND external_id <> ''`, inc.Source, inc.ExternalID))
	}
	if inc.ExternalID != "" {
		got, err := byExternal()
		if err == nil {
			return got, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, false, fmt.Errorf("create incident %s: %w", inc.ID, err)
		}
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO incidents (`+incidentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (source, external_id) WHERE external_id <> '' DO NOTHING`, incidentArgs(inc)...)
	if err != nil {
		return nil, false, fmt.Errorf("create incident %s: %w", inc.ID, constraint(err, fmt.Sprintf("incident %s exists", inc.ID), ""))
	}
	if tag.RowsAffected() == 0 { // another server stored the same call meanwhile
		got, err := byExternal()
		if err != nil {
			return nil, false, fmt.Errorf("create incident %s: %w", inc.ID, err)
		}
		return got, false, nil
	}
	c := *inc
	return &c, true, nil
}

// Incident implements dispatch.Store.
func (db *DB) Incident(ctx context.Context, id string) (*dispatch.Incident, error) {
	inc, err := scanIncident(db.pool.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return inc, nil
}

// Incidents implements dispatch.Store: newest first (by id among equals).
func (db *DB) Incidents(ctx context.Context, f dispatch.IncidentFilter) ([]*dispatch.Incident, error) {
	q, args := `SELECT `+incidentColumns+` FROM incidents`, []any{}
	if f.Status != "" {
		q, args = q+` WHERE status = $1`, append(args, f.Status)
	}
	q += ` ORDER BY created_at DESC, id`
	if f.Limit > 0 {
		q, args = q+fmt.Sprintf(` LIMIT $%d`, len(args)+1), append(args, f.Limit)
	}
	rows, err := db.pool.Query(ctx, q, args...)
	out, err := collect(rows, err, scanIncident)
	if err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	return out, nil
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// UpdateIncident implements dispatch.Store.
func (db *DB) UpdateIncident(ctx context.Context, inc *dispatch.Incident) error {
	tag, err := db.pool.Exec(ctx, `UPDATE incidents SET external_id = $2, source = $3, lat = $4, lon = $5,
		address = $6, priority = $7, category = $8, jurisdiction = $9, zone = $10, radius_m = $11, status = $12,
		created_at = $13, updated_at = $14, closed_at = $15 WHERE id = $1`, incidentArgs(inc)...)
	err = constraint(err, fmt.Sprintf("incident %s: source and external id taken", inc.ID), "")
	return affected(tag, err, "update incident "+inc.ID, dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", inc.ID))
}

// affected turns a statement that touched no row into notFound.
func affected(tag interface{ RowsAffected() int64 }, err error, what string, notFound error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound
	}
	return nil
}

const assignmentColumns = `id, incident, unit, status, assigned_by, reason, created_at, updated_at`

func scanAssignment(row pgx.Row) (*dispatch.Assignment, error) {
	var a dispatch.Assignment
	if err := row.Scan(&a.ID, &a.Incident, &a.Unit, &a.Status, &a.By, &a.Reason, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	return &a, nil
}

// CreateAssignment implements dispatch.Store. The partial unique index
// assignments_one_active_per_unit makes a second active assignment of a
// unit a conflict, whichever server tries.
func (db *DB) CreateAssignment(ctx context.Context, a *dispatch.Assignment) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO assignments (`+assignmentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, a.CreatedAt, a.UpdatedAt)
	if err != nil {
		return fmt.Errorf("assign unit %s: %w", a.Unit, constraint(err,
			fmt.Sprintf("unit %s already holds an active assignment (or assignment %s exists)", a.Unit, a.ID),
			fmt.Sprintf("incident %q not found", a.Incident)))
	}
	return nil
}

// UpdateAssignment implements dispatch.Store.
func (db *DB) UpdateAssignment(ctx context.Context, a *dispatch.Assignment) error {
	tag, err := db.pool.Exec(ctx, `UPDATE assignments SET incident = $2, unit = $3, status = $4, assigned_by = $5,
		reason = $6, created_at = $7, updated_at = $8 WHERE id = $1`,
		a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, a.CreatedAt, a.UpdatedAt)
	err = constraint(err, fmt.Sprintf("unit %s already holds an active assignment", a.Unit), fmt.Sprintf("incident %q not found", a.Incident))
	return affected(tag, err, "update assignment "+a.ID, dispatch.Errorf(dispatch.CodeNotFound, "assignment %q not found", a.ID))
}

// Assignment implements dispatch.Store.
func (db *DB) Assignment(ctx context.Context, id string) (*dispatch.Assignment, error) {
	a, err := scanAssignment(db.pool.QueryRow(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "assignment %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("assignment %s: %w", id, err)
	}
	return a, nil
}

// Assignments implements dispatch.Store: oldest first.
func (db *DB) Assignments(ctx context.Context, incident string) ([]*dispatch.Assignment, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE incident = $1 ORDER BY created_at, id`, incident)
	out, err := collect(rows, err, scanAssignment)
	if err != nil {
		return nil, fmt.Errorf("assignments of %s: %w", incident, err)
	}
	return out, nil
}

// ActiveAssignments implements dispatch.Store: by id.
func (db *DB) ActiveAssignments(ctx context.Context) ([]*dispatch.Assignment, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE status IN ('offered', 'accepted') ORDER BY id`)
	out, err := collect(rows, err, scanAssignment)
	if err != nil {
		return nil, fmt.Errorf("active assignments: %w", err)
	}
	return out, nil
}

// AppendTransition implements dispatch.Store.
func (db *DB) AppendTransition(ctx context.Context, t dispatch.Transition) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO transitions (unit, incident, from_status, to_status, at, source)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.Unit, t.Incident, t.From, t.To, t.At, t.Source)
	if err != nil {
		return fmt.Errorf("transition of %s: %w", t.Unit, err)
	}
	return nil
}

func scanTransition(row pgx.Row) (dispatch.Transition, error) {
	var t dispatch.Transition
	err := row.Scan(&t.Unit, &t.Incident, &t.From, &t.To, &t.At, &t.Source)
	t.At = utc(t.At)
	return t, err
}

// Transitions implements dispatch.Store: in the order appended.
func (db *DB) Transitions(ctx context.Context, incident string) ([]dispatch.Transition, error) {
	rows, err := db.pool.Query(ctx, `SELECT unit, incident, from_status, to_status, at, source
		FROM transitions WHERE incident = $1 ORDER BY n`, incident)
	out, err := collect(rows, err, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("transitions of %s: %w", incident, err)
	}
	return out, nil
}

// LastTransitions implements dispatch.Store: each unit's newest transition
// by time (the last appended among equal times), by unit.
func (db *DB) LastTransitions(ctx context.Context) ([]dispatch.Transition, error) {
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT ON (unit) unit, incident, from_status, to_status, at, source
		FROM transitions ORDER BY unit, at DESC, n DESC`)
	out, err := collect(rows, err, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("last transitions: %w", err)
	}
	return out, nil
}
