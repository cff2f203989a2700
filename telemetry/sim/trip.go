package sim

import (
	"container/heap"
	"math"
	"sort"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Driving model constants, in scenario time.
const (
	accel        = 1.2  // m/s², both speeding up and braking
	headingProbe = 2.0  // metres either side of a point to measure heading
	clearStep    = 50.0 // metres between samples when checking a leg stays inside
	maxSamples   = 400  // samples per leg at most
	gridCells    = 96   // cells along the longer side of route's search grid
	buffer       = 15.0 // metres either side of a leg that must be inside too
	weaveMargin  = 1.2  // a leg weaves only if a weave this much wider stays inside
)

// metresPerDegree is the length of one degree of latitude on the sphere
// geo measures on.
const metresPerDegree = geo.EarthRadius * math.Pi / 180

// wiggle is the mild lateral weave of a drive: a sine of Amp metres and
// Wavelength metres, faded out at every waypoint.
type wiggle struct {
	Amp, Wavelength, Phase float64
}

// trip is one drive in scenario time: straight legs between waypoints,
// with a trapezoidal speed profile over the whole trip (speeding up at
// accel to the cruise speed, braking at accel to stop at the end). There
// are no roads yet; legs are straight lines. A trip is immutable and pure.
type trip struct {
	path   []orb.Point
	cum    []float64 // metres along the path at each waypoint
	length float64   // metres
	vmax   float64   // m/s, the cruise speed or less on a short trip
	ta, tc float64   // seconds speeding up (and braking), seconds cruising
	wig    wiggle
	amps   []float64 // weave amplitude of each leg: wig.Amp, or 0 where it would leave the bounds
}

// newTrip returns a drive along path (at least one point) at cruiseKmh.
// inside, when not nil, keeps the weave within bounds: a leg whose weave
// would leave them is driven straight.
func newTrip(path []orb.Point, cruiseKmh float64, w wiggle, inside func(orb.Point) bool) *trip {
	t := &trip{path: path, cum: make([]float64, len(path)), wig: w, amps: make([]float64, len(path))}
	for i := 1; i < len(path); i++ {
		t.cum[i] = t.cum[i-1] + geo.Distance(path[i-1], path[i])
	}
	t.length = t.cum[len(t.cum)-1]
	if w.Wavelength > 0 {
		for i := range len(path) - 1 {
			t.amps[i] = w.Amp
			if inside != nil && !clear(path[i], path[i+1], inside, w.Amp*weaveMargin+buffer) {
				t.amps[i] = 0
			}
		}
	}
	v := math.Max(cruiseKmh/3.6, 0.1)
	if d := v * v / accel; d > t.length { // no room to reach cruise speed
		v = math.Sqrt(accel * t.length)
	}
	if v > 0 {
		t.vmax, t.ta = v, v/accel
		t.tc = (t.length - v*t.ta) / v
	}
	return t
}

// Duration returns how long the drive takes in scenario time.
func (t *trip) Duration() time.Duration {
	return seconds(2*t.ta + t.tc)
}

// End returns where the drive ends.
func (t *trip) End() orb.Point { return t.path[len(t.path)-1] }

// At returns the position, speed (km/h) and heading (degrees clockwise
// from north) d into the drive. Before it the vehicle stands at the start,
// after it at the end, both with speed 0.
func (t *trip) At(d time.Duration) (p orb.Point, speedKmh, heading float64) {
	s, v := t.progress(d.Seconds())
	return t.pointAt(s), v * 3.6, t.headingAt(s)
}

// progress returns the distance covered (m) and the speed (m/s) after sec
// seconds.
func (t *trip) progress(sec float64) (s, v float64) {
	total := 2*t.ta + t.tc
	switch {
	case sec <= 0 || t.vmax == 0:
		return 0, 0
	case sec < t.ta:
		return accel * sec * sec / 2, accel * sec
	case sec < t.ta+t.tc:
		return t.vmax*t.ta/2 + t.vmax*(sec-t.ta), t.vmax
	case sec < total:
		r := total - sec
		return t.length - accel*r*r/2, accel * r
	}
	return t.length, 0
}

// pointAt returns the position s metres along the path, weave included.
func (t *trip) pointAt(s float64) orb.Point {
	if len(t.path) == 1 {
		return t.path[0]
	}
	s = math.Max(0, math.Min(s, t.length))
	i := sort.SearchFloat64s(t.cum, s) - 1
	i = max(0, min(i, len(t.path)-2))
	leg := t.cum[i+1] - t.cum[i]
	if leg == 0 {
		return t.path[i]
	}
	u := (s - t.cum[i]) / leg
	return t.weave(i, u, s, t.amps[i])
}

// weave returns the point a fraction u along leg i, s metres along the
// path, moved sideways by the weave of amplitude amp.
func (t *trip) weave(i int, u, s, amp float64) orb.Point {
	a, b := t.path[i], t.path[i+1]
	base := orb.Point{a[0] + (b[0]-a[0])*u, a[1] + (b[1]-a[1])*u}
	if amp == 0 {
		return base
	}
	off := amp * math.Sin(math.Pi*u) * math.Sin(2*math.Pi*s/t.wig.Wavelength+t.wig.Phase)
	east, north := local(a, b)
	l := math.Hypot(east, north)
	return offset(base, -north/l*off, east/l*off) // left of the direction of travel
}

// headingAt returns the direction of travel s metres along the path.
func (t *trip) headingAt(s float64) float64 {
	lo, hi := math.Max(0, s-headingProbe), math.Min(t.length, s+headingProbe)
	a, b := t.pointAt(lo), t.pointAt(hi)
	if a == b { // a stop or a zero-length trip: the direction of the path
		if len(t.path) < 2 {
			return 0
		}
		a, b = t.path[0], t.path[len(t.path)-1]
	}
	return bearing(a, b)
}

// route returns waypoints from from to to. When inside is not nil, both
// ends lie inside and the straight line leaves the bounds (a concave
// border, a neighbouring county in the way), it searches a grid around the
// two ends for a way that stays inside and straightens it into as few legs
// as it can. There are no roads yet: this only keeps a vehicle from
// driving across land it never would. When no way is found, or an end lies
// outside, the drive is one straight leg.
func route(from, to orb.Point, inside func(orb.Point) bool) []orb.Point {
	straight := []orb.Point{from, to}
	if inside == nil || !inside(from) || !inside(to) || clear(from, to, inside, buffer) {
		return straight
	}
	p := gridPath(from, to, inside)
	if p == nil {
		return straight
	}
	// Leg by leg, go straight to the farthest waypoint in sight, found by
	// bisection: sight is not monotonic along the way, but nearly so, and
	// a long way then costs a few checks per leg instead of a check per
	// pair of waypoints.
	out := []orb.Point{from}
	for i := 0; i < len(p)-1; {
		j, lo, hi := i+1, i+2, len(p)-1
		for lo <= hi {
			mid := (lo + hi) / 2
			if clear(p[i], p[mid], inside, buffer) {
				j, lo = mid, mid+1
			} else {
				hi = mid - 1
			}
		}
		out = append(out, p[j])
		i = j
	}
	return out
}

// gridPath finds a way from from to to through the cells of a square grid
// whose centres lie inside, by A* over the 8 neighbours of each cell: a
// step goes straight between cell centres (from and to in their own
// cells), stays inside, and cuts no corner. The grid spans the two ends
// and a margin as wide as their distance (at least 2 km). It returns from,
// the centres of the cells between, and to; nil when there is no way.
func gridPath(from, to orb.Point, inside func(orb.Point) bool) []orb.Point {
	east, north := local(from, to)
	margin := math.Max(math.Hypot(east, north), 2000)
	x0, y0 := math.Min(0, east)-margin, math.Min(0, north)-margin
	w, h := math.Abs(east)+2*margin, math.Abs(north)+2*margin
	size := math.Max(w, h) / gridCells
	nx, ny := int(math.Ceil(w/size)), int(math.Ceil(h/size))
	centre := func(c int) orb.Point {
		return offset(from, x0+(float64(c%nx)+0.5)*size, y0+(float64(c/nx)+0.5)*size)
	}
	cellOf := func(x, y float64) int {
		return min(int((y-y0)/size), ny-1)*nx + min(int((x-x0)/size), nx-1)
	}
	start, goal := cellOf(0, 0), cellOf(east, north)
	open := make([]int8, nx*ny) // 0 unknown, 1 inside, 2 outside
	open[start], open[goal] = 1, 1
	passable := func(c int) bool {
		if open[c] == 0 {
			open[c] = 2
			if inside(centre(c)) {
				open[c] = 1
			}
		}
		return open[c] == 1
	}
	point := func(c int) orb.Point { // where a path through cell c passes
		switch c {
		case start:
			return from
		case goal:
			return to
		}
		return centre(c)
	}
	dist := func(a, b int) float64 { return math.Hypot(float64(a%nx-b%nx), float64(a/nx-b/nx)) }

	g := make([]float64, nx*ny)
	for i := range g {
		g[i] = math.Inf(1)
	}
	prev := make([]int, nx*ny)
	g[start] = 0
	q := &cellQueue{{start, dist(start, goal)}}
	for q.Len() > 0 {
		c := heap.Pop(q).(cellCost)
		if c.cell == goal {
			break
		}
		if c.f > g[c.cell]+dist(c.cell, goal)+1e-9 {
			continue // a stale entry
		}
		cx, cy := c.cell%nx, c.cell/nx
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				x, y := cx+dx, cy+dy
				if (dx == 0 && dy == 0) || x < 0 || y < 0 || x >= nx || y >= ny {
					continue
				}
				n := y*nx + x
				if !passable(n) || dx != 0 && dy != 0 && !(passable(cy*nx+x) && passable(y*nx+cx)) {
					continue // outside, or a diagonal cutting a corner
				}
				if d := g[c.cell] + math.Hypot(float64(dx), float64(dy)); d < g[n] && clear(point(c.cell), point(n), inside, 0) {
					g[n], prev[n] = d, c.cell
					heap.Push(q, cellCost{n, d + dist(n, goal)})
				}
			}
		}
	}
	if math.IsInf(g[goal], 1) {
		return nil
	}
	var cells []int
	for c := goal; c != start; c = prev[c] {
		cells = append(cells, c)
	}
	path := []orb.Point{from}
	for i := len(cells) - 1; i >= 0; i-- {
		path = append(path, point(cells[i]))
	}
	return path
}

// cellCost is a grid cell in gridPath's open set with its estimated total
// cost.
type cellCost struct {
	cell int
	f    float64
}

// cellQueue is a min-heap of cells by cost.
type cellQueue []cellCost

func (q cellQueue) Len() int           { return len(q) }
func (q cellQueue) Less(i, j int) bool { return q[i].f < q[j].f }
func (q cellQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *cellQueue) Push(x any)        { *q = append(*q, x.(cellCost)) }
func (q *cellQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// clear reports whether the straight leg a-b lies inside with a margin of
// half metres either side (narrowing to none at its ends), by samples
// clearStep apart. Sampling can miss a sliver of border narrower than
// that; the margin keeps such misses to corners the leg passes at a
// distance, and a vehicle cutting one by a few metres is within GPS error.
func clear(a, b orb.Point, inside func(orb.Point) bool, half float64) bool {
	l := geo.Distance(a, b)
	n := max(1, min(int(math.Ceil(l/clearStep)), maxSamples))
	east, north := local(a, b)
	if l > 0 {
		east, north = east/l, north/l
	}
	for i := 0; i <= n; i++ {
		u := float64(i) / float64(n)
		p := orb.Point{a[0] + (b[0]-a[0])*u, a[1] + (b[1]-a[1])*u}
		if !inside(p) {
			return false
		}
		if w := math.Min(half, l*math.Min(u, 1-u)); w > 0 {
			if !inside(offset(p, -north*w, east*w)) || !inside(offset(p, north*w, -east*w)) {
				return false
			}
		}
	}
	return true
}

// local returns b relative to a in metres east and north, on a plane
// tangent at a (good for the few tens of kilometres of a drive).
func local(a, b orb.Point) (east, north float64) {
	return (b[0] - a[0]) * metresPerDegree * math.Cos(a[1]*math.Pi/180), (b[1] - a[1]) * metresPerDegree
}

// offset moves p by east and north metres.
func offset(p orb.Point, east, north float64) orb.Point {
	return orb.Point{p[0] + east/(metresPerDegree*math.Cos(p[1]*math.Pi/180)), p[1] + north/metresPerDegree}
}

// bearing returns the direction from a to b in degrees clockwise from
// north, in [0, 360).
func bearing(a, b orb.Point) float64 {
	east, north := local(a, b)
	h := math.Atan2(east, north) * 180 / math.Pi
	if h < 0 {
		h += 360
	}
	return h
}

// seconds converts seconds to a Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
