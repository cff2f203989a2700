package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/paulmach/orb"
	"golang.org/x/sync/errgroup"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/simarea"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

// demo is what --demo adds: the area's units as simulated terminals over
// MQTT (the same path real terminals take) and, now and then, a simulated
// call that a simulated dispatcher assigns to the first recommendation.
type demo struct {
	area  *dispatch.Area
	svc   *dispatch.Service
	fleet *sim.Fleet
	every time.Duration
	log   *slog.Logger
	rng   *rand.Rand
}

func newDemo(ctx context.Context, m *Main, log *slog.Logger) (*demo, error) {
	// The simulated terminals are provisioned like real ones: a password
	// per unit, issued by Access and stored hashed.
	passwords := map[string]string{}
	for _, u := range m.Area.Units {
		pw, err := m.Access.RotateUnitCredentials(ctx, dispatch.System, u.ID)
		if err != nil {
			return nil, fmt.Errorf("demo: credentials for %s: %w", u.ID, err)
		}
		passwords[u.ID] = pw
	}
	world, err := simarea.World(m.Area, 0)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	c := m.Config
	log.Info("demo: simulated fleet and calls; sign in to the console as admin (LIFELINE_ADMIN_PASSWORD, or the one-time password printed at first start)",
		"units", len(passwords), "calls_every", c.DemoCalls)
	return &demo{
		area: m.Area, svc: m.Service, every: c.DemoCalls, log: log.With("component", "demo"),
		fleet: sim.New(world, sim.Config{
			URL: m.mqttURL, Interval: 2 * time.Second, Speedup: c.DemoSpeedup, Wander: true,
			Credentials: func(unit string) (string, string) { return unit, passwords[unit] },
		}, log),
		rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42)),
	}, nil
}

// Run drives the fleet and the calls until ctx is done.
func (d *demo) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.fleet.Run(ctx) })
	if d.every > 0 {
		g.Go(func() error { return d.calls(ctx) })
	}
	return g.Wait()
}

// demoDispatcher is who takes and assigns the simulated calls.
var demoDispatcher = dispatch.Principal{Name: "demo", Role: dispatch.RoleAdmin}

var demoCategories = []dispatch.Category{
	dispatch.CatChestPain, dispatch.CatStroke, dispatch.CatTrauma, dispatch.CatTrauma,
	dispatch.CatMaternal, dispatch.CatNeonatal, dispatch.CatOther, dispatch.CatOther,
}

func (d *demo) calls(ctx context.Context) error {
	// Let the terminals connect and report before the first call.
	t := time.NewTimer(min(d.every, 8*time.Second))
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		t.Reset(d.every)
		d.call(ctx, n)
	}
}

// call takes one simulated call near a random station and assigns the
// first recommendation, as a dispatcher would.
func (d *demo) call(ctx context.Context, n int) {
	if len(d.area.Stations) == 0 {
		return
	}
	st := d.area.Stations[d.rng.IntN(len(d.area.Stations))]
	var loc orb.Point
	for range 20 {
		loc = offset(st.Location, d.rng.Float64()*6000, d.rng.Float64()*2*math.Pi)
		if j, _, ok := d.area.Locate(loc); ok && j.ID == st.Jurisdiction {
			break
		}
		loc = st.Location
	}
	inc, recs, _, err := d.svc.CreateIncident(ctx, demoDispatcher, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: loc.Lat(), Lon: loc.Lon()},
		Address:  fmt.Sprintf("演示呼叫 demo call %d near %s", n, st.Name),
		Priority: dispatch.Priority(1 + d.rng.IntN(3)),
		Category: demoCategories[d.rng.IntN(len(demoCategories))],
		Source:   "demo", ExternalID: fmt.Sprintf("demo-%d-%d", time.Now().Unix(), n),
	})
	if err != nil {
		d.log.Warn("demo call", "err", err)
		return
	}
	for _, c := range recs.Candidates {
		if _, err := d.svc.Assign(ctx, demoDispatcher, inc.ID, c.Unit); err == nil {
			return
		}
	}
	d.log.Info("demo call left open: no unit available", "incident", inc.ID)
}

// offset moves p by dist metres on bearing (radians).
func offset(p orb.Point, dist, bearing float64) orb.Point {
	const r = 6371008.8
	dLat := dist * math.Cos(bearing) / r
	dLon := dist * math.Sin(bearing) / (r * math.Cos(p.Lat()*math.Pi/180))
	q := orb.Point{p.Lon() + dLon*180/math.Pi, p.Lat() + dLat*180/math.Pi}
	if !geo.ValidLatLon(q.Lat(), q.Lon()) {
		return p
	}
	return q
}
