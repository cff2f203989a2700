package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/postgres"
	"github.com/lifeline-ems/lifeline/dispatch/sqlite"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// record is what a durable store adapter gives lifelined: the record of
// calls and consent requests, people and the audit log, and the position
// history.
type record interface {
	dispatch.Store
	dispatch.Consents
	dispatch.Users
	dispatch.Auditor
	telemetry.History
	Ping(ctx context.Context) error
	Close() error
}

// openRecord opens PostgreSQL when a DSN is given, else the embedded
// SQLite store under the data directory.
func openRecord(ctx context.Context, c Config, log *slog.Logger) (record, error) {
	if c.PostgresURL != "" {
		db, err := postgres.Open(ctx, c.PostgresURL, log)
		if err != nil {
			return nil, err
		}
		return pgRecord{db}, nil
	}
	db, err := sqlite.Open(ctx, c.DataDir, log)
	if err != nil {
		return nil, err
	}
	return sqliteRecord{db}, nil
}

// maintainer is a store with a retention duty: PostgreSQL drops whole
// weekly partitions, SQLite deletes old rows. Both keep the dispatch
// record and the audit log; only position and video history expire.
type maintainer interface {
	maintain(ctx context.Context, now time.Time, retention time.Duration) error
}

type pgRecord struct{ *postgres.DB }

func (r pgRecord) maintain(ctx context.Context, now time.Time, retention time.Duration) error {
	return r.MaintainPartitions(ctx, now, retention)
}

type sqliteRecord struct{ *sqlite.DB }

func (r sqliteRecord) maintain(ctx context.Context, now time.Time, retention time.Duration) error {
	if retention <= 0 {
		return nil
	}
	_, err := r.PrunePositions(ctx, now.Add(-retention))
	return err
}

// maintain runs the store's retention duty and the sweep of expired
// sessions now and then daily until ctx ends. Several servers may run it at once (PostgreSQL serialises it on an
// advisory lock).
func maintain(ctx context.Context, rec record, acc *dispatch.Access, retention time.Duration, log *slog.Logger) error {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if m, ok := rec.(maintainer); ok {
			if err := m.maintain(ctx, time.Now(), retention); err != nil && ctx.Err() == nil {
				log.Error("history maintenance", "err", err)
			}
		}
		if n, err := acc.SweepSessions(ctx); err != nil && ctx.Err() == nil {
			log.Error("session sweep", "err", err)
		} else if n > 0 {
			log.Info("expired sessions deleted", "sessions", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
