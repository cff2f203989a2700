package geo

import (
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/project"
)

// Parameters of the published GCJ-02 obfuscation: the Krasovsky 1940
// ellipsoid's semi-major axis and first eccentricity squared.
const (
	gcjA  = 6378245.0
	gcjEE = 0.00669342162296594323
)

// OutOfChina reports whether p lies outside the rough bounding box in which
// GCJ-02 shifts coordinates. Points outside it are the same in both datums.
func OutOfChina(p orb.Point) bool {
	lon, lat := p[0], p[1]
	return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271
}

// WGS84ToGCJ02 converts a WGS-84 point to GCJ-02, the datum of AMap and
// DataV boundary files. The shift is a few hundred metres inside China and
// zero outside it.
func WGS84ToGCJ02(p orb.Point) orb.Point {
	if OutOfChina(p) {
		return p
	}
	dLon, dLat := gcjDelta(p[0], p[1])
	return orb.Point{p[0] + dLon, p[1] + dLat}
}

// GCJ02ToWGS84 converts a GCJ-02 point back to WGS-84. GCJ-02 has no
// closed-form inverse, so it iterates w -= WGS84ToGCJ02(w) - p until the
// residual is under 1e-7 degrees (about a centimetre) or ten rounds have
// run; the result is within a few centimetres of the true inverse.
func GCJ02ToWGS84(p orb.Point) orb.Point {
	if OutOfChina(p) {
		return p
	}
	w := p
	for range 10 {
		g := WGS84ToGCJ02(w)
		dLon, dLat := g[0]-p[0], g[1]-p[1]
		w[0] -= dLon
		w[1] -= dLat
		if math.Abs(dLon) < 1e-7 && math.Abs(dLat) < 1e-7 {
			break
		}
	}
	return w
}

// GCJ02ToWGS84Geometry returns a copy of g, any orb geometry (Point,
// MultiPoint, LineString, MultiLineString, Ring, Polygon, MultiPolygon,
// Collection or Bound), with every point converted by GCJ02ToWGS84. It does
// not modify g. A nil geometry, typed or not, yields nil; like orb.Clone, it
// panics on geometry types orb does not define.
func GCJ02ToWGS84Geometry(g orb.Geometry) orb.Geometry {
	return project.Geometry(orb.Clone(g), GCJ02ToWGS84)
}

// gcjDelta returns the GCJ-02 offset in degrees at a WGS-84 point.
func gcjDelta(lon, lat float64) (dLon, dLat float64) {
	x, y := lon-105.0, lat-35.0
	common := 20.0*math.Sin(6.0*x*math.Pi) + 20.0*math.Sin(2.0*x*math.Pi)

	dLat = -100.0 + 2.0*x + 3.0*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x))
	dLat += (common + 20.0*math.Sin(y*math.Pi) + 40.0*math.Sin(y/3.0*math.Pi) +
		160.0*math.Sin(y/12.0*math.Pi) + 320.0*math.Sin(y/30.0*math.Pi)) * 2.0 / 3.0

	dLon = 300.0 + x + 2.0*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x))
	dLon += (common + 20.0*math.Sin(x*math.Pi) + 40.0*math.Sin(x/3.0*math.Pi) +
		150.0*math.Sin(x/12.0*math.Pi) + 300.0*math.Sin(x/30.0*math.Pi)) * 2.0 / 3.0

	radLat := lat * radians
	magic := math.Sin(radLat)
	magic = 1 - gcjEE*magic*magic
	sqrtMagic := math.Sqrt(magic)
	dLat = (dLat * 180.0) / ((gcjA * (1 - gcjEE)) / (magic * sqrtMagic) * math.Pi)
	dLon = (dLon * 180.0) / (gcjA / sqrtMagic * math.Cos(radLat) * math.Pi)
	return dLon, dLat
}
