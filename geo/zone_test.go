package geo

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestZoneValid(t *testing.T) {
	tests := []struct {
		z    Zone
		want bool
	}{
		{Urban, true},
		{Rural, true},
		{"", false},
		{"Urban", false},
		{"suburban", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.z), func(t *testing.T) {
			if got := tt.z.Valid(); got != tt.want {
				t.Errorf("Zone(%q).Valid() = %v, want %v", tt.z, got, tt.want)
			}
		})
	}
}

func TestRadiusPolicySteps(t *testing.T) {
	tests := []struct {
		name    string
		p       RadiusPolicy
		z       Zone
		want    []float64
		wantMax float64
	}{
		{"default urban", DefaultRadii, Urban, []float64{5000}, 5000},
		{"default rural", DefaultRadii, Rural, []float64{10000, 20000}, 20000},
		{"unknown zone searches like rural", DefaultRadii, "", []float64{10000, 20000}, 20000},
		{"no second rural step when RuralMax equals Rural", RadiusPolicy{Urban: 3000, Rural: 8000, RuralMax: 8000}, Rural, []float64{8000}, 8000},
		{"no second rural step when RuralMax is smaller", RadiusPolicy{Urban: 3000, Rural: 8000, RuralMax: 6000}, Rural, []float64{8000}, 8000},
		{"no second rural step when RuralMax is unset", RadiusPolicy{Urban: 3000, Rural: 8000}, Rural, []float64{8000}, 8000},
		{"urban ignores the rural steps", RadiusPolicy{Urban: 3000, Rural: 8000, RuralMax: 16000}, Urban, []float64{3000}, 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Steps(tt.z); !slices.Equal(got, tt.want) {
				t.Errorf("Steps(%q) = %v, want %v", tt.z, got, tt.want)
			}
			if got := tt.p.Max(tt.z); got != tt.wantMax {
				t.Errorf("Max(%q) = %v, want %v", tt.z, got, tt.wantMax)
			}
		})
	}
	t.Run("steps are a new slice each time", func(t *testing.T) {
		DefaultRadii.Steps(Rural)[0] = 1
		if got := DefaultRadii.Steps(Rural)[0]; got != 10000 {
			t.Errorf("Steps(Rural)[0] = %v after changing an earlier result, want 10000", got)
		}
	})
}

func TestRadiusPolicyOrAndCheck(t *testing.T) {
	t.Run("Or fills only the unset radii", func(t *testing.T) {
		got := RadiusPolicy{Urban: 3000}.Or(DefaultRadii)
		if want := (RadiusPolicy{Urban: 3000, Rural: 10000, RuralMax: 20000}); got != want {
			t.Errorf("Or = %+v, want %+v", got, want)
		}
		if got := (RadiusPolicy{}).Or(DefaultRadii); got != DefaultRadii {
			t.Errorf("empty Or defaults = %+v, want the defaults", got)
		}
	})
	tests := []struct {
		name string
		p    RadiusPolicy
		want string // "" for valid; else a part of the error
	}{
		{"unset", RadiusPolicy{}, ""},
		{"default", DefaultRadii, ""},
		{"rural only", RadiusPolicy{Rural: 12000}, ""},
		{"rural equals rural_max", RadiusPolicy{Rural: 12000, RuralMax: 12000}, ""},
		{"the largest radius", RadiusPolicy{Urban: MaxRadius}, ""},
		{"negative", RadiusPolicy{Urban: -1}, "urban radius"},
		{"too large", RadiusPolicy{RuralMax: MaxRadius + 1}, "rural_max radius"},
		{"not a number", RadiusPolicy{Rural: math.NaN()}, "rural radius"},
		{"infinite", RadiusPolicy{Rural: math.Inf(1)}, "rural radius"},
		{"rural above rural_max", RadiusPolicy{Rural: 15000, RuralMax: 12000}, "larger than rural_max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Check() = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestRadiusPolicyLadder(t *testing.T) {
	tests := []struct {
		p             RadiusPolicy
		z             Zone
		first, widest float64
	}{
		{DefaultRadii, Urban, 5000, 5000},
		{DefaultRadii, Rural, 10000, 20000},
		{DefaultRadii, "", 10000, 20000},
		{RadiusPolicy{Rural: 8000, RuralMax: 6000}, Rural, 8000, 8000},
	}
	for _, tt := range tests {
		if first, widest := tt.p.Ladder(tt.z); first != tt.first || widest != tt.widest {
			t.Errorf("%+v.Ladder(%q) = %v, %v, want %v, %v", tt.p, tt.z, first, widest, tt.first, tt.widest)
		}
	}
}
