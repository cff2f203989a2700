package storetest

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// The day's area: a city with county A (about 40 × 44 km, an urban zone
// of about 6 × 6 km at its centre, eight units) and county B east of it
// (three units, one near the county line).
var (
	dayCity, dayA, dayB = "510300", "510322", "510302"
	dayCentreA          = orb.Point{105.0, 29.2}
	dayCentreB          = orb.Point{105.3, 29.2}
	dayUrbanHalf        = 0.03
	dayUnits            = []struct {
		id, jur string
		home    orb.Point
	}{
		{"A01", dayA, orb.Point{105.0, 29.2}}, {"A02", dayA, orb.Point{105.01, 29.2}},
		{"A03", dayA, orb.Point{104.99, 29.21}}, {"A04", dayA, orb.Point{105.0, 29.19}},
		{"A05", dayA, orb.Point{104.85, 29.05}}, {"A06", dayA, orb.Point{104.9, 29.35}},
		{"A07", dayA, orb.Point{105.1, 29.1}}, {"A08", dayA, orb.Point{105.05, 29.33}},
		{"B01", dayB, orb.Point{105.22, 29.2}}, {"B02", dayB, orb.Point{105.3, 29.2}}, {"B03", dayB, orb.Point{105.35, 29.25}},
	}
	day0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
)

func dayArea(t *testing.T) *dispatch.Area {
	a := &dispatch.Area{
		Name: "day",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: dayCity, Name: "city"},
			{ID: dayA, Name: "county A", Parent: dayCity, Region: dispatchtest.Region(t, dayA, dispatchtest.Square(dayCentreA, 0.2))},
			{ID: dayB, Name: "county B", Parent: dayCity, Region: dispatchtest.Region(t, dayB, dispatchtest.Square(dayCentreB, 0.1))},
		},
		Zones:    []dispatch.UrbanZone{{ID: "Z1", Name: "seat", Jurisdiction: dayA, Region: dispatchtest.Region(t, "Z1", dispatchtest.Square(dayCentreA, dayUrbanHalf))}},
		Stations: []dispatch.Station{{ID: "S1", Name: "seat", Jurisdiction: dayA, Location: dayCentreA}},
	}
	for _, u := range dayUnits {
		a.Units = append(a.Units, dispatch.Unit{ID: u.id, Callsign: u.id, Jurisdiction: u.jur, Capabilities: []string{dispatch.BLS}})
	}
	must(t, a.Validate())
	return a
}

// dayUnit is a unit as the test knows it.
type dayUnit struct {
	id, jur  string
	home     orb.Point
	status   dispatch.UnitStatus
	online   bool
	silent   bool // its terminal sends no fixes
	lastFix  time.Time
	asg      string // its active assignment
	call     *dayCall
	declined map[string]bool
}

// dayCall is a call as the test knows it: every stage time is the time
// the test made it happen.
type dayCall struct {
	id                 string
	jur                string
	p                  orb.Point
	urban              bool
	priority           dispatch.Priority
	created            time.Time
	sat                dispatch.Satisfaction
	status             dispatch.IncidentStatus
	dispatched         time.Time
	accepted, enRoute  time.Time
	onScene, atHosp    time.Time
	closed             time.Time
	aborted, offered   bool
	active             int
	declines, attempts int
}

// replay drives a Service through a generated day and keeps the test's
// own account of it.
type replay struct {
	t     *testing.T
	svc   *dispatch.Service
	clock *dispatchtest.Clock
	rng   *rand.Rand
	units []*dayUnit
	calls []*dayCall
	queue []event
	n     int
	seq   map[string]uint64
	stats map[string]int // what the day held, to check it held enough
}

type event struct {
	at time.Time
	n  int
	do func()
}

func (r *replay) after(d time.Duration, do func()) {
	r.n++
	e := event{at: r.clock.Now().Add(d), n: r.n, do: do}
	i, _ := slices.BinarySearchFunc(r.queue, e, func(a, b event) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.n, b.n)) })
	r.queue = slices.Insert(r.queue, i, e)
}

// run plays the events due before until.
func (r *replay) run(until time.Time) {
	for len(r.queue) > 0 && r.queue[0].at.Before(until) {
		e := r.queue[0]
		r.queue = r.queue[1:]
		r.clock.Add(e.at.Sub(r.clock.Now()))
		e.do()
	}
	if until.After(r.clock.Now()) {
		r.clock.Add(until.Sub(r.clock.Now()))
	}
}

func (r *replay) secs(lo, hi int) time.Duration {
	return time.Duration(lo+r.rng.IntN(hi-lo+1)) * time.Second
}

// fixes reports every unit whose terminal is talking where it is.
func (r *replay) fixes() {
	now := r.clock.Now()
	for _, u := range r.units {
		if !u.silent {
			r.fix(u, now)
		}
	}
}

func (r *replay) fix(u *dayUnit, now time.Time) {
	r.seq[u.id]++
	f := telemetry.Fix{Unit: u.id, Seq: r.seq[u.id], Time: now, Lat: u.home.Lat(), Lon: u.home.Lon(), Received: now}
	must(r.t, r.svc.Positions(r.t.Context(), telemetry.Positions{Unit: u.id, Fixes: []telemetry.Fix{f}, Latest: &f}))
	u.lastFix, u.online = now, true
}

// free reports whether u could be sent now, as a recommendation judges.
func (u *dayUnit) free(now time.Time) bool {
	return u.status == dispatch.Available && u.online && !u.lastFix.IsZero() && now.Sub(u.lastFix) <= 90*time.Second
}

func (r *replay) press(u *dayUnit, status dispatch.UnitStatus) {
	must(r.t, r.svc.Status(r.t.Context(), telemetry.Status{Unit: u.id, Time: r.clock.Now(), Status: string(status), Incident: ""}))
	u.status = status
}

func first(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
}

// call takes a call at p, of priority prio (0: any).
func (r *replay) call(jur string, p orb.Point, urban bool, prio dispatch.Priority) {
	r.fixes()
	now := r.clock.Now()
	c := &dayCall{jur: jur, p: p, urban: urban, created: now, status: dispatch.IncidentOpen, priority: dispatch.Priority(1 + r.rng.IntN(4))}
	if r.rng.IntN(10) < 3 {
		c.priority = 1
	}
	if prio != 0 {
		c.priority = prio
	}
	// The test's own judgement of the call's satisfaction.
	radius := 10000.0
	if urban {
		radius = 5000
	}
	c.sat = dispatch.Unsatisfied
	for _, u := range r.units {
		if !u.free(now) || geo.Distance(u.home, p) > radius {
			continue
		}
		if u.jur == jur {
			c.sat = dispatch.SatisfiedOwn
			break
		}
		c.sat = dispatch.SatisfiedLinked
	}
	r.stats["satisfaction "+string(c.sat)]++
	inc, _, _, err := r.svc.CreateIncident(r.t.Context(), dispatch.System, dispatch.NewIncident{
		Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Address: "day", Priority: c.priority, Category: dispatch.CatOther,
	})
	must(r.t, err)
	if inc.Satisfaction != c.sat || inc.Jurisdiction != jur || (c.sat != dispatch.SatisfiedOwn) != (inc.SatisfactionReason != "") {
		r.t.Fatalf("call at %v (%s, urban %v): satisfaction %q (%q), want %q", p, inc.Jurisdiction, urban, inc.Satisfaction, inc.SatisfactionReason, c.sat)
	}
	c.id = inc.ID
	r.calls = append(r.calls, c)
	r.after(r.secs(20, 180), func() { r.dispatch(c) })
	if r.rng.IntN(12) == 0 {
		r.after(r.secs(60, 900), func() { r.cancel(c) })
	}
}

func (c *dayCall) ended() bool {
	return c.status == dispatch.IncidentClosed || c.status == dispatch.IncidentCancelled
}

// dispatch sends the nearest free unit of the call's county, or else,
// now and then, of the other one; with none it tries again later, for
// two hours.
func (r *replay) dispatch(c *dayCall) {
	if c.ended() || c.active > 0 {
		return
	}
	now := r.clock.Now()
	var pick *dayUnit
	for _, linked := range []bool{false, true} {
		for _, u := range r.units {
			if (u.jur != c.jur) != linked || !u.free(now) || u.declined[c.id] {
				continue
			}
			if pick == nil || geo.Distance(u.home, c.p) < geo.Distance(pick.home, c.p) {
				pick = u
			}
		}
		if pick != nil || r.rng.IntN(2) == 0 {
			break
		}
	}
	if pick == nil {
		c.attempts++
		if now.Sub(c.created) < 2*time.Hour {
			r.after(2*time.Minute, func() { r.dispatch(c) })
		} else {
			r.stats["given up"]++
		}
		return
	}
	a, err := r.svc.Assign(r.t.Context(), dispatch.System, c.id, pick.id)
	must(r.t, err)
	pick.status, pick.asg, pick.call = dispatch.Dispatched, a.ID, c
	c.active++
	c.status, c.offered = dispatch.IncidentAssigned, true
	first(&c.dispatched, now)
	asg := a.ID
	r.after(r.secs(5, 60), func() { r.answer(pick, asg) })
}

// on reports whether u still holds assignment asg.
func (u *dayUnit) on(asg string) bool { return u.asg == asg }

// answer is the crew's answer to an offer: decline, accept, or nothing
// (it accepts by moving).
func (r *replay) answer(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c, now := u.call, r.clock.Now()
	switch n := r.rng.IntN(10); {
	case n == 0:
		must(r.t, r.svc.Ack(r.t.Context(), telemetry.Ack{Unit: u.id, Assignment: asg, Accepted: false, Reason: "too far", Time: now}))
		r.stats["declined"]++
		u.status, u.asg, u.call = dispatch.Available, "", nil
		u.declined[c.id] = true
		c.active--
		c.offered = false
		if c.active == 0 {
			c.status = dispatch.IncidentOpen
		}
		r.after(r.secs(30, 90), func() { r.dispatch(c) })
		return
	case n <= 2:
		r.stats["implicit acceptance"]++
	default:
		must(r.t, r.svc.Ack(r.t.Context(), telemetry.Ack{Unit: u.id, Assignment: asg, Accepted: true, Time: now}))
		first(&c.accepted, now)
		c.offered = false
	}
	r.after(r.secs(10, 90), func() { r.move(u, asg) })
}

// moving accepts an offer implicitly.
func (r *replay) moving(c *dayCall) {
	if c.offered {
		first(&c.accepted, r.clock.Now())
		c.offered = false
	}
}

func (r *replay) move(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c := u.call
	if r.rng.IntN(10) == 0 { // a crew that forgets en_route
		r.stats["no en_route"]++
		r.after(r.secs(180, 1200), func() { r.scene(u, asg) })
		return
	}
	r.press(u, dispatch.EnRoute)
	r.moving(c)
	first(&c.enRoute, r.clock.Now())
	switch n := r.rng.IntN(24); {
	case c.priority == 1 && n < 2:
		r.after(r.secs(60, 300), func() { r.abort(u, asg) })
		return
	case n == 2:
		r.after(r.secs(60, 300), func() { r.standDown(u, asg) })
		return
	}
	r.after(r.secs(180, 1200), func() { r.scene(u, asg) })
}

// abort: the unit breaks down on the way; the call goes back in the queue.
func (r *replay) abort(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c := u.call
	r.press(u, dispatch.OutOfService)
	r.stats["aborted"]++
	u.asg, u.call = "", nil
	u.declined[c.id] = true
	c.active--
	c.aborted = true
	if c.active == 0 {
		c.status = dispatch.IncidentOpen
	}
	r.after(r.secs(30, 120), func() { r.dispatch(c) })
	r.after(r.secs(1800, 3600), func() {
		if u.status == dispatch.OutOfService {
			r.press(u, dispatch.Available)
		}
	})
}

// standDown: the family took the patient; the dispatcher stands the unit
// down and closes the call before any unit reached it.
func (r *replay) standDown(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c := u.call
	_, err := r.svc.CancelAssignment(r.t.Context(), dispatch.System, c.id, asg, "taken by family")
	must(r.t, err)
	u.status, u.asg, u.call = dispatch.Available, "", nil
	c.active--
	c.status = dispatch.IncidentOpen
	_, err = r.svc.EndIncident(r.t.Context(), dispatch.System, c.id, dispatch.IncidentClosed, "taken by family")
	must(r.t, err)
	c.status, c.closed = dispatch.IncidentClosed, r.clock.Now()
	r.stats["closed before the scene"]++
}

func (r *replay) scene(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c := u.call
	r.press(u, dispatch.OnScene)
	r.moving(c)
	first(&c.onScene, r.clock.Now())
	if r.rng.IntN(10) < 7 {
		r.after(r.secs(300, 900), func() {
			if !u.on(asg) {
				return
			}
			r.press(u, dispatch.Transporting)
			r.after(r.secs(600, 1800), func() {
				if !u.on(asg) {
					return
				}
				r.press(u, dispatch.AtHospital)
				first(&c.atHosp, r.clock.Now())
				r.after(r.secs(300, 1200), func() { r.clear(u, asg) })
			})
		})
		return
	}
	r.after(r.secs(600, 1200), func() { r.clear(u, asg) })
}

// clear: the unit is done; the call closes by itself unless a unit
// aborted it, when the dispatcher closes it.
func (r *replay) clear(u *dayUnit, asg string) {
	if !u.on(asg) {
		return
	}
	c := u.call
	r.press(u, dispatch.Available)
	u.asg, u.call = "", nil
	c.active--
	if c.active > 0 {
		return
	}
	if !c.aborted {
		c.status, c.closed = dispatch.IncidentClosed, r.clock.Now()
		return
	}
	c.status = dispatch.IncidentOpen
	r.after(time.Minute, func() {
		if c.ended() || c.active > 0 {
			return
		}
		_, err := r.svc.EndIncident(r.t.Context(), dispatch.System, c.id, dispatch.IncidentClosed, "transported")
		must(r.t, err)
		c.status, c.closed = dispatch.IncidentClosed, r.clock.Now()
		r.stats["closed by hand"]++
	})
}

func (r *replay) cancel(c *dayCall) {
	if c.ended() {
		return
	}
	_, err := r.svc.EndIncident(r.t.Context(), dispatch.System, c.id, dispatch.IncidentCancelled, "false alarm")
	must(r.t, err)
	r.stats["cancelled"]++
	for _, u := range r.units {
		if u.call == c {
			u.status, u.asg, u.call = dispatch.Available, "", nil
		}
	}
	c.active = 0
	c.status, c.closed = dispatch.IncidentCancelled, r.clock.Now()
}

// testKPIDay replays a generated day of calls through a Service on the
// store and checks every count, rate and percentile of the KPI ledger
// against the test's own account of the day, at noon and at the end,
// for the city, each county and a period within the day.
func testKPIDay(t *testing.T, open func(t *testing.T) Stores) {
	clock := dispatchtest.NewClock(day0)
	svc, err := dispatch.NewService(t.Context(), dispatch.Config{
		Area: dayArea(t), Store: open(t).Store, Events: dispatch.NewBus(), Now: clock.Now, Logger: slog.New(slog.DiscardHandler),
	})
	must(t, err)
	r := &replay{t: t, svc: svc, clock: clock, rng: rand.New(rand.NewPCG(8, 2026)), seq: map[string]uint64{}, stats: map[string]int{}}
	for _, u := range dayUnits {
		r.units = append(r.units, &dayUnit{id: u.id, jur: u.jur, home: u.home, status: dispatch.Available, declined: map[string]bool{}})
	}
	r.fixes()
	byID := map[string]*dayUnit{}
	for _, u := range r.units {
		byID[u.id] = u
	}
	// Terminals that go quiet: A06 and B01 offline, A05 silent (stale).
	quiet := func(id string, from, to time.Duration, offline bool) {
		u := byID[id]
		r.after(from, func() {
			u.silent = true
			if offline {
				must(t, svc.Presence(t.Context(), telemetry.Presence{Unit: id, Online: false, Time: r.clock.Now()}))
				u.online = false
			}
		})
		r.after(to, func() { u.silent = false; r.fix(u, r.clock.Now()) })
	}
	quiet("A06", 6*time.Hour, 9*time.Hour, true)
	quiet("B01", 14*time.Hour, 15*time.Hour, true)
	quiet("A05", 18*time.Hour, 19*time.Hour, false)

	const calls = 120
	times := make([]int, calls)
	for i := range times {
		times[i] = r.rng.IntN(86400)
	}
	slices.Sort(times)
	for _, s := range times {
		var (
			jur   = dayA
			p     orb.Point
			urban bool
		)
		switch n := r.rng.IntN(20); {
		case n < 9: // in town
			p, urban = orb.Point{dayCentreA[0] + (r.rng.Float64()*2-1)*(dayUrbanHalf-0.001), dayCentreA[1] + (r.rng.Float64()*2-1)*(dayUrbanHalf-0.001)}, true
		case n < 17: // in the country of A
			for {
				p = orb.Point{dayCentreA[0] + (r.rng.Float64()*2-1)*0.199, dayCentreA[1] + (r.rng.Float64()*2-1)*0.199}
				if math.Abs(p[0]-dayCentreA[0]) > dayUrbanHalf+0.001 || math.Abs(p[1]-dayCentreA[1]) > dayUrbanHalf+0.001 {
					break
				}
			}
		default:
			jur, p = dayB, orb.Point{dayCentreB[0] + (r.rng.Float64()*2-1)*0.099, dayCentreB[1] + (r.rng.Float64()*2-1)*0.099}
		}
		r.after(day0.Add(time.Duration(s)*time.Second).Sub(r.clock.Now()), func() { r.call(jur, p, urban, 0) })
	}
	// A priority-1 call in the far corner just before noon: still on its
	// way at noon.
	r.after(12*time.Hour-4*time.Minute, func() { r.call(dayA, orb.Point{104.81, 29.39}, false, 1) })

	check := func(name string, from, to time.Time, scope string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			got, err := svc.KPIs(t.Context(), dispatch.System, scope, from, to)
			must(t, err)
			want := r.expect(from, to, scope, r.clock.Now())
			checkKPIs(t, got, want)
			r.stats["on-scene pending"] += want.OnScene.Pending
			r.stats["on-scene excluded"] += want.OnScene.Excluded
			r.stats["on-scene missed"] += len(want.OnScene.Misses)
		})
	}
	noon := day0.Add(12 * time.Hour)
	r.run(noon)
	check("noon/city", day0, noon, "")
	check("noon/A", day0, noon, dayA)
	check("noon/B", day0, noon, dayB)
	check("noon/city default period", time.Time{}, time.Time{}, dayCity)
	r.run(day0.Add(48 * time.Hour))
	end := day0.Add(24 * time.Hour)
	check("day/city", day0, end, dayCity)
	check("day/A", day0, end, dayA)
	check("day/B", day0, end, dayB)
	check("morning/A", day0.Add(6*time.Hour), day0.Add(12*time.Hour), dayA)

	for _, what := range []string{"satisfaction own", "satisfaction linked", "satisfaction missed", "declined", "implicit acceptance", "no en_route", "aborted", "closed by hand", "closed before the scene", "cancelled", "on-scene pending", "on-scene excluded", "on-scene missed"} {
		if r.stats[what] == 0 {
			t.Errorf("the generated day held no %q: %v", what, r.stats)
		}
	}
	t.Logf("the day: %d calls, %v", len(r.calls), r.stats)
}

// expect computes the ledger from the test's account: the calls of scope
// ("" or the city: all) that came in [from, to), as they stand at now.
func (r *replay) expect(from, to time.Time, scope string, now time.Time) dispatch.KPIs {
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	k := dispatch.KPIs{Jurisdiction: scope, From: from, To: to}
	k.Satisfaction.Target, k.OnScene.Target, k.OnScene.Priority, k.OnScene.DueAfter = 0.95, 0.98, 1, 3600
	var stages [6][]float64
	for _, c := range r.calls {
		if c.created.Before(from) || !c.created.Before(to) || (scope != "" && scope != dayCity && scope != c.jur) {
			continue
		}
		k.Calls++
		cleared := time.Time{}
		if c.status == dispatch.IncidentClosed {
			cleared = c.closed
		}
		for i, at := range []time.Time{c.dispatched, c.accepted, c.enRoute, c.onScene, c.atHosp, cleared} {
			if !at.IsZero() {
				stages[i] = append(stages[i], at.Sub(c.created).Seconds())
			}
		}
		k.Satisfaction.Recorded++
		switch c.sat {
		case dispatch.SatisfiedOwn:
			k.Satisfaction.Satisfied++
		case dispatch.SatisfiedLinked:
			k.Satisfaction.Satisfied++
			k.Satisfaction.ViaLinkage++
		default:
			k.Satisfaction.Missed++
			k.Satisfaction.Misses = append(k.Satisfaction.Misses, dispatch.Miss{Incident: c.id, Jurisdiction: c.jur, At: c.created})
		}
		if c.priority != 1 {
			continue
		}
		o := &k.OnScene
		o.Calls++
		switch {
		case !c.onScene.IsZero():
			o.Due++
			o.Reached++
		case c.status == dispatch.IncidentCancelled:
			o.Excluded++
		case c.status == dispatch.IncidentClosed || now.Sub(c.created) >= time.Hour:
			o.Due++
			o.Misses = append(o.Misses, dispatch.Miss{Incident: c.id, Jurisdiction: c.jur, At: c.created})
		default:
			o.Pending++
		}
	}
	rate := func(n, d int) *float64 {
		if d == 0 {
			return nil
		}
		v := float64(n) / float64(d)
		return &v
	}
	k.Satisfaction.Rate = rate(k.Satisfaction.Satisfied, k.Satisfaction.Recorded)
	k.OnScene.Rate = rate(k.OnScene.Reached, k.OnScene.Due)
	for i, st := range []*dispatch.StageKPI{&k.Stages.Dispatch, &k.Stages.Ack, &k.Stages.EnRoute, &k.Stages.OnScene, &k.Stages.AtHospital, &k.Stages.Clear} {
		if v := stages[i]; len(v) > 0 {
			p50, p90 := NearestRank(v, 50), NearestRank(v, 90)
			*st = dispatch.StageKPI{N: len(v), P50: &p50, P90: &p90}
		}
	}
	return k
}

// NearestRank is the smallest of vals such that at least pct% of vals
// are not above it, found by counting: the tests' own nearest-rank
// percentile, to check dispatch.Percentile against.
func NearestRank(vals []float64, pct int) float64 {
	best := math.Inf(1)
	for _, v := range vals {
		n := 0
		for _, w := range vals {
			if w <= v {
				n++
			}
		}
		if 100*n >= pct*len(vals) && v < best {
			best = v
		}
	}
	return best
}

// checkKPIs compares the ledger with the test's account; the misses by
// call (newest first) and with a reason.
func checkKPIs(t *testing.T, got *dispatch.KPIs, want dispatch.KPIs) {
	t.Helper()
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) || got.Jurisdiction != want.Jurisdiction {
		t.Errorf("scope %q [%s, %s), want %q [%s, %s)", got.Jurisdiction, got.From, got.To, want.Jurisdiction, want.From, want.To)
	}
	if got.Calls != want.Calls || want.Calls == 0 {
		t.Errorf("calls %d, want %d (and some)", got.Calls, want.Calls)
	}
	misses := func(name string, got, want []dispatch.Miss) {
		t.Helper()
		slices.SortFunc(want, func(a, b dispatch.Miss) int { return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.Incident, b.Incident)) })
		var g, w []string
		for _, m := range got {
			g = append(g, m.Incident+"@"+m.At.UTC().Format(time.TimeOnly)+"/"+m.Jurisdiction)
			if m.Reason == "" {
				t.Errorf("%s miss %s without a reason", name, m.Incident)
			}
		}
		for _, m := range want {
			w = append(w, m.Incident+"@"+m.At.UTC().Format(time.TimeOnly)+"/"+m.Jurisdiction)
		}
		if strings.Join(g, " ") != strings.Join(w, " ") {
			t.Errorf("%s misses\n got %v\nwant %v", name, g, w)
		}
	}
	gs, ws := got.Satisfaction, want.Satisfaction
	misses("satisfaction", gs.Misses, ws.Misses)
	gs.Misses, ws.Misses = nil, nil
	if s := fmt.Sprint(gs.Target, gs.Recorded, gs.Satisfied, gs.ViaLinkage, gs.Missed, gs.Unrecorded, deref(gs.Rate)); s != fmt.Sprint(ws.Target, ws.Recorded, ws.Satisfied, ws.ViaLinkage, ws.Missed, ws.Unrecorded, deref(ws.Rate)) {
		t.Errorf("satisfaction %+v rate %s\nwant %+v rate %s", gs, deref(gs.Rate), ws, deref(ws.Rate))
	}
	gon, won := got.OnScene, want.OnScene
	misses("on-scene", gon.Misses, won.Misses)
	gon.Misses, won.Misses = nil, nil
	if s := fmt.Sprint(gon.Priority, gon.Target, gon.DueAfter, gon.Calls, gon.Due, gon.Reached, gon.Pending, gon.Excluded, deref(gon.Rate)); s != fmt.Sprint(won.Priority, won.Target, won.DueAfter, won.Calls, won.Due, won.Reached, won.Pending, won.Excluded, deref(won.Rate)) {
		t.Errorf("on scene %+v rate %s\nwant %+v rate %s", gon, deref(gon.Rate), won, deref(won.Rate))
	}
	names := []string{"dispatch", "ack", "en_route", "on_scene", "at_hospital", "clear"}
	g := []dispatch.StageKPI{got.Stages.Dispatch, got.Stages.Ack, got.Stages.EnRoute, got.Stages.OnScene, got.Stages.AtHospital, got.Stages.Clear}
	w := []dispatch.StageKPI{want.Stages.Dispatch, want.Stages.Ack, want.Stages.EnRoute, want.Stages.OnScene, want.Stages.AtHospital, want.Stages.Clear}
	for i := range names {
		if gs, ws := fmt.Sprint(g[i].N, deref(g[i].P50), deref(g[i].P90)), fmt.Sprint(w[i].N, deref(w[i].P50), deref(w[i].P90)); gs != ws {
			t.Errorf("stage %s: n p50 p90 = %s, want %s", names[i], gs, ws)
		}
	}
}

func deref(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
