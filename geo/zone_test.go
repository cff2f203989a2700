package geo

import (
	"slices"
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
