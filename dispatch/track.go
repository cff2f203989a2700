package dispatch

import (
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Bounds of one read of a unit's track (contract v1): a wide range read
// whole once returned 65 MB, and six at once took the server from 165 MB
// to 1.37 GB. A page spans at most MaxTrackSpan and holds at most
// MaxTrackPage fixes; a longer track is read page by page with the
// cursor each page returns.
const (
	MaxTrackSpan     = 24 * time.Hour
	MaxTrackPage     = 5000
	DefaultTrackPage = 1000
)

// checkTrack checks a page query against the bounds.
func checkTrack(q telemetry.TrackQuery) error {
	switch {
	case q.To.Before(q.From):
		return Errorf(CodeInvalid, "track: to %s is before from %s", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339))
	case q.To.Sub(q.From) > MaxTrackSpan:
		return Errorf(CodeInvalid, "track: from %s to %s spans %s; at most %s at a time", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), q.To.Sub(q.From).Round(time.Second), MaxTrackSpan)
	case q.Limit < 1 || q.Limit > MaxTrackPage:
		return Errorf(CodeInvalid, "track: limit %d: want 1 to %d fixes a page", q.Limit, MaxTrackPage)
	}
	return nil
}
