package dispatch

import (
	"math"
	"slices"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Centre is one of the "five centres" a destination hospital can hold.
type Centre string

// The five centres of China's regional emergency network.
const (
	ChestPain Centre = "chest_pain"
	Stroke    Centre = "stroke"
	Trauma    Centre = "trauma"
	Maternal  Centre = "maternal"
	Neonatal  Centre = "neonatal"
)

// Centres lists the five centres in their usual order.
var Centres = []Centre{ChestPain, Stroke, Trauma, Maternal, Neonatal}

// Valid reports whether c is one of the five centres.
func (c Centre) Valid() bool { return slices.Contains(Centres, c) }

// Jurisdiction is an administrative area that owns units and calls: a
// county (or district) beneath a city. IDs are the six-digit adcodes.
type Jurisdiction struct {
	ID     string // adcode, e.g. "510322"
	Name   string
	Parent string      // the city's adcode, "" for a top level
	Region *geo.Region // nil for a city known only as the parent of its counties
	// Consent is how the jurisdiction answers requests for its units
	// from other counties, as the area file says ("" is ask); a policy
	// set over the API overrides it.
	Consent ConsentPolicy
	// Radii is the jurisdiction's own radius policy; a zero radius is
	// taken from its parent, and from the service's default at the top.
	Radii geo.RadiusPolicy
}

// UrbanZone is a built-up area inside a jurisdiction where the urban
// service radius applies. Everything else inside the jurisdiction is rural.
type UrbanZone struct {
	ID           string
	Name         string
	Jurisdiction string
	Region       *geo.Region
	// RadiusM is the zone's own search radius in metres; 0 takes the
	// urban radius of its jurisdiction.
	RadiusM float64
}

// Station is where units are posted: a county hospital, a township
// health centre or a village post.
type Station struct {
	ID           string
	Name         string
	Jurisdiction string
	Kind         string // county_hospital, township, village, standalone
	Location     orb.Point
	Illustrative bool // placed by hand for the demo, not surveyed
}

// Hospital is a possible destination with its five-centre capabilities.
type Hospital struct {
	ID           string
	Name         string
	Jurisdiction string
	Level        string // e.g. "tertiary", "secondary", "primary"
	Location     orb.Point
	Centres      []Centre
	Illustrative bool
}

// Has reports whether h holds centre c.
func (h Hospital) Has(c Centre) bool { return slices.Contains(h.Centres, c) }

// Area is everything Lifeline knows about the ground it serves: the
// jurisdiction hierarchy, urban zones, stations, hospitals and the unit
// registry. It is loaded once at start and read concurrently afterwards.
type Area struct {
	Name          string
	Jurisdictions []Jurisdiction
	Zones         []UrbanZone
	Stations      []Station
	Hospitals     []Hospital
	Units         []Unit
}

// Validate checks the references inside the area: unique ids, parents,
// jurisdictions, stations and capabilities that exist.
func (a *Area) Validate() error {
	jur := map[string]bool{}
	for _, j := range a.Jurisdictions {
		if j.ID == "" || jur[j.ID] {
			return Errorf(CodeInvalid, "jurisdiction %q: empty or duplicate id", j.ID)
		}
		jur[j.ID] = true
		if j.Consent != "" && !j.Consent.Valid() {
			return Errorf(CodeInvalid, "jurisdiction %s: consent %q: want auto or ask", j.ID, j.Consent)
		}
		if err := j.Radii.Check(); err != nil {
			return Errorf(CodeInvalid, "jurisdiction %s: %v", j.ID, err)
		}
	}
	for _, j := range a.Jurisdictions {
		if j.Parent != "" && !jur[j.Parent] {
			return Errorf(CodeInvalid, "jurisdiction %s: parent %q is not in the area", j.ID, j.Parent)
		}
	}
	ids := map[string]bool{}
	seen := func(kind, id string) error {
		if id == "" {
			return Errorf(CodeInvalid, "%s with an empty id", kind)
		}
		if ids[kind+"/"+id] {
			return Errorf(CodeInvalid, "%s %q: duplicate id", kind, id)
		}
		ids[kind+"/"+id] = true
		return nil
	}
	inJur := func(kind, id, j string) error {
		if !jur[j] {
			return Errorf(CodeInvalid, "%s %s: jurisdiction %q is not in the area", kind, id, j)
		}
		return nil
	}
	for _, z := range a.Zones {
		if err := seen("zone", z.ID); err != nil {
			return err
		}
		if err := inJur("zone", z.ID, z.Jurisdiction); err != nil {
			return err
		}
		if z.Region == nil {
			return Errorf(CodeInvalid, "zone %s: no geometry", z.ID)
		}
		if err := geo.CheckRadius(z.RadiusM); err != nil {
			return Errorf(CodeInvalid, "zone %s: radius: %v", z.ID, err)
		}
	}
	stations := map[string]bool{}
	for _, s := range a.Stations {
		if err := seen("station", s.ID); err != nil {
			return err
		}
		if err := inJur("station", s.ID, s.Jurisdiction); err != nil {
			return err
		}
		if !geo.ValidLatLon(s.Location.Lat(), s.Location.Lon()) {
			return Errorf(CodeInvalid, "station %s: location out of range", s.ID)
		}
		stations[s.ID] = true
	}
	for _, h := range a.Hospitals {
		if err := seen("hospital", h.ID); err != nil {
			return err
		}
		if err := inJur("hospital", h.ID, h.Jurisdiction); err != nil {
			return err
		}
		if !geo.ValidLatLon(h.Location.Lat(), h.Location.Lon()) {
			return Errorf(CodeInvalid, "hospital %s: location out of range", h.ID)
		}
		for _, c := range h.Centres {
			if !c.Valid() {
				return Errorf(CodeInvalid, "hospital %s: unknown centre %q (want one of %v)", h.ID, c, Centres)
			}
		}
	}
	for _, u := range a.Units {
		if err := seen("unit", u.ID); err != nil {
			return err
		}
		if err := u.Validate(); err != nil {
			return err
		}
		if err := inJur("unit", u.ID, u.Jurisdiction); err != nil {
			return err
		}
		if u.Station != "" && !stations[u.Station] {
			return Errorf(CodeInvalid, "unit %s: station %q is not in the area", u.ID, u.Station)
		}
	}
	return nil
}

// Jurisdiction returns the jurisdiction with id.
func (a *Area) Jurisdiction(id string) (Jurisdiction, bool) {
	for _, j := range a.Jurisdictions {
		if j.ID == id {
			return j, true
		}
	}
	return Jurisdiction{}, false
}

// Station returns the station with id.
func (a *Area) Station(id string) (Station, bool) {
	for _, s := range a.Stations {
		if s.ID == id {
			return s, true
		}
	}
	return Station{}, false
}

// Locate finds the most specific jurisdiction holding p (a county before
// its city) and whether p lies in one of its urban zones.
func (a *Area) Locate(p orb.Point) (Jurisdiction, geo.Zone, bool) {
	var found *Jurisdiction
	for i := range a.Jurisdictions {
		j := &a.Jurisdictions[i]
		if j.Region == nil || !j.Region.Contains(p) {
			continue
		}
		if found == nil || j.Parent == found.ID {
			found = j
		}
	}
	if found == nil {
		return Jurisdiction{}, "", false
	}
	for _, z := range a.Zones {
		if z.Jurisdiction == found.ID && z.Region.Contains(p) {
			return *found, geo.Urban, true
		}
	}
	return *found, geo.Rural, true
}

// Within reports whether jurisdiction id is scope or lies beneath it
// (a city console sees every county beneath the city).
func (a *Area) Within(id, scope string) bool {
	for range len(a.Jurisdictions) + 1 {
		if id == scope {
			return true
		}
		j, ok := a.Jurisdiction(id)
		if !ok || j.Parent == "" {
			return false
		}
		id = j.Parent
	}
	return false
}

// NeighbourTolerance is how close, in metres, the boundaries of two
// jurisdictions must come for them to count as neighbours. Boundaries
// converted from GCJ-02 and rounded to six decimals meet within a metre
// or two; 100 m also forgives a hand-drawn outline, and is far less than
// any county is wide.
const NeighbourTolerance = 100

// Neighbours returns, by jurisdiction id, the jurisdictions of the same
// parent whose boundaries touch, overlap or come within tolerance metres
// of its own, sorted by id. Jurisdictions without a boundary or a parent
// have none. It compares every pair of siblings once, so it is meant for
// when the area is loaded, never for a call.
func (a *Area) Neighbours(tolerance float64) map[string][]string {
	out := map[string][]string{}
	for i := range a.Jurisdictions {
		x := &a.Jurisdictions[i]
		for j := i + 1; j < len(a.Jurisdictions); j++ {
			y := &a.Jurisdictions[j]
			if x.Parent == "" || x.Parent != y.Parent || x.Region == nil || y.Region == nil {
				continue
			}
			if regionsNear(x.Region, y.Region, tolerance) {
				out[x.ID] = append(out[x.ID], y.ID)
				out[y.ID] = append(out[y.ID], x.ID)
			}
		}
	}
	for _, ns := range out {
		slices.Sort(ns)
	}
	return out
}

// regionsNear reports whether the boundaries of a and b come within tol
// metres of each other, or one region lies inside the other. Distances
// are planar in a local projection about the two regions, exact enough
// at county scale; only the boundary segments near the other region are
// compared.
func regionsNear(a, b *geo.Region, tol float64) bool {
	ab, bb := a.Bound(), b.Bound()
	lat0 := (ab.Min.Lat() + ab.Max.Lat() + bb.Min.Lat() + bb.Max.Lat()) / 4
	ky := geo.EarthRadius * math.Pi / 180 // metres per degree of latitude
	kx := ky * max(math.Cos(lat0*math.Pi/180), 0.01)
	grow := func(r orb.Bound) orb.Bound {
		dx, dy := tol/kx, tol/ky
		return orb.Bound{Min: orb.Point{r.Min[0] - dx, r.Min[1] - dy}, Max: orb.Point{r.Max[0] + dx, r.Max[1] + dy}}
	}
	if !grow(ab).Intersects(bb) {
		return false
	}
	project := func(p orb.Point) orb.Point { return orb.Point{(p[0] - ab.Min[0]) * kx, (p[1] - ab.Min[1]) * ky} }
	near := func(r *geo.Region, box orb.Bound) [][2]orb.Point {
		var segs [][2]orb.Point
		for _, poly := range r.Geometry() {
			for _, ring := range poly {
				for i := 1; i < len(ring); i++ {
					s := orb.Bound{Min: ring[i-1], Max: ring[i-1]}.Extend(ring[i])
					if s.Intersects(box) {
						segs = append(segs, [2]orb.Point{project(ring[i-1]), project(ring[i])})
					}
				}
			}
		}
		return segs
	}
	sa, sb := near(a, grow(bb)), near(b, grow(ab))
	for _, s := range sa {
		for _, t := range sb {
			if segmentDistance(s, t) <= tol {
				return true
			}
		}
	}
	// No boundaries near each other: one region may still hold the other.
	pa, pb := a.Geometry()[0][0][0], b.Geometry()[0][0][0]
	return b.Contains(pa) || a.Contains(pb)
}

// segmentDistance is the planar distance between segments s and t.
func segmentDistance(s, t [2]orb.Point) float64 {
	if segmentsCross(s, t) {
		return 0
	}
	return min(pointSegment(s[0], t), pointSegment(s[1], t), pointSegment(t[0], s), pointSegment(t[1], s))
}

// pointSegment is the planar distance from p to segment s.
func pointSegment(p orb.Point, s [2]orb.Point) float64 {
	dx, dy := s[1][0]-s[0][0], s[1][1]-s[0][1]
	l := dx*dx + dy*dy
	f := 0.0
	if l > 0 {
		f = max(0, min(1, ((p[0]-s[0][0])*dx+(p[1]-s[0][1])*dy)/l))
	}
	return math.Hypot(p[0]-s[0][0]-f*dx, p[1]-s[0][1]-f*dy)
}

// segmentsCross reports whether segments s and t cross properly (each
// one's ends on opposite sides of the other); touching ends are near by
// pointSegment anyway.
func segmentsCross(s, t [2]orb.Point) bool {
	side := func(a, b, c orb.Point) float64 { return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0]) }
	d1, d2 := side(t[0], t[1], s[0]), side(t[0], t[1], s[1])
	d3, d4 := side(s[0], s[1], t[0]), side(s[0], s[1], t[1])
	return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))
}
