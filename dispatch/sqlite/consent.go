package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lifeline-ems/lifeline/dispatch"
)

var _ dispatch.Consents = (*DB)(nil)

const consentColumns = `id, incident, unit, from_jurisdiction, to_jurisdiction, priority, category, lat, lon,
	status, requested_by, decided_by, reason, assignment, version, created_at, expires_at, decided_at`

func scanConsent(s scanner) (*dispatch.Consent, error) {
	var (
		c                dispatch.Consent
		created          int64
		expires, decided sql.NullInt64
	)
	err := s.Scan(&c.ID, &c.Incident, &c.Unit, &c.From, &c.To, &c.Priority, &c.Category, &c.Location.Lat, &c.Location.Lon,
		&c.Status, &c.RequestedBy, &c.DecidedBy, &c.Reason, &c.Assignment, &c.Version, &created, &expires, &decided)
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.DecidedAt = fromMicros(created), fromNullMicros(expires), fromNullMicros(decided)
	return &c, nil
}

// Consent implements dispatch.Consents.
func (db *DB) Consent(ctx context.Context, id string) (*dispatch.Consent, error) {
	c, err := scanConsent(db.read.QueryRowContext(ctx, `SELECT `+consentColumns+` FROM consents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "consent %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("consent %s: %w", id, err)
	}
	return c, nil
}

// Consents implements dispatch.Consents: newest first (by id among equals).
func (db *DB) Consents(ctx context.Context, f dispatch.ConsentFilter) ([]*dispatch.Consent, error) {
	limit := -1 // no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE (?1 = '' OR status = ?1) AND (?2 = '' OR incident = ?2)
		ORDER BY created_at DESC, id LIMIT ?3`, f.Status, f.Incident, limit)
	out, err := collect(rows, err, scanConsent)
	if err != nil {
		return nil, fmt.Errorf("consents: %w", err)
	}
	return out, nil
}

// applyConsents writes the consents of a change in its transaction:
// updates (compare-and-sets) before inserts, so that a change that ends
// one pending request and asks another for the same unit passes the
// unique index.
func applyConsents(ctx context.Context, tx *sql.Tx, cs []*dispatch.Consent) error {
	for _, c := range cs {
		if c.Version == 1 {
			continue
		}
		res, err := tx.ExecContext(ctx, `UPDATE consents SET status = ?, decided_by = ?, reason = ?, assignment = ?,
			version = ?, expires_at = ?, decided_at = ? WHERE id = ? AND version = ?`,
			c.Status, c.DecidedBy, c.Reason, c.Assignment, c.Version, nullMicros(c.ExpiresAt), nullMicros(c.DecidedAt), c.ID, c.Version-1)
		err = constraint(err, fmt.Sprintf("unit %s already has a pending consent request", c.Unit), "")
		if err := stale(ctx, tx, res, err, "consents", "id", "consent", c.ID, c.Version); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if c.Version != 1 {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consents (`+consentColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Incident, c.Unit, c.From, c.To, c.Priority, c.Category, c.Location.Lat, c.Location.Lon,
			c.Status, c.RequestedBy, c.DecidedBy, c.Reason, c.Assignment, c.Version, micros(c.CreatedAt), nullMicros(c.ExpiresAt), nullMicros(c.DecidedAt))
		if err := constraint(err,
			fmt.Sprintf("unit %s already has a pending consent request (or consent %s exists)", c.Unit, c.ID),
			fmt.Sprintf("incident %q not found", c.Incident)); err != nil {
			return err
		}
	}
	return nil
}

// ConsentPolicies implements dispatch.Consents: by jurisdiction.
func (db *DB) ConsentPolicies(ctx context.Context) ([]dispatch.PolicyRecord, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT jurisdiction, consent, updated_by, updated_at FROM jurisdiction_policies ORDER BY jurisdiction`)
	out, err := collect(rows, err, func(s scanner) (dispatch.PolicyRecord, error) {
		var (
			p  dispatch.PolicyRecord
			at int64
		)
		err := s.Scan(&p.Jurisdiction, &p.Consent, &p.By, &at)
		p.At = fromMicros(at)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("consent policies: %w", err)
	}
	return out, nil
}

// SetConsentPolicy implements dispatch.Consents.
func (db *DB) SetConsentPolicy(ctx context.Context, p dispatch.PolicyRecord) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jurisdiction_policies (jurisdiction, consent, updated_by, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (jurisdiction) DO UPDATE SET consent = excluded.consent, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			p.Jurisdiction, p.Consent, p.By, micros(p.At))
		return err
	})
	if err != nil {
		return fmt.Errorf("set consent policy of %s: %w", p.Jurisdiction, err)
	}
	return nil
}
