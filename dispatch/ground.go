package dispatch

import (
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// ground is what the engine derives from the area once, when the service
// starts, so that ranking a call scans nothing of the area: each
// jurisdiction's ancestors, neighbours and radius policy, the urban zones
// and their radii, how many registered units each part of the escalation
// ladder holds, and which capabilities the fleet has at all.
type ground struct {
	places map[string]*place
	zones  []zone
	caps   capSet // the capabilities at least one registered unit carries
}

// place is one jurisdiction as the engine sees it.
type place struct {
	Jurisdiction
	chain      []string        // its id, its parent's, and so on to the top
	neighbours map[string]bool // siblings whose boundaries touch its own
	radii      geo.RadiusPolicy
	zones      []zone // its urban zones
	units      [nBuckets]int
}

// zone is an urban zone with its resolved search radius.
type zone struct {
	region *geo.Region
	radius float64
}

// newGround derives the ground of area, with def the radii that neither a
// jurisdiction nor its ancestors set.
func newGround(a *Area, def geo.RadiusPolicy) *ground {
	g := &ground{places: make(map[string]*place, len(a.Jurisdictions))}
	for _, j := range a.Jurisdictions {
		g.places[j.ID] = &place{Jurisdiction: j, neighbours: map[string]bool{}}
	}
	for _, p := range g.places {
		p.radii = p.Radii
		for id := p.ID; id != "" && len(p.chain) <= len(g.places); {
			p.chain = append(p.chain, id)
			up, ok := g.places[id]
			if !ok {
				break
			}
			p.radii = p.radii.Or(up.Radii)
			id = up.Parent
		}
		p.radii = p.radii.Or(def)
	}
	for id, ns := range a.Neighbours(NeighbourTolerance) {
		for _, n := range ns {
			g.places[id].neighbours[n] = true
		}
	}
	for _, z := range a.Zones {
		p := g.places[z.Jurisdiction]
		if p == nil {
			continue
		}
		zn := zone{region: z.Region, radius: z.RadiusM}
		if zn.radius == 0 {
			zn.radius = p.radii.Urban
		}
		p.zones = append(p.zones, zn)
		g.zones = append(g.zones, zn)
	}
	perJur := map[string]int{}
	for i := range a.Units {
		perJur[a.Units[i].Jurisdiction]++
		g.caps |= capsOf(a.Units[i].Capabilities)
	}
	for _, home := range g.places {
		for jur, n := range perJur {
			if b, ok := g.bucket(home.ID, jur); ok {
				home.units[b] += n
			}
		}
	}
	return g
}

// The buckets of the escalation ladder, by where a unit belongs: the call's
// own jurisdiction (steps own and own_widened), a neighbouring county of
// the same city, and the rest of the city.
const (
	bucketOwn = iota
	bucketNeighbour
	bucketCity
	nBuckets
)

// bucket says which part of the ladder of a call in jurisdiction home a
// unit of jurisdiction jur belongs to, if any: own when jur is home or
// lies beneath it; neighbour when it is (or lies beneath) a sibling of
// home whose boundary touches home's; city when it lies elsewhere beneath
// home's parent, or is that parent. Units of other cities are in none.
func (g *ground) bucket(home, jur string) (int, bool) {
	return g.bucketOf(g.places[home], jur)
}

// bucketOf is bucket with the home jurisdiction's place.
func (g *ground) bucketOf(h *place, jur string) (int, bool) {
	u := g.places[jur]
	if h == nil || u == nil {
		return 0, false
	}
	for _, id := range u.chain {
		if id == h.ID {
			return bucketOwn, true
		}
	}
	city := h.Parent
	if city == "" {
		return 0, false
	}
	for i, id := range u.chain {
		if id != city {
			continue
		}
		if i > 0 && h.neighbours[u.chain[i-1]] {
			return bucketNeighbour, true
		}
		return bucketCity, true
	}
	return 0, false
}

// ladder returns the first and the widest search radius for a call at p in
// jurisdiction jur and zone z: an urban zone's own radius, else the
// jurisdiction's policy.
func (g *ground) ladder(jur string, p orb.Point, z geo.Zone) (first, widest float64) {
	h := g.places[jur]
	if h == nil {
		return 0, 0
	}
	if z == geo.Urban {
		for _, zn := range h.zones {
			if zn.region.Contains(p) {
				return zn.radius, zn.radius
			}
		}
	}
	return h.radii.Ladder(z)
}

// zoneAt returns the zone a unit at p drives from: urban inside any urban
// zone of the area, else rural.
func (g *ground) zoneAt(p orb.Point) geo.Zone {
	for _, z := range g.zones {
		if z.region.Contains(p) {
			return geo.Urban
		}
	}
	return geo.Rural
}

// capSet is a set of unit capabilities.
type capSet uint8

// The capabilities a call can need.
const (
	capALS capSet = 1 << iota
	capIncubator
)

// capsOf returns the set of the capabilities in caps that a call can need.
func capsOf(caps []string) capSet {
	var s capSet
	for _, c := range caps {
		switch c {
		case ALS:
			s |= capALS
		case NeoCare:
			s |= capIncubator
		}
	}
	return s
}

// needsOf returns what a call needs of the unit sent to it: an ALS crew
// for priority 1, a transport incubator for a neonatal call.
func needsOf(inc *Incident) capSet {
	var s capSet
	if inc.Priority == 1 {
		s |= capALS
	}
	if inc.Category == CatNeonatal {
		s |= capIncubator
	}
	return s
}
