package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// callRecords selects the calls of a period with the first time of each
// stage: the earliest assignment and acceptance, and the earliest
// transition of a unit on the call to each status. $3 NULL selects every
// jurisdiction.
const callRecords = `SELECT i.id, i.jurisdiction, i.priority, i.status, i.satisfaction, i.satisfaction_reason,
	i.created_at, i.closed_at, a.dispatched, a.accepted, t.en_route, t.on_scene, t.at_hospital
FROM incidents i
LEFT JOIN LATERAL (SELECT min(created_at) AS dispatched, min(accepted_at) AS accepted
	FROM assignments WHERE incident = i.id) a ON true
LEFT JOIN LATERAL (SELECT min(at) FILTER (WHERE to_status = 'en_route') AS en_route,
	min(at) FILTER (WHERE to_status = 'on_scene') AS on_scene,
	min(at) FILTER (WHERE to_status = 'at_hospital') AS at_hospital
	FROM transitions WHERE incident = i.id) t ON true
WHERE i.created_at >= $1 AND i.created_at < $2 AND ($3::text[] IS NULL OR i.jurisdiction = ANY ($3))
ORDER BY i.created_at, i.id`

// CallRecords implements dispatch.Store.
func (db *DB) CallRecords(ctx context.Context, f dispatch.KPIFilter) ([]dispatch.CallRecord, error) {
	var jurs []string // nil is NULL: every jurisdiction
	if len(f.Jurisdictions) > 0 {
		jurs = f.Jurisdictions
	}
	rows, err := db.pool.Query(ctx, callRecords, ceilMicro(f.From), ceilMicro(f.To), jurs)
	out, err := collect(rows, err, scanCallRecord)
	if err != nil {
		return nil, fmt.Errorf("call records: %w", err)
	}
	return out, nil
}

func scanCallRecord(row pgx.Row) (dispatch.CallRecord, error) {
	var (
		r                                                      dispatch.CallRecord
		closed, dispatched, accepted, enRoute, onScene, atHosp *time.Time
	)
	err := row.Scan(&r.Incident, &r.Jurisdiction, &r.Priority, &r.Status, &r.Satisfaction, &r.SatisfactionReason,
		&r.CreatedAt, &closed, &dispatched, &accepted, &enRoute, &onScene, &atHosp)
	r.CreatedAt = utc(r.CreatedAt)
	for _, p := range []struct {
		from *time.Time
		to   *time.Time
	}{{closed, &r.ClosedAt}, {dispatched, &r.Dispatched}, {accepted, &r.Accepted}, {enRoute, &r.EnRoute}, {onScene, &r.OnScene}, {atHosp, &r.AtHospital}} {
		if p.from != nil {
			*p.to = utc(*p.from)
		}
	}
	return r, err
}
