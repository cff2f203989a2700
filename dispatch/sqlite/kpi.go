package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// callRecords selects the calls of a period with the first time of each
// stage: the earliest assignment and acceptance, and the earliest
// transition of a unit on the call to each status.
const callRecords = `SELECT i.id, i.jurisdiction, i.priority, i.status, i.satisfaction, i.satisfaction_reason,
	i.created_at, i.closed_at,
	(SELECT min(a.created_at) FROM assignments a WHERE a.incident = i.id),
	(SELECT min(a.accepted_at) FROM assignments a WHERE a.incident = i.id),
	(SELECT min(t.at) FROM transitions t WHERE t.incident = i.id AND t.to_status = 'en_route'),
	(SELECT min(t.at) FROM transitions t WHERE t.incident = i.id AND t.to_status = 'on_scene'),
	(SELECT min(t.at) FROM transitions t WHERE t.incident = i.id AND t.to_status = 'at_hospital')
FROM incidents i
WHERE i.created_at >= ? AND i.created_at < ?`

// CallRecords implements dispatch.Store.
func (db *DB) CallRecords(ctx context.Context, f dispatch.KPIFilter) ([]dispatch.CallRecord, error) {
	q, args := callRecords, []any{ceilMicros(f.From), ceilMicros(f.To)}
	if len(f.Jurisdictions) > 0 {
		q += ` AND i.jurisdiction IN (?` + strings.Repeat(`, ?`, len(f.Jurisdictions)-1) + `)`
		for _, j := range f.Jurisdictions {
			args = append(args, j)
		}
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY i.created_at, i.id`, args...)
	out, err := collect(rows, err, scanCallRecord)
	if err != nil {
		return nil, fmt.Errorf("call records: %w", err)
	}
	return out, nil
}

func scanCallRecord(s scanner) (dispatch.CallRecord, error) {
	var (
		r                                                      dispatch.CallRecord
		created                                                int64
		closed, dispatched, accepted, enRoute, onScene, atHosp sql.NullInt64
	)
	err := s.Scan(&r.Incident, &r.Jurisdiction, &r.Priority, &r.Status, &r.Satisfaction, &r.SatisfactionReason,
		&created, &closed, &dispatched, &accepted, &enRoute, &onScene, &atHosp)
	r.CreatedAt, r.ClosedAt = fromMicros(created), fromNullMicros(closed)
	r.Dispatched, r.Accepted = fromNullMicros(dispatched), fromNullMicros(accepted)
	r.EnRoute, r.OnScene, r.AtHospital = fromNullMicros(enRoute), fromNullMicros(onScene), fromNullMicros(atHosp)
	return r, err
}
