package geojson

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/geo"
)

// Encode writes a in the area-file format, one feature a line:
// jurisdictions, urban zones, stations, hospitals and units, each in the
// order of a. A region with a single polygon is written as a Polygon. For
// an area that Decode accepts, Decode(Encode(a)) describes the same area
// and Encode of that gives the same bytes. Encode does not validate a; it
// fails only on coordinates JSON cannot hold (NaN, ±Inf).
func Encode(a *dispatch.Area) ([]byte, error) {
	var features []any
	add := func(props any, g orb.Geometry) {
		features = append(features, featureOut{Type: "Feature", Properties: props, Geometry: geometryOf(g)})
	}
	for _, j := range a.Jurisdictions {
		add(jurisdictionProps{Kind: KindJurisdiction, ID: j.ID, Name: j.Name, Parent: j.Parent, Consent: string(j.Consent),
			RadiusUrbanM: j.Radii.Urban, RadiusRuralM: j.Radii.Rural, RadiusRuralMaxM: j.Radii.RuralMax}, outline(j.Region))
	}
	for _, z := range a.Zones {
		add(zoneProps{Kind: KindZone, ID: z.ID, Name: z.Name, Jurisdiction: z.Jurisdiction, RadiusM: z.RadiusM}, outline(z.Region))
	}
	for _, s := range a.Stations {
		add(stationProps{Kind: KindStation, ID: s.ID, Name: s.Name, Jurisdiction: s.Jurisdiction,
			StationKind: s.Kind, Illustrative: s.Illustrative}, s.Location)
	}
	for _, h := range a.Hospitals {
		add(hospitalProps{Kind: KindHospital, ID: h.ID, Name: h.Name, Jurisdiction: h.Jurisdiction,
			Level: h.Level, Centres: nonNil(h.Centres), Illustrative: h.Illustrative}, h.Location)
	}
	for _, u := range a.Units {
		add(unitProps{Kind: KindUnit, ID: u.ID, Callsign: u.Callsign, Station: u.Station,
			Jurisdiction: u.Jurisdiction, Capabilities: nonNil(u.Capabilities), Illustrative: u.Illustrative}, nil)
	}

	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","lifeline":`)
	if err := marshal(&b, header{Version: Version, Name: a.Name}); err != nil {
		return nil, err
	}
	b.WriteString(`,"features":[`)
	for i, f := range features {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		if err := marshal(&b, f); err != nil {
			return nil, err
		}
	}
	b.WriteString("\n]}\n")
	return b.Bytes(), nil
}

type featureOut struct {
	Type       string       `json:"type"`
	Properties any          `json:"properties"`
	Geometry   *geometryOut `json:"geometry"`
}

type geometryOut struct {
	Type        string       `json:"type"`
	Coordinates orb.Geometry `json:"coordinates"`
}

// geometryOf returns the GeoJSON geometry of g, a Point, Polygon or
// MultiPolygon, or nil for none.
func geometryOf(g orb.Geometry) *geometryOut {
	if g == nil {
		return nil
	}
	return &geometryOut{Type: g.GeoJSONType(), Coordinates: g}
}

// outline returns a region's outline, a Polygon when it has one, or nil
// when there is no region.
func outline(r *geo.Region) orb.Geometry {
	if r == nil {
		return nil
	}
	mp := r.Geometry()
	if len(mp) == 1 {
		return mp[0]
	}
	return mp
}

// marshal appends the JSON of v to b, leaving <, > and & as they are.
func marshal(b *bytes.Buffer, v any) error {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return fmt.Errorf("encode area: %w", err)
	}
	b.Truncate(b.Len() - 1) // the newline Encode adds
	return nil
}

// nonNil returns s, or an empty slice for nil, so that it encodes as [].
func nonNil[S ~[]E, E any](s S) S {
	if s == nil {
		return S{}
	}
	return s
}
