package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const incidentColumns = `id, external_id, source, lat, lon, address, priority, category,
	jurisdiction, zone, radius_m, status, created_at, updated_at, closed_at`

func scanIncident(s scanner) (*dispatch.Incident, error) {
	var (
		inc              dispatch.Incident
		created, updated int64
		closed           sql.NullInt64
	)
	err := s.Scan(&inc.ID, &inc.ExternalID, &inc.Source, &inc.Location.Lat, &inc.Location.Lon,
		&inc.Address, &inc.Priority, &inc.Category, &inc.Jurisdiction, &inc.Zone,
		&inc.RadiusM, &inc.Status, &created, &updated, &closed)
	if err != nil {
		return nil, err
	}
	inc.CreatedAt, inc.UpdatedAt, inc.ClosedAt = fromMicros(created), fromMicros(updated), fromNullMicros(closed)
	return &inc, nil
}

// CreateIncident implements dispatch.Store.
func (db *DB) CreateIncident(ctx context.Context, inc *dispatch.Incident) (*dispatch.Incident, bool, error) {
	var (
		got     *dispatch.Incident
		created bool
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if inc.ExternalID != "" {
			var err error
			got, err = scanIncident(tx.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents
				WHERE source = ? AND external_id = ? AND external_id <> ''`, inc.Source, inc.ExternalID))
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO incidents (`+incidentColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			inc.ID, inc.ExternalID, inc.Source, inc.Location.Lat, inc.Location.Lon, inc.Address,
			inc.Priority, inc.Category, inc.Jurisdiction, inc.Zone, inc.RadiusM, inc.Status,
			micros(inc.CreatedAt), micros(inc.UpdatedAt), nullMicros(inc.ClosedAt))
		if err != nil {
			return constraint(err, fmt.Sprintf("incident %s exists", inc.ID), "")
		}
		got, created = clone(inc), true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("create incident %s: %w", inc.ID, err)
	}
	return got, created, nil
}

func clone[T any](v *T) *T { c := *v; return &c }

// Incident implements dispatch.Store.
func (db *DB) Incident(ctx context.Context, id string) (*dispatch.Incident, error) {
	inc, err := scanIncident(db.read.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", id, err)
	}
	return inc, nil
}

// Incidents implements dispatch.Store: newest first (by id among equals).
func (db *DB) Incidents(ctx context.Context, f dispatch.IncidentFilter) ([]*dispatch.Incident, error) {
	limit := -1 // no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	q, args := `SELECT `+incidentColumns+` FROM incidents`, []any{}
	if f.Status != "" {
		q, args = q+` WHERE status = ?`, append(args, f.Status)
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY created_at DESC, id LIMIT ?`, append(args, limit)...)
	out, err := collect(rows, err, scanIncident)
	if err != nil {
		return nil, fmt.Errorf("incidents: %w", err)
	}
	return out, nil
}

// UpdateIncident implements dispatch.Store.
func (db *DB) UpdateIncident(ctx context.Context, inc *dispatch.Incident) error {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `UPDATE incidents SET external_id = ?, source = ?, lat = ?, lon = ?,
			address = ?, priority = ?, category = ?, jurisdiction = ?, zone = ?, radius_m = ?, status = ?,
			created_at = ?, updated_at = ?, closed_at = ? WHERE id = ?`,
			inc.ExternalID, inc.Source, inc.Location.Lat, inc.Location.Lon, inc.Address, inc.Priority,
			inc.Category, inc.Jurisdiction, inc.Zone, inc.RadiusM, inc.Status,
			micros(inc.CreatedAt), micros(inc.UpdatedAt), nullMicros(inc.ClosedAt), inc.ID)
		return constraint(err, fmt.Sprintf("incident %s: source and external id taken", inc.ID), "")
	})
	return affected(res, err, "update incident "+inc.ID, dispatch.Errorf(dispatch.CodeNotFound, "incident %q not found", inc.ID))
}

// affected turns an update that touched no row into notFound.
func affected(res sql.Result, err error, what string, notFound error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return notFound
	}
	return nil
}

const assignmentColumns = `id, incident, unit, status, assigned_by, reason, created_at, updated_at`

func scanAssignment(s scanner) (*dispatch.Assignment, error) {
	var (
		a                dispatch.Assignment
		created, updated int64
	)
	if err := s.Scan(&a.ID, &a.Incident, &a.Unit, &a.Status, &a.By, &a.Reason, &created, &updated); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &a, nil
}

// CreateAssignment implements dispatch.Store. The unique index on active
// assignments makes a second active assignment of a unit a conflict.
func (db *DB) CreateAssignment(ctx context.Context, a *dispatch.Assignment) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO assignments (`+assignmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, micros(a.CreatedAt), micros(a.UpdatedAt))
		return constraint(err,
			fmt.Sprintf("unit %s already holds an active assignment (or assignment %s exists)", a.Unit, a.ID),
			fmt.Sprintf("incident %q not found", a.Incident))
	})
	if err != nil {
		return fmt.Errorf("assign unit %s: %w", a.Unit, err)
	}
	return nil
}

// UpdateAssignment implements dispatch.Store.
func (db *DB) UpdateAssignment(ctx context.Context, a *dispatch.Assignment) error {
	var res sql.Result
	err := db.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = tx.ExecContext(ctx, `UPDATE assignments SET incident = ?, unit = ?, status = ?, assigned_by = ?,
			reason = ?, created_at = ?, updated_at = ? WHERE id = ?`,
			a.Incident, a.Unit, a.Status, a.By, a.Reason, micros(a.CreatedAt), micros(a.UpdatedAt), a.ID)
		return constraint(err, fmt.Sprintf("unit %s already holds an active assignment", a.Unit),
			fmt.Sprintf("incident %q not found", a.Incident))
	})
	return affected(res, err, "update assignment "+a.ID, dispatch.Errorf(dispatch.CodeNotFound, "assignment %q not found", a.ID))
}

// Assignment implements dispatch.Store.
func (db *DB) Assignment(ctx context.Context, id string) (*dispatch.Assignment, error) {
	a, err := scanAssignment(db.read.QueryRowContext(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "assignment %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("assignment %s: %w", id, err)
	}
	return a, nil
}

// Assignments implements dispatch.Store: oldest first.
func (db *DB) Assignments(ctx context.Context, incident string) ([]*dispatch.Assignment, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE incident = ? ORDER BY created_at, id`, incident)
	out, err := collect(rows, err, scanAssignment)
	if err != nil {
		return nil, fmt.Errorf("assignments of %s: %w", incident, err)
	}
	return out, nil
}

// ActiveAssignments implements dispatch.Store: by id.
func (db *DB) ActiveAssignments(ctx context.Context) ([]*dispatch.Assignment, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE status IN ('offered', 'accepted') ORDER BY id`)
	out, err := collect(rows, err, scanAssignment)
	if err != nil {
		return nil, fmt.Errorf("active assignments: %w", err)
	}
	return out, nil
}

// AppendTransition implements dispatch.Store.
func (db *DB) AppendTransition(ctx context.Context, t dispatch.Transition) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO transitions (unit, incident, from_status, to_status, at, source)
			VALUES (?, ?, ?, ?, ?, ?)`, t.Unit, t.Incident, t.From, t.To, micros(t.At), t.Source)
		return err
	})
	if err != nil {
		return fmt.Errorf("transition of %s: %w", t.Unit, err)
	}
	return nil
}

func scanTransition(s scanner) (dispatch.Transition, error) {
	var (
		t  dispatch.Transition
		at int64
	)
	err := s.Scan(&t.Unit, &t.Incident, &t.From, &t.To, &at, &t.Source)
	t.At = fromMicros(at)
	return t, err
}

// Transitions implements dispatch.Store: in the order appended.
func (db *DB) Transitions(ctx context.Context, incident string) ([]dispatch.Transition, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT unit, incident, from_status, to_status, at, source
		FROM transitions WHERE incident = ? ORDER BY n`, incident)
	out, err := collect(rows, err, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("transitions of %s: %w", incident, err)
	}
	return out, nil
}

// LastTransitions implements dispatch.Store: each unit's newest transition
// by time (the last appended among equal times), by unit.
func (db *DB) LastTransitions(ctx context.Context) ([]dispatch.Transition, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT t.unit, t.incident, t.from_status, t.to_status, t.at, t.source
		FROM (SELECT DISTINCT unit FROM transitions) u, transitions t
		WHERE t.n = (SELECT n FROM transitions WHERE unit = u.unit ORDER BY at DESC, n DESC LIMIT 1)
		ORDER BY u.unit`)
	out, err := collect(rows, err, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("last transitions: %w", err)
	}
	return out, nil
}
