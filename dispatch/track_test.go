package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// TestTrackBounds: the service serves a track only in bounded pages, and
// hands back the cursor of the next one.
func TestTrackBounds(t *testing.T) {
	ctx := context.Background()
	tracks := memory.NewTracks(100)
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: testArea(t, 1), Store: memory.NewStore(), Tracks: tracks, Events: dispatch.NewBus(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var fixes []telemetry.Fix
	for i := range 10 {
		fixes = append(fixes, telemetry.Fix{Unit: "U01", Seq: uint64(i + 1), Time: clock0.Add(time.Duration(i) * time.Second), Lat: centre.Lat(), Lon: centre.Lon()})
	}
	if err := tracks.AppendFixes(ctx, fixes); err != nil {
		t.Fatal(err)
	}
	read := func(q telemetry.TrackQuery) (int, telemetry.TrackCursor, error) {
		n := 0
		next, err := svc.Track(ctx, dispatch.System, q, func(telemetry.Fix) error { n++; return nil })
		return n, next, err
	}
	q := telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(time.Hour), Limit: 4}
	n, next, err := read(q)
	if err != nil || n != 4 || next != telemetry.CursorAt(fixes[3]) {
		t.Fatalf("first page: %d fixes, next %+v, %v; want 4 and the cursor of the fourth", n, next, err)
	}
	q.After, q.Limit = telemetry.CursorAt(fixes[7]), 2
	if n, next, err := read(q); err != nil || n != 2 || !next.IsZero() {
		t.Fatalf("last page: %d fixes, next %+v, %v; want 2 and no cursor", n, next, err)
	}
	for _, tt := range []struct {
		name string
		q    telemetry.TrackQuery
		says string
	}{
		{"a day and a second", telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(dispatch.MaxTrackSpan + time.Second), Limit: 10}, "at most"},
		{"reversed", telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(-time.Second), Limit: 10}, "before"},
		{"no page size", telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(time.Hour)}, "limit"},
		{"a page too big", telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(time.Hour), Limit: dispatch.MaxTrackPage + 1}, "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n, _, err := read(tt.q); dispatch.ErrorCode(err) != dispatch.CodeInvalid || !strings.Contains(err.Error(), tt.says) || n != 0 {
				t.Fatalf("read %d fixes, %v; want invalid saying %q", n, err, tt.says)
			}
		})
	}
	if n, _, err := read(telemetry.TrackQuery{Unit: "U01", From: clock0, To: clock0.Add(dispatch.MaxTrackSpan), Limit: dispatch.MaxTrackPage}); err != nil || n != 10 {
		t.Fatalf("the widest page allowed: %d fixes, %v", n, err)
	}
}
