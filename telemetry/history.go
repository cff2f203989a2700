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
	// Track reads one page of a unit's track (see TrackQuery), oldest
	// first by fix time and then seq, and calls fn with each fix as it is
	// read: a page is never held whole. more reports whether fixes remain
	// after the page. An error from fn stops the read and is returned.
	Track(ctx context.Context, q TrackQuery, fn func(Fix) error) (more bool, err error)
	// Latest returns each unit's newest fix by fix time, to rebuild the
	// live picture after a restart.
	Latest(ctx context.Context) ([]Fix, error)
}

// TrackQuery selects a page of one unit's track: the fixes with fix time
// in [From, To], after the cursor After (the zero cursor: from the
// start), at most Limit of them (it must be positive).
type TrackQuery struct {
	Unit     string
	From, To time.Time
	After    TrackCursor
	Limit    int
}

// TrackCursor is where a page of a track ended: the key of its last fix.
// Fixes are ordered by fix time, then seq; each store compares seq the
// way it orders it, so a cursor is only good for the store that gave it.
type TrackCursor struct {
	Time time.Time // microseconds, as stored
	Seq  uint64
}

// CursorAt is the cursor just after f.
func CursorAt(f Fix) TrackCursor { return TrackCursor{Time: f.Time, Seq: f.Seq} }

// IsZero reports whether c is the start of a track.
func (c TrackCursor) IsZero() bool { return c.Time.IsZero() && c.Seq == 0 }

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
