package telemetry

import (
	"context"
	"fmt"
	"time"
)

// History is the durable record of what terminals reported: every
// accepted fix (late store-and-forward ones included) and every video
// status. Implementations live in the store adapters.
type History interface {
	// AppendFixes stores fixes; when it returns nil they are durable.
	// A fix already stored (same unit, seq and fix time: a rebooted
	// terminal restarts its seq) is stored once.
	AppendFixes(ctx context.Context, fixes []Fix) error
	// AppendVideo stores one video-status report durably.
	AppendVideo(ctx context.Context, v Video) error
	// Track returns the fixes of unit with fix time in [from, to], oldest first.
	Track(ctx context.Context, unit string, from, to time.Time) ([]Fix, error)
	// Latest returns each unit's newest fix by fix time, to rebuild the
	// live picture after a restart.
	Latest(ctx context.Context) ([]Fix, error)
}

// Recorder is a Sink that writes history before passing reports on, so
// that a message is acknowledged only once what it carried is durable.
type Recorder struct {
	History History
	Next    Sink
}

var _ Sink = Recorder{}

// Positions implements Sink.
func (r Recorder) Positions(ctx context.Context, p Positions) error {
	if len(p.Fixes) > 0 {
		if err := r.History.AppendFixes(ctx, p.Fixes); err != nil {
			return fmt.Errorf("record fixes of %s: %w", p.Unit, err)
		}
	}
	return r.Next.Positions(ctx, p)
}

// Video implements Sink.
func (r Recorder) Video(ctx context.Context, v Video) error {
	if err := r.History.AppendVideo(ctx, v); err != nil {
		return fmt.Errorf("record video of %s: %w", v.Unit, err)
	}
	return r.Next.Video(ctx, v)
}

// Status implements Sink.
func (r Recorder) Status(ctx context.Context, s Status) error { return r.Next.Status(ctx, s) }

// Ack implements Sink.
func (r Recorder) Ack(ctx context.Context, a Ack) error { return r.Next.Ack(ctx, a) }

// Presence implements Sink.
func (r Recorder) Presence(ctx context.Context, p Presence) error { return r.Next.Presence(ctx, p) }
