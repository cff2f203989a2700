package dispatch

import (
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
}

// UrbanZone is a built-up area inside a jurisdiction where the urban
// service radius applies. Everything else inside the jurisdiction is rural.
type UrbanZone struct {
	ID           string
	Name         string
	Jurisdiction string
	Region       *geo.Region
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
