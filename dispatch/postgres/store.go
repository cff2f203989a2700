package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lifeline-ems/lifeline/dispatch"
)

const incidentColumns = `id, external_id, source, lat, lon, address, priority, category,
	jurisdiction, zone, radius_m, status, outcome, version, created_at, updated_at, closed_at,
	satisfaction, satisfaction_reason`

func scanIncident(row pgx.Row) (*dispatch.Incident, error) {
	var (
		inc    dispatch.Incident
		closed *time.Time
	)
	err := row.Scan(&inc.ID, &inc.ExternalID, &inc.Source, &inc.Location.Lat, &inc.Location.Lon,
		&inc.Address, &inc.Priority, &inc.Category, &inc.Jurisdiction, &inc.Zone,
		&inc.RadiusM, &inc.Status, &inc.Outcome, &inc.Version, &inc.CreatedAt, &inc.UpdatedAt, &closed,
		&inc.Satisfaction, &inc.SatisfactionReason)
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
		inc.Priority, inc.Category, inc.Jurisdiction, inc.Zone, inc.RadiusM, inc.Status, inc.Outcome, inc.Version,
		inc.CreatedAt, inc.UpdatedAt, nullTime(inc.ClosedAt), inc.Satisfaction, inc.SatisfactionReason}
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
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
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

const assignmentColumns = `id, incident, unit, status, assigned_by, reason, version, created_at, updated_at, accepted_at`

func scanAssignment(row pgx.Row) (*dispatch.Assignment, error) {
	var (
		a        dispatch.Assignment
		accepted *time.Time
	)
	if err := row.Scan(&a.ID, &a.Incident, &a.Unit, &a.Status, &a.By, &a.Reason, &a.Version, &a.CreatedAt, &a.UpdatedAt, &accepted); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = utc(a.CreatedAt), utc(a.UpdatedAt)
	if accepted != nil {
		a.AcceptedAt = utc(*accepted)
	}
	return &a, nil
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

const unitRecordColumns = `unit, status, incident, assignment, press_at, version, at`

func scanUnitRecord(row pgx.Row) (dispatch.UnitRecord, error) {
	var (
		r     dispatch.UnitRecord
		press *time.Time
	)
	err := row.Scan(&r.Unit, &r.Status, &r.Incident, &r.Assignment, &press, &r.Version, &r.At)
	r.At = utc(r.At)
	if press != nil {
		r.PressAt = utc(*press)
	}
	return r, err
}

// UnitRecords implements dispatch.Store: by unit.
func (db *DB) UnitRecords(ctx context.Context) ([]dispatch.UnitRecord, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+unitRecordColumns+` FROM unit_records ORDER BY unit`)
	out, err := collect(rows, err, scanUnitRecord)
	if err != nil {
		return nil, fmt.Errorf("unit records: %w", err)
	}
	return out, nil
}

// UnitRecord implements dispatch.Store.
func (db *DB) UnitRecord(ctx context.Context, unit string) (dispatch.UnitRecord, error) {
	r, err := scanUnitRecord(db.pool.QueryRow(ctx, `SELECT `+unitRecordColumns+` FROM unit_records WHERE unit = $1`, unit))
	if errors.Is(err, pgx.ErrNoRows) {
		return dispatch.UnitRecord{}, dispatch.Errorf(dispatch.CodeNotFound, "unit %q has no record", unit)
	}
	if err != nil {
		return dispatch.UnitRecord{}, fmt.Errorf("unit record %s: %w", unit, err)
	}
	return r, nil
}

// Apply implements dispatch.Store: one transaction of compare-and-sets,
// safe between servers. A row whose version moved on makes the UPDATE
// touch nothing; a unit's second active assignment fails the partial
// unique index (the second insert waits for the first to commit, then
// fails). Assignments are updated before new ones are inserted, so that
// a change that frees a unit and assigns it again passes the index.
func (db *DB) Apply(ctx context.Context, c dispatch.Change) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if inc := c.Incident; inc != nil {
			tag, err := tx.Exec(ctx, `UPDATE incidents SET external_id = $2, source = $3, lat = $4, lon = $5,
				address = $6, priority = $7, category = $8, jurisdiction = $9, zone = $10, radius_m = $11, status = $12,
				outcome = $13, version = $14, created_at = $15, updated_at = $16, closed_at = $17,
				satisfaction = $18, satisfaction_reason = $19
				WHERE id = $1 AND version = $14 - 1`, incidentArgs(inc)...)
			err = constraint(err, fmt.Sprintf("incident %s: source and external id taken", inc.ID), "")
			if err := stale(ctx, tx, tag, err, "incidents", "id", "incident", inc.ID, inc.Version); err != nil {
				return err
			}
		}
		for _, a := range c.Assignments {
			if a.Version == 1 {
				continue
			}
			tag, err := tx.Exec(ctx, `UPDATE assignments SET incident = $2, unit = $3, status = $4, assigned_by = $5,
				reason = $6, version = $7, created_at = $8, updated_at = $9, accepted_at = $10 WHERE id = $1 AND version = $7 - 1`,
				a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, a.Version, a.CreatedAt, a.UpdatedAt, nullTime(a.AcceptedAt))
			err = constraint(err, fmt.Sprintf("unit %s already holds an active assignment", a.Unit), fmt.Sprintf("incident %q not found", a.Incident))
			if err := stale(ctx, tx, tag, err, "assignments", "id", "assignment", a.ID, a.Version); err != nil {
				return err
			}
		}
		for _, a := range c.Assignments {
			if a.Version != 1 {
				continue
			}
			_, err := tx.Exec(ctx, `INSERT INTO assignments (`+assignmentColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				a.ID, a.Incident, a.Unit, a.Status, a.By, a.Reason, a.Version, a.CreatedAt, a.UpdatedAt, nullTime(a.AcceptedAt))
			if err := constraint(err,
				fmt.Sprintf("unit %s already holds an active assignment (or assignment %s exists)", a.Unit, a.ID),
				fmt.Sprintf("incident %q not found", a.Incident)); err != nil {
				return err
			}
		}
		for _, r := range c.Units {
			var (
				tag pgconn.CommandTag
				err error
			)
			if r.Version == 1 {
				tag, err = tx.Exec(ctx, `INSERT INTO unit_records (`+unitRecordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
					ON CONFLICT (unit) DO NOTHING`, r.Unit, r.Status, r.Incident, r.Assignment, nullTime(r.PressAt), r.Version, r.At)
			} else {
				tag, err = tx.Exec(ctx, `UPDATE unit_records SET status = $2, incident = $3, assignment = $4, press_at = $5,
					version = $6, at = $7 WHERE unit = $1 AND version = $6 - 1`,
					r.Unit, r.Status, r.Incident, r.Assignment, nullTime(r.PressAt), r.Version, r.At)
			}
			if err := changed(tag, err, "unit", r.Unit, r.Version); err != nil {
				return err
			}
		}
		for _, t := range c.Transitions {
			if _, err := tx.Exec(ctx, `INSERT INTO transitions (unit, incident, from_status, to_status, at, source)
				VALUES ($1, $2, $3, $4, $5, $6)`, t.Unit, t.Incident, t.From, t.To, t.At, t.Source); err != nil {
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
func changed(tag pgconn.CommandTag, err error, kind, id string, version int64) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return dispatch.Errorf(dispatch.CodeConflict, "%s %s changed meanwhile (change made from version %d)", kind, id, version-1)
	}
	return nil
}

// stale is changed for a row that may also be missing: not found when
// there is no row with that id, a conflict when its version moved on.
func stale(ctx context.Context, tx pgx.Tx, tag pgconn.CommandTag, err error, table, key, kind, id string, version int64) error {
	if err != nil {
		return err // the statement failed: the transaction is aborted, ask it nothing more
	}
	err = changed(tag, nil, kind, id, version)
	if err == nil {
		return nil
	}
	var exists bool
	if qerr := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE `+key+` = $1)`, id).Scan(&exists); qerr != nil {
		return qerr
	}
	if !exists {
		return dispatch.Errorf(dispatch.CodeNotFound, "%s %q not found", kind, id)
	}
	return err
}
