package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const incidentColumns = `id, external_id, source, lat, lon, address, priority, category,
	jurisdiction, zone, radius_m, status, outcome, version, created_at, updated_at, closed_at,
	satisfaction, satisfaction_reason`

func scanIncident(s scanner) (*dispatch.Incident, error) {
	var (
		inc              dispatch.Incident
		created, updated int64
		closed           sql.NullInt64
	)
	err := s.Scan(&inc.ID, &inc.ExternalID, &inc.Source, &inc.Location.Lat, &inc.Location.Lon,
		&inc.Address, &inc.Priority, &inc.Category, &inc.Jurisdiction, &inc.Zone,
		&inc.RadiusM, &inc.Status, &inc.Outcome, &inc.Version, &created, &updated, &closed,
		&inc.Satisfaction, &inc.SatisfactionReason)
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
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, incidentArgs(inc)...)
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
	inc, err := scanIncident(db.reads.incident.QueryRowContext(ctx, id))
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

func incidentArgs(inc *dispatch.Incident) []any {
	return []any{inc.ID, inc.ExternalID, inc.Source, inc.Location.Lat, inc.Location.Lon, inc.Address,
		inc.Priority, inc.Category, inc.Jurisdiction, inc.Zone, inc.RadiusM, inc.Status, inc.Outcome, inc.Version,
		micros(inc.CreatedAt), micros(inc.UpdatedAt), nullMicros(inc.ClosedAt),
		inc.Satisfaction, inc.SatisfactionReason}
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

const assignmentColumns = `id, incident, unit, status, assigned_by, reason, version, created_at, updated_at, accepted_at`

func scanAssignment(s scanner) (*dispatch.Assignment, error) {
	var (
		a                dispatch.Assignment
		created, updated int64
		accepted         sql.NullInt64
	)
	if err := s.Scan(&a.ID, &a.Incident, &a.Unit, &a.Status, &a.By, &a.Reason, &a.Version, &created, &updated, &accepted); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt, a.AcceptedAt = fromMicros(created), fromMicros(updated), fromNullMicros(accepted)
	return &a, nil
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
	rows, err := db.reads.assignments.QueryContext(ctx, incident)
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

const unitRecordColumns = `unit, status, incident, assignment, press_at, version, at`

func scanUnitRecord(s scanner) (dispatch.UnitRecord, error) {
	var (
		r     dispatch.UnitRecord
		press sql.NullInt64
		at    int64
	)
	err := s.Scan(&r.Unit, &r.Status, &r.Incident, &r.Assignment, &press, &r.Version, &at)
	r.PressAt, r.At = fromNullMicros(press), fromMicros(at)
	return r, err
}

// UnitRecords implements dispatch.Store: by unit.
func (db *DB) UnitRecords(ctx context.Context) ([]dispatch.UnitRecord, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+unitRecordColumns+` FROM unit_records ORDER BY unit`)
	out, err := collect(rows, err, scanUnitRecord)
	if err != nil {
		return nil, fmt.Errorf("unit records: %w", err)
	}
	return out, nil
}

// UnitRecord implements dispatch.Store.
func (db *DB) UnitRecord(ctx context.Context, unit string) (dispatch.UnitRecord, error) {
	r, err := scanUnitRecord(db.read.QueryRowContext(ctx, `SELECT `+unitRecordColumns+` FROM unit_records WHERE unit = ?`, unit))
	if errors.Is(err, sql.ErrNoRows) {
		return dispatch.UnitRecord{}, dispatch.Errorf(dispatch.CodeNotFound, "unit %q has no record", unit)
	}
	if err != nil {
		return dispatch.UnitRecord{}, fmt.Errorf("unit record %s: %w", unit, err)
	}
	return r, nil
}

// Apply implements dispatch.Store: one BEGIN IMMEDIATE transaction.
// Assignments are updated before new ones are inserted, so that a change
// that frees a unit and assigns it again passes the unique index.
func (db *DB) Apply(ctx context.Context, c dispatch.Change) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if inc := c.Incident; inc != nil {
			res, err := tx.ExecContext(ctx, `UPDATE incidents SET external_id = ?2, source = ?3, lat = ?4, lon = ?5,
				address = ?6, priority = ?7, category = ?8, jurisdiction = ?9, zone = ?10, radius_m = ?11, status = ?12,
				outcome = ?13, version = ?14, created_at = ?15, updated_at = ?16, closed_at = ?17,
				satisfaction = ?18, satisfaction_reason = ?19
				WHERE id = ?1 AND version = ?14 - 1`, incidentArgs(inc)...)
			err = constraint(err, fmt.Sprintf("incident %s: source and external id taken", inc.ID), "")
			if err := stale(ctx, tx, res, err, "incidents", "id", "incident", inc.ID, inc.Version); err != nil {
				return err
			}
		}
		for _, a := range c.Assignments {
			if a.Version == 1 {
				continue
			}
			res, err := tx.ExecContext(ctx, `UPDATE assignments SET incident = ?, unit = ?, status = ?, assigned_by = ?,
				reason = ?, version = ?, created_at = ?, updated_at = ?, accepted_at = ? WHERE id = ? AND version = ?`,
				a.Incident, a.Unit, a.Status, a.By, a.Reason, a.Version, micros(a.CreatedAt), micros(a.UpdatedAt), nullMicros(a.AcceptedAt), a.ID, a.Version-1)
			err = constraint(err, fmt.Sprintf("unit %s already holds an active assignment", a.Unit), fmt.Sprintf("incident %q not found", a.Incident))
			if err := stale(ctx, tx, res, err, "assignments", "id", "assignment", a.ID, a.Version); err != nil {
				return err
			}
		}
		for _, a := range c.Assignments {
			if a.Version != 1 {
				continue
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO assignments (`+assignmentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, a.Version, micros(a.CreatedAt), micros(a.UpdatedAt), nullMicros(a.AcceptedAt))
			if err := constraint(err,
				fmt.Sprintf("unit %s already holds an active assignment (or assignment %s exists)", a.Unit, a.ID),
				fmt.Sprintf("incident %q not found", a.Incident)); err != nil {
				return err
			}
		}
		for _, r := range c.Units {
			var (
				res sql.Result
				err error
			)
			if r.Version == 1 {
				res, err = tx.ExecContext(ctx, `INSERT INTO unit_records (`+unitRecordColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (unit) DO NOTHING`, r.Unit, r.Status, r.Incident, r.Assignment, nullMicros(r.PressAt), r.Version, micros(r.At))
			} else {
				res, err = tx.ExecContext(ctx, `UPDATE unit_records SET status = ?, incident = ?, assignment = ?, press_at = ?,
					version = ?, at = ? WHERE unit = ? AND version = ?`,
					r.Status, r.Incident, r.Assignment, nullMicros(r.PressAt), r.Version, micros(r.At), r.Unit, r.Version-1)
			}
			if err := changed(res, err, "unit", r.Unit, r.Version); err != nil {
				return err
			}
		}
		for _, t := range c.Transitions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO transitions (unit, incident, from_status, to_status, at, source)
				VALUES (?, ?, ?, ?, ?, ?)`, t.Unit, t.Incident, t.From, t.To, micros(t.At), t.Source); err != nil {
				return fmt.Errorf("transition of %s: %w", t.Unit, err)
			}
		}
		if err := insertCommands(ctx, tx, c.Commands); err != nil {
			return err
		}
		return applyConsents(ctx, tx, c.Consents)
	})
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	return nil
}

// changed turns a compare-and-set that touched no row into a conflict.
func changed(res sql.Result, err error, kind, id string, version int64) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return dispatch.Errorf(dispatch.CodeConflict, "%s %s changed meanwhile (change made from version %d)", kind, id, version-1)
	}
	return nil
}

// stale is changed for a row that may also be missing: not found when
// there is no row with that id, a conflict when its version moved on.
func stale(ctx context.Context, tx *sql.Tx, res sql.Result, err error, table, key, kind, id string, version int64) error {
	if err != nil {
		return err
	}
	err = changed(res, nil, kind, id, version)
	if err == nil {
		return nil
	}
	var n int
	if qerr := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+key+` = ?`, id).Scan(&n); qerr != nil {
		return qerr
	}
	if n == 0 {
		return dispatch.Errorf(dispatch.CodeNotFound, "%s %q not found", kind, id)
	}
	return err
}
