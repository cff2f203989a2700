package geojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// MaxSize is the largest area file, in bytes, that Decode accepts: 32 MiB.
const MaxSize = 32 << 20

// Version is the version of the area format this package reads and writes,
// the "version" of the file's "lifeline" member.
const Version = 1

// The feature kinds of an area file, the "kind" property of every feature.
const (
	KindJurisdiction = "jurisdiction"
	KindZone         = "urban_zone"
	KindStation      = "station"
	KindHospital     = "hospital"
	KindUnit         = "unit"
)

var (
	kinds        = []string{KindJurisdiction, KindZone, KindStation, KindHospital, KindUnit}
	stationKinds = []string{"county_hospital", "township", "village", "standalone"}
	levels       = []string{"primary", "secondary", "tertiary"}
	capabilities = []string{dispatch.ALS, dispatch.BLS, dispatch.NeoCare}
	policies     = []string{string(dispatch.ConsentAuto), string(dispatch.ConsentAsk)}
)

// The members of the file, its header and its features. The json tags are
// the format: Encode writes these structs and Decode accepts exactly their
// members, so that a misspelt property is an error rather than a silently
// missing value.
type (
	header struct {
		Version int    `json:"version"`
		Name    string `json:"name"`
	}

	feature struct {
		Type       string          `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Geometry   json.RawMessage `json:"geometry"`
		BBox       json.RawMessage `json:"bbox,omitempty"` // allowed and ignored
	}

	geometry struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
		BBox        json.RawMessage `json:"bbox,omitempty"` // allowed and ignored
	}

	jurisdictionProps struct {
		Kind    string `json:"kind"`
		ID      string `json:"id"`
		Name    string `json:"name"`
		Parent  string `json:"parent,omitempty"`
		Consent string `json:"consent,omitempty"` // auto or ask; absent is ask
		// The radius policy in metres; an absent radius is the parent's
		// (dispatch.Jurisdiction.Radii).
		RadiusUrbanM    float64 `json:"radius_urban_m,omitempty"`
		RadiusRuralM    float64 `json:"radius_rural_m,omitempty"`
		RadiusRuralMaxM float64 `json:"radius_rural_max_m,omitempty"`
	}

	zoneProps struct {
		Kind         string  `json:"kind"`
		ID           string  `json:"id"`
		Name         string  `json:"name"`
		Jurisdiction string  `json:"jurisdiction"`
		RadiusM      float64 `json:"radius_m,omitempty"`
	}

	stationProps struct {
		Kind         string `json:"kind"`
		ID           string `json:"id"`
		Name         string `json:"name"`
		Jurisdiction string `json:"jurisdiction"`
		StationKind  string `json:"station_kind"`
		Illustrative bool   `json:"illustrative"`
	}

	hospitalProps struct {
		Kind         string            `json:"kind"`
		ID           string            `json:"id"`
		Name         string            `json:"name"`
		Jurisdiction string            `json:"jurisdiction"`
		Level        string            `json:"level"`
		Centres      []dispatch.Centre `json:"centres"`
		Illustrative bool              `json:"illustrative"`
	}

	unitProps struct {
		Kind         string   `json:"kind"`
		ID           string   `json:"id"`
		Callsign     string   `json:"callsign"`
		Station      string   `json:"station,omitempty"`
		Jurisdiction string   `json:"jurisdiction"`
		Capabilities []string `json:"capabilities"`
		Illustrative bool     `json:"illustrative"`
	}
)

// LoadFile reads and decodes the area file at path; errors name the file
// by path.
func LoadFile(path string) (*dispatch.Area, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("area %s: %w", path, err)
	}
	defer f.Close()
	return Decode(f, path)
}

// Decode reads an area file of at most MaxSize bytes from r and returns the
// area it describes, checked by dispatch.Area.Validate and by the stricter
// rules of the format (docs/AREA.md): known kinds and properties only,
// six-digit adcodes, references that resolve, and stations and hospitals
// inside their jurisdiction's boundary. name identifies the file in errors,
// which carry dispatch.CodeInvalid and name the feature, its id and the
// field, as in
//
//	area fushun.geojson: feature 12 (station ST-LQ): field "jurisdiction": "510399" is not in the area
//
// An error reading r is returned wrapped, without a code.
func Decode(r io.Reader, name string) (*dispatch.Area, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("area %s: %w", name, err)
	}
	d := &decoder{name: name, jurisdictions: map[string]*geo.Region{}, stations: map[string]string{}, ids: map[string]int{}}
	if len(data) > MaxSize {
		return nil, d.fail("file is larger than %d MiB", MaxSize>>20)
	}
	return d.decode(data)
}

// decoder holds the state of one Decode.
type decoder struct {
	name string
	area dispatch.Area

	jurisdictions map[string]*geo.Region // by id; nil for one without geometry
	stations      map[string]string      // jurisdiction by station id
	ids           map[string]int         // feature index by kind + "/" + id
	checks        []func() error         // reference checks, in feature order
}

// where names a feature in errors.
type where struct {
	index    int
	kind, id string
}

func (w where) String() string {
	switch {
	case w.kind == "":
		return fmt.Sprintf("feature %d", w.index)
	case w.id == "":
		return fmt.Sprintf("feature %d (%s)", w.index, w.kind)
	case telemetry.ValidUnitID(w.id):
		return fmt.Sprintf("feature %d (%s %s)", w.index, w.kind, w.id)
	default:
		return fmt.Sprintf("feature %d (%s %.64q)", w.index, w.kind, w.id)
	}
}

// fail returns an invalid-area error naming the file.
func (d *decoder) fail(format string, args ...any) error {
	return dispatch.Errorf(dispatch.CodeInvalid, "area %s: %s", d.name, fmt.Sprintf(format, args...))
}

// failAt returns an invalid-area error naming the file, the feature and,
// unless it is empty, the field.
func (d *decoder) failAt(w where, field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = fmt.Sprintf("field %q: %s", field, msg)
	}
	return d.fail("%s: %s", w, msg)
}

func (d *decoder) decode(data []byte) (*dispatch.Area, error) {
	var top struct {
		Type     string            `json:"type"`
		Lifeline json.RawMessage   `json:"lifeline"`
		Features []json.RawMessage `json:"features"`
		BBox     json.RawMessage   `json:"bbox,omitempty"` // allowed and ignored
	}
	if !json.Valid(data) {
		return nil, d.fail("%s", syntaxError(data, json.Unmarshal(data, new(any))))
	}
	if err := decodeObject(data, &top, "member"); err != nil {
		return nil, d.fail("%s", err)
	}
	if top.Type != "FeatureCollection" {
		return nil, d.fail("type is %q, want \"FeatureCollection\"", top.Type)
	}
	if top.Lifeline == nil || bytes.Equal(top.Lifeline, []byte("null")) {
		return nil, d.fail("no \"lifeline\" member: not a Lifeline area file (docs/AREA.md)")
	}
	var h header
	if err := decodeObject(top.Lifeline, &h, "member"); err != nil {
		return nil, d.fail("member \"lifeline\": %s", err)
	}
	if h.Version != Version {
		return nil, d.fail("member \"lifeline\": version %d is not supported (want %d)", h.Version, Version)
	}
	if blank(h.Name) {
		return nil, d.fail("member \"lifeline\": no name")
	}
	d.area.Name = h.Name
	for i, raw := range top.Features {
		if err := d.feature(i, raw); err != nil {
			return nil, err
		}
	}
	if len(d.area.Jurisdictions) == 0 {
		return nil, d.fail("no jurisdiction features")
	}
	for _, check := range d.checks {
		if err := check(); err != nil {
			return nil, err
		}
	}
	if err := d.parentLoop(); err != nil {
		return nil, err
	}
	if err := d.area.Validate(); err != nil {
		return nil, d.fail("%s", dispatch.ErrorMessage(err))
	}
	return &d.area, nil
}

// feature decodes feature i and queues its reference checks.
func (d *decoder) feature(i int, raw json.RawMessage) error {
	w := where{index: i}
	var f feature
	if err := decodeObject(raw, &f, "member"); err != nil {
		return d.failAt(w, "", "%s", err)
	}
	if f.Type != "Feature" {
		return d.failAt(w, "", "type is %q, want \"Feature\"", f.Type)
	}
	if !isObject(f.Properties) {
		return d.failAt(w, "properties", "not a JSON object")
	}
	var head struct {
		Kind json.RawMessage `json:"kind"`
		ID   json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(f.Properties, &head) // an object: cannot fail
	var kind string
	if head.Kind == nil {
		return d.failAt(w, "kind", "missing (want one of %s)", strings.Join(kinds, ", "))
	}
	if json.Unmarshal(head.Kind, &kind) != nil || !slices.Contains(kinds, kind) {
		return d.failAt(w, "kind", "%s is not a kind (want one of %s)", clip(head.Kind), strings.Join(kinds, ", "))
	}
	w.kind = kind
	_ = json.Unmarshal(head.ID, &w.id) // for the error messages; checked below
	g, gtype, err := decodeGeometry(f.Geometry)
	if err != nil {
		return d.failAt(w, "geometry", "%s", err)
	}
	switch kind {
	case KindJurisdiction:
		return d.jurisdiction(w, f.Properties, g, gtype)
	case KindZone:
		return d.zone(w, f.Properties, g, gtype)
	case KindStation:
		return d.station(w, f.Properties, g, gtype)
	case KindHospital:
		return d.hospital(w, f.Properties, g, gtype)
	default:
		return d.unit(w, f.Properties, gtype)
	}
}

func (d *decoder) jurisdiction(w where, props json.RawMessage, g orb.Geometry, gtype string) error {
	var p jurisdictionProps
	if err := d.props(w, props, &p); err != nil {
		return err
	}
	if err := d.required(w, "id", p.ID); err != nil {
		return err
	}
	if !adcode(p.ID) {
		return d.failAt(w, "id", "%q is not a six-digit adcode", p.ID)
	}
	if err := d.unique(w, p.ID); err != nil {
		return err
	}
	if err := d.required(w, "name", p.Name); err != nil {
		return err
	}
	if p.Parent != "" && !adcode(p.Parent) {
		return d.failAt(w, "parent", "%q is not a six-digit adcode", p.Parent)
	}
	if p.Consent != "" && !slices.Contains(policies, p.Consent) {
		return d.failAt(w, "consent", "%q is not one of %s", p.Consent, strings.Join(policies, ", "))
	}
	radii, err := d.radii(w, &p)
	if err != nil {
		return err
	}
	j := dispatch.Jurisdiction{ID: p.ID, Name: p.Name, Parent: p.Parent, Consent: dispatch.ConsentPolicy(p.Consent), Radii: radii}
	if gtype != "" {
		if err := d.wantGeometry(w, gtype, "Polygon", "MultiPolygon"); err != nil {
			return err
		}
		r, err := geo.NewRegion(p.ID, p.Name, g)
		if err != nil {
			return d.failAt(w, "geometry", "%s", err)
		}
		j.Region = r
	}
	d.area.Jurisdictions = append(d.area.Jurisdictions, j)
	d.jurisdictions[j.ID] = j.Region
	d.checks = append(d.checks, func() error {
		if j.Parent == j.ID {
			return d.failAt(w, "parent", "a jurisdiction cannot be its own parent")
		}
		if j.Parent != "" {
			return d.inArea(w, "parent", j.Parent)
		}
		return nil
	})
	return nil
}

// radii checks the radius properties of the jurisdiction at w.
func (d *decoder) radii(w where, p *jurisdictionProps) (geo.RadiusPolicy, error) {
	for _, r := range []struct {
		field string
		m     float64
	}{{"radius_urban_m", p.RadiusUrbanM}, {"radius_rural_m", p.RadiusRuralM}, {"radius_rural_max_m", p.RadiusRuralMaxM}} {
		if err := geo.CheckRadius(r.m); err != nil {
			return geo.RadiusPolicy{}, d.failAt(w, r.field, "%s", err)
		}
	}
	if p.RadiusRuralM > 0 && p.RadiusRuralMaxM > 0 && p.RadiusRuralM > p.RadiusRuralMaxM {
		return geo.RadiusPolicy{}, d.failAt(w, "radius_rural_m", "%g m is more than radius_rural_max_m %g m", p.RadiusRuralM, p.RadiusRuralMaxM)
	}
	return geo.RadiusPolicy{Urban: p.RadiusUrbanM, Rural: p.RadiusRuralM, RuralMax: p.RadiusRuralMaxM}, nil
}

// parentLoop fails if following parents from some jurisdiction leads back
// to it, naming the first such jurisdiction in file order.
func (d *decoder) parentLoop() error {
	parent := map[string]string{}
	for _, j := range d.area.Jurisdictions {
		parent[j.ID] = j.Parent
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	for _, j := range d.area.Jurisdictions {
		var path []string
		for id := j.ID; id != "" && state[id] != done; id = parent[id] {
			if state[id] == onPath {
				w := where{index: d.ids[KindJurisdiction+"/"+id], kind: KindJurisdiction, id: id}
				return d.failAt(w, "parent", "the chain of parents loops back to %s", id)
			}
			state[id] = onPath
			path = append(path, id)
		}
		for _, id := range path {
			state[id] = done
		}
	}
	return nil
}

func (d *decoder) zone(w where, props json.RawMessage, g orb.Geometry, gtype string) error {
	var p zoneProps
	if err := d.props(w, props, &p); err != nil {
		return err
	}
	if err := d.common(w, p.ID, p.Name, "name", p.Jurisdiction); err != nil {
		return err
	}
	if err := geo.CheckRadius(p.RadiusM); err != nil {
		return d.failAt(w, "radius_m", "%s", err)
	}
	if err := d.wantGeometry(w, gtype, "Polygon", "MultiPolygon"); err != nil {
		return err
	}
	r, err := geo.NewRegion(p.ID, p.Name, g)
	if err != nil {
		return d.failAt(w, "geometry", "%s", err)
	}
	d.area.Zones = append(d.area.Zones, dispatch.UrbanZone{ID: p.ID, Name: p.Name, Jurisdiction: p.Jurisdiction, Region: r, RadiusM: p.RadiusM})
	d.checks = append(d.checks, func() error { return d.inArea(w, "jurisdiction", p.Jurisdiction) })
	return nil
}

func (d *decoder) station(w where, props json.RawMessage, g orb.Geometry, gtype string) error {
	var p stationProps
	if err := d.props(w, props, &p); err != nil {
		return err
	}
	if err := d.common(w, p.ID, p.Name, "name", p.Jurisdiction); err != nil {
		return err
	}
	if err := d.oneOf(w, "station_kind", p.StationKind, stationKinds); err != nil {
		return err
	}
	if err := d.wantGeometry(w, gtype, "Point"); err != nil {
		return err
	}
	s := dispatch.Station{ID: p.ID, Name: p.Name, Jurisdiction: p.Jurisdiction, Kind: p.StationKind,
		Location: g.(orb.Point), Illustrative: p.Illustrative}
	d.area.Stations = append(d.area.Stations, s)
	d.stations[s.ID] = s.Jurisdiction
	d.checks = append(d.checks, func() error { return d.located(w, s.Jurisdiction, s.Location) })
	return nil
}

func (d *decoder) hospital(w where, props json.RawMessage, g orb.Geometry, gtype string) error {
	var p hospitalProps
	if err := d.props(w, props, &p); err != nil {
		return err
	}
	if err := d.common(w, p.ID, p.Name, "name", p.Jurisdiction); err != nil {
		return err
	}
	if err := d.oneOf(w, "level", p.Level, levels); err != nil {
		return err
	}
	for i, c := range p.Centres {
		if !c.Valid() {
			return d.failAt(w, "centres", "unknown centre %q (want one of %s)", c, joinCentres())
		}
		if slices.Contains(p.Centres[:i], c) {
			return d.failAt(w, "centres", "%q is listed twice", c)
		}
	}
	if err := d.wantGeometry(w, gtype, "Point"); err != nil {
		return err
	}
	if len(p.Centres) == 0 {
		p.Centres = nil // absent and [] are the same
	}
	h := dispatch.Hospital{ID: p.ID, Name: p.Name, Jurisdiction: p.Jurisdiction, Level: p.Level,
		Location: g.(orb.Point), Centres: p.Centres, Illustrative: p.Illustrative}
	d.area.Hospitals = append(d.area.Hospitals, h)
	d.checks = append(d.checks, func() error { return d.located(w, h.Jurisdiction, h.Location) })
	return nil
}

func (d *decoder) unit(w where, props json.RawMessage, gtype string) error {
	var p unitProps
	if err := d.props(w, props, &p); err != nil {
		return err
	}
	if err := d.common(w, p.ID, p.Callsign, "callsign", p.Jurisdiction); err != nil {
		return err
	}
	for i, c := range p.Capabilities {
		if !slices.Contains(capabilities, c) {
			return d.failAt(w, "capabilities", "unknown capability %q (want one of %s)", c, strings.Join(capabilities, ", "))
		}
		if slices.Contains(p.Capabilities[:i], c) {
			return d.failAt(w, "capabilities", "%q is listed twice", c)
		}
	}
	if gtype != "" {
		return d.failAt(w, "geometry", "got %s, want null: a unit's home is its station", gtype)
	}
	if len(p.Capabilities) == 0 {
		p.Capabilities = nil // absent and [] are the same
	}
	u := dispatch.Unit{ID: p.ID, Callsign: p.Callsign, Station: p.Station, Jurisdiction: p.Jurisdiction,
		Capabilities: p.Capabilities, Illustrative: p.Illustrative}
	d.area.Units = append(d.area.Units, u)
	d.checks = append(d.checks, func() error {
		if err := d.inArea(w, "jurisdiction", u.Jurisdiction); err != nil {
			return err
		}
		if u.Station == "" {
			return nil
		}
		j, ok := d.stations[u.Station]
		if !ok {
			return d.failAt(w, "station", "%q is not in the area", u.Station)
		}
		if j != u.Jurisdiction {
			return d.failAt(w, "station", "%s belongs to jurisdiction %s, not %s", u.Station, j, u.Jurisdiction)
		}
		return nil
	})
	return nil
}

// props decodes the properties of the feature at w into p, a pointer to
// one of the *Props structs.
func (d *decoder) props(w where, raw json.RawMessage, p any) error {
	if err := decodeObject(raw, p, "property"); err != nil {
		var me *memberError
		if errors.As(err, &me) {
			return d.failAt(w, me.member, "%s", me.msg)
		}
		return d.failAt(w, "properties", "%s", err)
	}
	return nil
}

// common checks what every kind but jurisdiction has: an id, a name (or
// callsign) and a jurisdiction.
func (d *decoder) common(w where, id, name, nameField, jurisdiction string) error {
	if id == "" {
		return d.failAt(w, "id", "missing")
	}
	if !telemetry.ValidUnitID(id) {
		return d.failAt(w, "id", "%q is not 1-64 letters, digits, '-' or '_'", id)
	}
	if err := d.unique(w, id); err != nil {
		return err
	}
	if err := d.required(w, nameField, name); err != nil {
		return err
	}
	return d.required(w, "jurisdiction", jurisdiction)
}

// unique records the id of the feature at w, failing if another feature
// of its kind has it.
func (d *decoder) unique(w where, id string) error {
	key := w.kind + "/" + id
	if i, ok := d.ids[key]; ok {
		return d.failAt(w, "id", "duplicate of feature %d", i)
	}
	d.ids[key] = w.index
	return nil
}

func (d *decoder) required(w where, field, v string) error {
	if blank(v) {
		return d.failAt(w, field, "missing")
	}
	return nil
}

func (d *decoder) oneOf(w where, field, v string, allowed []string) error {
	if v == "" {
		return d.failAt(w, field, "missing (want one of %s)", strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, v) {
		return d.failAt(w, field, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return nil
}

// inArea checks that the jurisdiction id named by field exists.
func (d *decoder) inArea(w where, field, id string) error {
	if _, ok := d.jurisdictions[id]; !ok {
		return d.failAt(w, field, "%q is not in the area", id)
	}
	return nil
}

// located checks that jurisdiction j exists and, when it has a boundary,
// holds p.
func (d *decoder) located(w where, j string, p orb.Point) error {
	if err := d.inArea(w, "jurisdiction", j); err != nil {
		return err
	}
	if r := d.jurisdictions[j]; r != nil && !r.Contains(p) {
		return d.failAt(w, "geometry", "point [%g, %g] lies outside jurisdiction %s (%s)", p[0], p[1], j, r.Name)
	}
	return nil
}

// wantGeometry checks that the feature's geometry type is one of want.
func (d *decoder) wantGeometry(w where, got string, want ...string) error {
	if slices.Contains(want, got) {
		return nil
	}
	if got == "" {
		got = "null"
	}
	return d.failAt(w, "geometry", "got %s, want %s", got, strings.Join(want, " or "))
}

// decodeGeometry decodes a GeoJSON geometry object. It returns the type
// and, for Point, Polygon and MultiPolygon, the geometry; other GeoJSON
// types come back by name alone, for the caller to reject. A missing or
// null geometry has type "".
func decodeGeometry(raw json.RawMessage) (orb.Geometry, string, error) {
	if raw == nil || bytes.Equal(raw, []byte("null")) {
		return nil, "", nil
	}
	var g geometry
	if err := decodeObject(raw, &g, "member"); err != nil {
		return nil, "", err
	}
	switch g.Type {
	case "Point":
		var c []float64
		if err := json.Unmarshal(g.Coordinates, &c); err != nil {
			return nil, "", errors.New("Point coordinates are not a position [lon, lat]")
		}
		p, err := position(c)
		return p, g.Type, err
	case "Polygon":
		var c [][][]float64
		if err := json.Unmarshal(g.Coordinates, &c); err != nil {
			return nil, "", errors.New("Polygon coordinates are not an array of rings of positions")
		}
		p, err := polygon(c)
		return p, g.Type, err
	case "MultiPolygon":
		var c [][][][]float64
		if err := json.Unmarshal(g.Coordinates, &c); err != nil {
			return nil, "", errors.New("MultiPolygon coordinates are not an array of polygons")
		}
		mp := make(orb.MultiPolygon, len(c))
		for i, pc := range c {
			p, err := polygon(pc)
			if err != nil {
				return nil, "", fmt.Errorf("polygon %d: %w", i, err)
			}
			mp[i] = p
		}
		return mp, g.Type, nil
	case "MultiPoint", "LineString", "MultiLineString", "GeometryCollection":
		return nil, g.Type, nil
	}
	return nil, "", fmt.Errorf("%q is not a GeoJSON geometry type", g.Type)
}

func polygon(c [][][]float64) (orb.Polygon, error) {
	if len(c) == 0 {
		return nil, errors.New("polygon has no rings")
	}
	p := make(orb.Polygon, len(c))
	for i, rc := range c {
		if len(rc) < 4 {
			return nil, fmt.Errorf("ring %d has %d positions, want at least 4", i, len(rc))
		}
		r := make(orb.Ring, len(rc))
		for j, pc := range rc {
			pt, err := position(pc)
			if err != nil {
				return nil, fmt.Errorf("ring %d: %w", i, err)
			}
			r[j] = pt
		}
		if r[0] != r[len(r)-1] {
			return nil, fmt.Errorf("ring %d is not closed (its last position must repeat its first)", i)
		}
		p[i] = r
	}
	return p, nil
}

// position turns [lon, lat] or [lon, lat, altitude] into a point.
func position(c []float64) (orb.Point, error) {
	if len(c) != 2 && len(c) != 3 {
		return orb.Point{}, fmt.Errorf("position %v has %d coordinates, want 2 ([lon, lat])", c, len(c))
	}
	p := orb.Point{c[0], c[1]}
	if !geo.ValidLatLon(p.Lat(), p.Lon()) {
		return orb.Point{}, fmt.Errorf("position [%g, %g] is out of range (want [lon, lat] in degrees)", p[0], p[1])
	}
	return p, nil
}

// memberError is a problem with one member of a JSON object.
type memberError struct{ member, msg string }

func (e *memberError) Error() string { return fmt.Sprintf("field %q: %s", e.member, e.msg) }

// decodeObject decodes the JSON object raw into the struct that v points
// to, accepting only the members the struct's json tags name; noun names
// such a member in errors. A problem with one member is a *memberError.
func decodeObject(raw json.RawMessage, v any, noun string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return errors.New("not a JSON object")
	}
	known := memberNames(reflect.TypeOf(v).Elem())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			return &memberError{k, fmt.Sprintf("unknown %s (want one of %s)", noun, strings.Join(known, ", "))}
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			member, _, _ := strings.Cut(te.Field, ".")
			return &memberError{member, fmt.Sprintf("got %s, want %s", te.Value, jsonType(te.Type))}
		}
		return err
	}
	return nil
}

// memberNames lists the JSON member names of struct type t.
func memberNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	return names
}

// jsonType describes the JSON a Go type decodes from.
func jsonType(t reflect.Type) string {
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonType(t.Elem()), "a "), "an ") + "s"
	default:
		return "an object"
	}
}

// syntaxError describes a JSON syntax error with its line and column.
func syntaxError(data []byte, err error) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return "invalid JSON: " + err.Error()
	}
	if se.Offset >= int64(len(data)) {
		return "invalid JSON: " + se.Error() + " (truncated?)"
	}
	before := data[:se.Offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// clip shortens raw JSON for an error message.
func clip(raw json.RawMessage) string {
	if len(raw) > 40 {
		return string(raw[:37]) + "..."
	}
	return string(raw)
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// adcode reports whether s is a six-digit administrative division code.
func adcode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func joinCentres() string {
	s := make([]string, len(dispatch.Centres))
	for i, c := range dispatch.Centres {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}
