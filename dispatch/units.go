package dispatch

import (
	"context"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Positions moves the unit to its newest fix (telemetry.Sink) and notes
// what is known of its terminal's clock. History is telemetry's to record
// (telemetry.Recorder), before this is called.
func (s *Service) Positions(ctx context.Context, p telemetry.Positions) error {
	offset := p.Clock.Offset.Round(time.Second).Seconds()
	if p.Latest == nil {
		s.update(p.Unit, func(st *UnitState) bool {
			if st.ClockOffsetS == offset && st.ClockSuspect == p.Clock.Suspect() {
				return false
			}
			st.ClockOffsetS, st.ClockSuspect = offset, p.Clock.Suspect()
			return true
		})
		return nil
	}
	f := *p.Latest
	pos := &Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading, HDOP: f.HDOP, Seq: f.Seq, Time: f.Time, Received: f.Received}
	st, moved := s.update(p.Unit, func(st *UnitState) bool {
		if st.Position != nil && !f.Time.After(st.Position.Time) {
			return false
		}
		st.Position, st.Online = pos, true
		st.ClockOffsetS, st.ClockSuspect = offset, p.Clock.Suspect()
		st.LastSeen = later(st.LastSeen, f.Received)
		return true
	})
	if moved {
		s.inferFrom(ctx, st, p.Fixes)
	}
	return nil
}

// Video records a terminal's video status (telemetry.Sink).
func (s *Service) Video(ctx context.Context, v telemetry.Video) error {
	vs := &VideoState{Uplink: v.Uplink, Cameras: v.Cameras, Time: v.Time}
	s.update(v.Unit, func(st *UnitState) bool {
		if st.Video != nil && v.Time.Before(st.Video.Time) {
			return false
		}
		st.Video = vs
		return true
	})
	return nil
}

// Presence records a terminal going online or offline (telemetry.Sink).
// With RedeliverOnOnline, a terminal that reports online again gets its
// pending commands again.
func (s *Service) Presence(ctx context.Context, p telemetry.Presence) error {
	if p.Online && s.redeliverOnOnline {
		s.courier.Ready(p.Unit)
	}
	s.update(p.Unit, func(st *UnitState) bool {
		if st.Online == p.Online {
			return false
		}
		st.Online = p.Online
		st.LastSeen = later(st.LastSeen, p.Time)
		return true
	})
	return nil
}

// Units returns the live picture of the units by may see, narrowed to
// scope ("" for all of by's jurisdiction).
func (s *Service) Units(by Principal, scope string) ([]UnitState, error) {
	scope, err := s.Scope(by, scope)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := s.pic.Units(func(st *UnitState) bool { return s.inScope(st.Jurisdiction, scope) })
	for i := range out {
		out[i] = s.view(out[i], now)
	}
	return out, nil
}

// Unit returns the live picture of one unit by may see.
func (s *Service) Unit(by Principal, id string) (UnitState, error) {
	if err := s.allowed(by); err != nil {
		return UnitState{}, err
	}
	st, err := s.unit(id)
	if err != nil {
		return UnitState{}, err
	}
	if !by.Sees(s.area, st.Jurisdiction) {
		return UnitState{}, Errorf(CodeForbidden, "unit %s is outside your jurisdiction", id)
	}
	return st, nil
}

// unit returns the live picture of one unit, for the service itself.
func (s *Service) unit(id string) (UnitState, error) {
	st, ok := s.pic.Unit(id)
	if !ok {
		return UnitState{}, Errorf(CodeNotFound, "unit %q not found", id)
	}
	return s.view(st, s.now()), nil
}

// Track streams one page of the recorded positions of a unit by may see
// to fn, oldest first, and returns the cursor of the next page (zero
// after the last). See Track's bounds: MaxTrackSpan, MaxTrackPage.
func (s *Service) Track(ctx context.Context, by Principal, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (next telemetry.TrackCursor, err error) {
	if _, err := s.Unit(by, q.Unit); err != nil {
		return next, err
	}
	if err := checkTrack(q); err != nil {
		return next, err
	}
	if s.tracks == nil {
		return next, Errorf(CodeUnavailable, "no position history is kept")
	}
	var last telemetry.Fix
	more, err := s.tracks.Track(ctx, q, func(f telemetry.Fix) error { last = f; return fn(f) })
	if err != nil || !more {
		return telemetry.TrackCursor{}, err
	}
	return telemetry.CursorAt(last), nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
