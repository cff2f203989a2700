package geo

import (
	"errors"
	"fmt"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// ErrInvalidGeometry is returned, wrapped, for geometry that cannot be used:
// a wrong type, an empty shape, a degenerate ring or an invalid coordinate.
var ErrInvalidGeometry = errors.New("invalid geometry")

// Region is a named area, such as a township or a county town, given as
// polygons in WGS-84. A Region is immutable and safe for concurrent use.
type Region struct {
	ID, Name string

	geometry orb.MultiPolygon
	bound    orb.Bound
}

// NewRegion returns a Region with the given outline, an orb.Polygon or
// orb.MultiPolygon whose first ring in each polygon is the outer boundary
// and any further rings are holes. It keeps a copy of g. Any other geometry
// type, an empty geometry, a ring with fewer than 4 points or a point that
// fails ValidLatLon is an error wrapping ErrInvalidGeometry.
func NewRegion(id, name string, g orb.Geometry) (*Region, error) {
	var mp orb.MultiPolygon
	switch g := g.(type) {
	case orb.Polygon:
		if len(g) > 0 {
			mp = orb.MultiPolygon{g.Clone()}
		}
	case orb.MultiPolygon:
		mp = g.Clone()
	default:
		return nil, fmt.Errorf("region %s: %T is not a polygon: %w", id, g, ErrInvalidGeometry)
	}
	if len(mp) == 0 {
		return nil, fmt.Errorf("region %s: empty geometry: %w", id, ErrInvalidGeometry)
	}
	for i, poly := range mp {
		if len(poly) == 0 {
			return nil, fmt.Errorf("region %s: polygon %d is empty: %w", id, i, ErrInvalidGeometry)
		}
		for j, ring := range poly {
			if len(ring) < 4 {
				return nil, fmt.Errorf("region %s: polygon %d ring %d has %d points, want at least 4: %w",
					id, i, j, len(ring), ErrInvalidGeometry)
			}
			for _, p := range ring {
				if !validPoint(p) {
					return nil, fmt.Errorf("region %s: polygon %d ring %d: invalid point %v: %w",
						id, i, j, p, ErrInvalidGeometry)
				}
			}
		}
	}
	return &Region{ID: id, Name: name, geometry: mp, bound: mp.Bound()}, nil
}

// Contains reports whether p lies inside the region, boundary included and
// holes excluded. It treats degrees as planar coordinates, which is exact
// enough for county-sized areas away from the poles and the antimeridian.
func (r *Region) Contains(p orb.Point) bool {
	return r.bound.Contains(p) && planar.MultiPolygonContains(r.geometry, p)
}

// Bound returns the bounding box of the region.
func (r *Region) Bound() orb.Bound {
	return r.bound
}

// Geometry returns a copy of the region's outline.
func (r *Region) Geometry() orb.MultiPolygon {
	return r.geometry.Clone()
}

// Centroid returns the planar area centroid of the region, a point for
// labels. It may fall outside a concave region or in a hole.
func (r *Region) Centroid() orb.Point {
	c, _ := planar.CentroidArea(r.geometry)
	return c
}
