package simarea

import (
	"fmt"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

// World is the simulator's world for the first n units of a (0: all):
// every unit starts at its station (or, without one, at the first hospital
// of its jurisdiction), drives inside the regions of the units'
// jurisdictions, and may take patients to any of the area's hospitals.
func World(a *dispatch.Area, n int) (sim.World, error) {
	units := a.Units
	if n > len(units) {
		return sim.World{}, fmt.Errorf("%d units asked for: area %s has %d units", n, a.Name, len(units))
	}
	if n > 0 {
		units = units[:n]
	}
	if len(units) == 0 {
		return sim.World{}, fmt.Errorf("area %s has no units", a.Name)
	}
	var w sim.World
	bounded := map[string]bool{}
	for _, u := range units {
		home, ok := Home(a, u)
		if !ok {
			return sim.World{}, fmt.Errorf("unit %s has no station and its jurisdiction %s no hospital to start from", u.ID, u.Jurisdiction)
		}
		w.Units = append(w.Units, sim.UnitSpec{ID: u.ID, Home: home})
		if !bounded[u.Jurisdiction] {
			bounded[u.Jurisdiction] = true
			if j, ok := a.Jurisdiction(u.Jurisdiction); ok && j.Region != nil {
				w.Bounds = append(w.Bounds, j.Region)
			}
		}
	}
	for _, h := range a.Hospitals {
		w.Hospitals = append(w.Hospitals, h.Location)
	}
	return w, nil
}

// Home is where unit u is posted: its station, or else the first hospital
// of its jurisdiction.
func Home(a *dispatch.Area, u dispatch.Unit) (orb.Point, bool) {
	if s, ok := a.Station(u.Station); ok && u.Station != "" {
		return s.Location, true
	}
	for _, h := range a.Hospitals {
		if h.Jurisdiction == u.Jurisdiction {
			return h.Location, true
		}
	}
	return orb.Point{}, false
}
