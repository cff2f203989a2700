package simarea_test

import (
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/simarea"
)

func TestWorld(t *testing.T) {
	a := geojson.Demo()
	tests := []struct {
		name  string
		n     int
		units int
	}{
		{"all", 0, len(a.Units)},
		{"first three", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := simarea.World(a, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Units) != tt.units || len(w.Hospitals) != len(a.Hospitals) || len(w.Bounds) == 0 {
				t.Fatalf("world of %d units, %d hospitals, %d bounds; want %d, %d, some",
					len(w.Units), len(w.Hospitals), len(w.Bounds), tt.units, len(a.Hospitals))
			}
			for i, u := range w.Units {
				st, _ := a.Station(a.Units[i].Station)
				if u.ID != a.Units[i].ID || u.Home != st.Location {
					t.Errorf("unit %d = %+v, want %s at its station %v", i, u, a.Units[i].ID, st.Location)
				}
				if !w.Bounds[0].Contains(u.Home) {
					t.Errorf("unit %s starts outside its jurisdiction", u.ID)
				}
			}
		})
	}
}

func TestWorldUnitWithoutStation(t *testing.T) {
	a := geojson.Demo()
	u := a.Units[0]
	u.Station = ""
	a.Units = []dispatch.Unit{u}
	w, err := simarea.World(a, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := simarea.Home(a, u)
	if len(w.Units) != 1 || w.Units[0].Home != want {
		t.Fatalf("stationless unit: %+v, want it at the first hospital of its jurisdiction %v", w.Units, want)
	}
	found := false
	for _, h := range a.Hospitals {
		if h.Jurisdiction == u.Jurisdiction && h.Location == want {
			found = true
		}
	}
	if !found {
		t.Fatalf("home %v is not a hospital of %s", want, u.Jurisdiction)
	}
	a.Hospitals = nil
	if _, err := simarea.World(a, 0); err == nil {
		t.Fatal("a unit with nowhere to start: no error")
	}
}

func TestWorldErrors(t *testing.T) {
	a := geojson.Demo()
	if _, err := simarea.World(a, len(a.Units)+1); err == nil {
		t.Fatal("more units than the area has: no error")
	}
	a.Units = nil
	if _, err := simarea.World(a, 0); err == nil {
		t.Fatal("an area without units: no error")
	}
}
