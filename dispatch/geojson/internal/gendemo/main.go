package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"

	"github.com/paulmach/orb"
	orbjson "github.com/paulmach/orb/geojson"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/geo"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gendemo:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gendemo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", "", "DataV/AMap boundaries of Zigong's districts and counties (510300_full.json)")
	out := fs.String("out", "", "the demo area file to write (dispatch/geojson/demo.geojson)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("want -src FILE -out FILE")
	}
	data, err := os.ReadFile(*src)
	if err != nil {
		return err
	}
	b, err := generate(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *src, err)
	}
	return os.WriteFile(*out, b, 0o644)
}

const (
	city   = "510300" // 自贡市
	county = "510322" // 富顺县
)

// districts are the adcodes the source file must hold, in output order.
var districts = []string{"510302", "510303", "510304", "510311", "510321", "510322"}

// seatGCJ is DataV's "center" of 510322, the county seat 富世 (GCJ-02).
var seatGCJ = orb.Point{104.984256, 29.181282}

// zoneRadius and zoneVertices shape the illustrative urban zone.
const (
	zoneRadius   = 3000 // metres
	zoneVertices = 24
)

// The stations, hospitals and units are illustrative: names are real, the
// locations approximate (WGS-84, placed at or near each township's seat),
// the capabilities and postings invented for the demo.
var (
	stations = []dispatch.Station{
		{ID: "ST-FSRM", Name: "富顺县人民医院", Kind: "county_hospital", Location: orb.Point{104.9772, 29.1868}},
		{ID: "ST-FSZY", Name: "富顺县中医医院", Kind: "county_hospital", Location: orb.Point{104.9861, 29.1812}},
		{ID: "ST-SS", Name: "狮市镇卫生院", Kind: "township", Location: orb.Point{104.997, 29.250}},
		{ID: "ST-PP", Name: "琵琶镇卫生院", Kind: "township", Location: orb.Point{105.080, 29.255}},
		{ID: "ST-QL", Name: "骑龙镇卫生院", Kind: "township", Location: orb.Point{105.060, 29.200}},
		{ID: "ST-DS", Name: "代寺镇卫生院", Kind: "township", Location: orb.Point{105.135, 29.210}},
		{ID: "ST-GF", Name: "古佛镇卫生院", Kind: "township", Location: orb.Point{105.215, 29.140}},
		{ID: "ST-TS", Name: "童寺镇卫生院", Kind: "township", Location: orb.Point{105.150, 29.100}},
		{ID: "ST-HD", Name: "怀德镇卫生院", Kind: "township", Location: orb.Point{105.120, 28.975}},
		{ID: "ST-ZH", Name: "赵化镇卫生院", Kind: "township", Location: orb.Point{105.030, 29.000}},
		{ID: "ST-YN", Name: "永年镇卫生院", Kind: "township", Location: orb.Point{104.930, 29.110}},
		{ID: "ST-BQ", Name: "板桥镇卫生院", Kind: "township", Location: orb.Point{104.860, 29.120}},
		{ID: "ST-LQ", Name: "李桥镇卫生院", Kind: "township", Location: orb.Point{104.830, 29.060}},
		{ID: "ST-FSH", Name: "福善镇卫生院", Kind: "township", Location: orb.Point{104.740, 29.065}},
	}

	hospitals = []dispatch.Hospital{
		{ID: "HP-FSRM", Name: "富顺县人民医院", Jurisdiction: county, Level: "secondary",
			Location: orb.Point{104.9772, 29.1868}, Centres: []dispatch.Centre{dispatch.ChestPain, dispatch.Stroke, dispatch.Trauma}},
		{ID: "HP-FSZY", Name: "富顺县中医医院", Jurisdiction: county, Level: "secondary",
			Location: orb.Point{104.9861, 29.1812}, Centres: []dispatch.Centre{dispatch.Stroke}},
		{ID: "HP-FSFY", Name: "富顺县妇幼保健院", Jurisdiction: county, Level: "secondary",
			Location: orb.Point{104.9790, 29.1795}, Centres: []dispatch.Centre{dispatch.Maternal, dispatch.Neonatal}},
		{ID: "HP-ZG1", Name: "自贡市第一人民医院", Jurisdiction: "510302", Level: "tertiary",
			Location: orb.Point{104.7720, 29.3505}, Centres: slices.Clone(dispatch.Centres)},
		{ID: "HP-ZG4", Name: "自贡市第四人民医院", Jurisdiction: "510302", Level: "tertiary",
			Location: orb.Point{104.7650, 29.3540}, Centres: []dispatch.Centre{dispatch.ChestPain, dispatch.Stroke, dispatch.Trauma}},
	}

	// postings lists the 18 units (as many as Yumen County equipped) by
	// station, with their capabilities; ids and callsigns are numbered in
	// this order.
	postings = []struct {
		station      string
		capabilities []string
	}{
		{"ST-FSRM", []string{dispatch.ALS, dispatch.NeoCare}},
		{"ST-FSRM", []string{dispatch.ALS}},
		{"ST-FSRM", []string{dispatch.BLS}},
		{"ST-FSRM", []string{dispatch.BLS}},
		{"ST-FSZY", []string{dispatch.BLS}},
		{"ST-FSZY", []string{dispatch.BLS}},
		{"ST-SS", []string{dispatch.BLS}},
		{"ST-PP", []string{dispatch.BLS}},
		{"ST-QL", []string{dispatch.BLS}},
		{"ST-DS", []string{dispatch.BLS}},
		{"ST-GF", []string{dispatch.BLS}},
		{"ST-TS", []string{dispatch.ALS}},
		{"ST-HD", []string{dispatch.BLS}},
		{"ST-ZH", []string{dispatch.ALS}},
		{"ST-YN", []string{dispatch.BLS}},
		{"ST-BQ", []string{dispatch.BLS}},
		{"ST-LQ", []string{dispatch.BLS}},
		{"ST-FSH", []string{dispatch.BLS}},
	}
)

// source is the part of a DataV/AMap boundary file gendemo reads.
type source struct {
	Features []struct {
		Properties struct {
			Adcode int    `json:"adcode"`
			Name   string `json:"name"`
			Parent struct {
				Adcode int `json:"adcode"`
			} `json:"parent"`
		} `json:"properties"`
		Geometry orbjson.Geometry `json:"geometry"`
	} `json:"features"`
}

// generate returns the demo area file built from the DataV/AMap boundary
// file src.
func generate(src []byte) ([]byte, error) {
	var s source
	if err := json.Unmarshal(src, &s); err != nil {
		return nil, err
	}
	a := &dispatch.Area{
		Name:          "富顺县 Fushun County demo (自贡市 Zigong, Sichuan)",
		Jurisdictions: []dispatch.Jurisdiction{{ID: city, Name: "自贡市"}},
	}
	regions := map[string]*geo.Region{}
	for _, f := range s.Features {
		id := strconv.Itoa(f.Properties.Adcode)
		if !slices.Contains(districts, id) || regions[id] != nil {
			return nil, fmt.Errorf("unexpected or repeated feature %s %s: want Zigong's six districts and counties", id, f.Properties.Name)
		}
		if p := strconv.Itoa(f.Properties.Parent.Adcode); p != city {
			return nil, fmt.Errorf("%s %s: parent is %s, want %s", id, f.Properties.Name, p, city)
		}
		g := orb.Round(geo.GCJ02ToWGS84Geometry(f.Geometry.Geometry()))
		r, err := geo.NewRegion(id, f.Properties.Name, g)
		if err != nil {
			return nil, err
		}
		regions[id] = r
	}
	for _, id := range districts {
		r := regions[id]
		if r == nil {
			return nil, fmt.Errorf("no feature for %s", id)
		}
		a.Jurisdictions = append(a.Jurisdictions, dispatch.Jurisdiction{ID: id, Name: r.Name, Parent: city, Region: r})
	}

	seat := orb.Round(geo.GCJ02ToWGS84(seatGCJ)).(orb.Point)
	zone, err := geo.NewRegion("UZ-FS", "富顺县城 富世（示意 illustrative）", circle(seat, zoneRadius, zoneVertices))
	if err != nil {
		return nil, err
	}
	for _, p := range zone.Geometry()[0][0] {
		if !regions[county].Contains(p) {
			return nil, fmt.Errorf("urban zone vertex %v lies outside %s", p, county)
		}
	}
	a.Zones = []dispatch.UrbanZone{{ID: zone.ID, Name: zone.Name, Jurisdiction: county, Region: zone}}

	inside := func(what, name, j string, p orb.Point) error {
		if !regions[j].Contains(p) {
			return fmt.Errorf("%s %s at %v lies outside %s %s", what, name, p, j, regions[j].Name)
		}
		return nil
	}
	for _, st := range stations {
		st.Jurisdiction, st.Illustrative = county, true
		if err := inside("station", st.Name, st.Jurisdiction, st.Location); err != nil {
			return nil, err
		}
		a.Stations = append(a.Stations, st)
	}
	for _, h := range hospitals {
		h.Illustrative = true
		if err := inside("hospital", h.Name, h.Jurisdiction, h.Location); err != nil {
			return nil, err
		}
		a.Hospitals = append(a.Hospitals, h)
	}
	for i, p := range postings {
		n := fmt.Sprintf("%02d", i+1)
		a.Units = append(a.Units, dispatch.Unit{ID: "FS-" + n, Callsign: "富顺120-" + n, Station: p.station,
			Jurisdiction: county, Capabilities: p.capabilities, Illustrative: true})
	}

	b, err := geojson.Encode(a)
	if err != nil {
		return nil, err
	}
	if _, err := geojson.Decode(bytes.NewReader(b), "demo.geojson"); err != nil {
		return nil, fmt.Errorf("the generated area does not load: %w", err)
	}
	return b, nil
}

// circle returns a closed polygon of n vertices approximating the circle of
// radius metres around c, rounded to six decimals.
func circle(c orb.Point, radius float64, n int) orb.Polygon {
	dLat := radius / geo.EarthRadius * 180 / math.Pi
	dLon := dLat / math.Cos(c.Lat()*math.Pi/180)
	ring := make(orb.Ring, 0, n+1)
	for k := range n {
		t := 2 * math.Pi * float64(k) / float64(n)
		ring = append(ring, orb.Point{c.Lon() + dLon*math.Sin(t), c.Lat() + dLat*math.Cos(t)})
	}
	ring = orb.Round(ring).(orb.Ring)
	return orb.Polygon{append(ring, ring[0])}
}
