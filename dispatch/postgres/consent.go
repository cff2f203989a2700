package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

var _ dispatch.Consents = (*DB)(nil)

const consentColumns = `id, incident, unit, from_jurisdiction, to_jurisdiction, priority, category, lat, lon,
	status, requested_by, decided_by, reason, assignment, version, created_at, expires_at, decided_at`

func scanConsent(row pgx.Row) (*dispatch.Consent, error) {
	var (
		c                dispatch.Consent
		expires, decided *time.Time
	)
	err := row.Scan(&c.ID, &c.Incident, &c.Unit, &c.From, &c.To, &c.Priority, &c.Category, &c.Location.Lat, &c.Location.Lon,
		&c.Status, &c.RequestedBy, &c.DecidedBy, &c.Reason, &c.Assignment, &c.Version, &c.CreatedAt, &expires, &decided)
	if err != nil {
		return nil, err
	}
	c.CreatedAt = utc(c.CreatedAt)
	if expires != nil {
		c.ExpiresAt = utc(*expires)
	}
	if decided != nil {
		c.DecidedAt = utc(*decided)
	}
	return &c, nil
}

// Consent implements dispatch.Consents.
func (db *DB) Consent(ctx context.Context, id string) (*dispatch.Consent, error) {
	c, err := scanConsent(db.pool.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "consent %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("consent %s: %w", id, err)
	}
	return c, nil
}

// Consents implements dispatch.Consents: newest first (by id among equals).
func (db *DB) Consents(ctx context.Context, f dispatch.ConsentFilter) ([]*dispatch.Consent, error) {
	var limit *int // NULL: no limit
	if f.Limit > 0 {
		limit = &f.Limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE ($1::text = '' OR status = $1::text) AND ($2::text = '' OR incident = $2::text)
		ORDER BY created_at DESC, id LIMIT $3`, string(f.Status), f.Incident, limit)
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
func applyConsents(ctx context.Context, tx pgx.Tx, cs []*dispatch.Consent) error {
	for _, c := range cs {
		if c.Version == 1 {
			continue
		}
		tag, err := tx.Exec(ctx, `UPDATE consents SET status = $2, decided_by = $3, reason = $4, assignment = $5,
			version = $6, expires_at = $7, decided_at = $8 WHERE id = $1 AND version = $6 - 1`,
			c.ID, c.Status, c.DecidedBy, c.Reason, c.Assignment, c.Version, nullTime(c.ExpiresAt), nullTime(c.DecidedAt))
		err = constraint(err, fmt.Sprintf("unit %s already has a pending consent request", c.Unit), "")
		if err := stale(ctx, tx, tag, err, "consents", "id", "consent", c.ID, c.Version); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if c.Version != 1 {
			continue
		}
		_, err := tx.Exec(ctx, `INSERT INTO consents (`+consentColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			c.ID, c.Incident, c.Unit, c.From, c.To, c.Priority, c.Category, c.Location.Lat, c.Location.Lon,
			c.Status, c.RequestedBy, c.DecidedBy, c.Reason, c.Assignment, c.Version, c.CreatedAt, nullTime(c.ExpiresAt), nullTime(c.DecidedAt))
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
	rows, err := db.pool.Query(ctx, `SELECT jurisdiction, consent, updated_by, updated_at FROM jurisdiction_policies ORDER BY jurisdiction`)
	out, err := collect(rows, err, func(row pgx.Row) (dispatch.PolicyRecord, error) {
		var p dispatch.PolicyRecord
		err := row.Scan(&p.Jurisdiction, &p.Consent, &p.By, &p.At)
		p.At = utc(p.At)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("consent policies: %w", err)
	}
	return out, nil
}

// SetConsentPolicy implements dispatch.Consents.
func (db *DB) SetConsentPolicy(ctx context.Context, p dispatch.PolicyRecord) error {
	_, err := db.pool.Exec(ctx, `INSERT INTO jurisdiction_policies (jurisdiction, consent, updated_by, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (jurisdiction) DO UPDATE SET consent = excluded.consent, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		p.Jurisdiction, p.Consent, p.By, p.At)
	if err != nil {
		return fmt.Errorf("set consent policy of %s: %w", p.Jurisdiction, err)
	}
	return nil
}
