package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// EarthRadius is the mean radius of the earth in metres (IUGG R1), the sphere
// every distance in this package is measured on.
const EarthRadius = 6371008.8

const radians = math.Pi / 180

// Distance returns the great-circle distance in metres between a and b by the
// haversine formula on a sphere of EarthRadius. Its error against the WGS-84
// ellipsoid is under 0.5%, far below the error of treating crow-flies
// distance as travel distance.
func Distance(a, b orb.Point) float64 {
	return haversine(a, b, cosLat(a), cosLat(b))
}

// haversine is Distance with the cosines of both latitudes supplied, so that
// the index can cache them. Every distance in the package goes through it, so
// that two indexes computing the same pair get bit-identical results.
func haversine(a, b orb.Point, cosA, cosB float64) float64 {
	sLat := math.Sin((b[1] - a[1]) * radians / 2)
	sLon := math.Sin((b[0] - a[0]) * radians / 2)
	h := sLat*sLat + cosA*cosB*sLon*sLon
	if h > 1 {
		h = 1
	}
	return 2 * EarthRadius * math.Asin(math.Sqrt(h))
}

// cosLat returns the cosine of p's latitude.
func cosLat(p orb.Point) float64 {
	return math.Cos(p[1] * radians)
}

// ValidLatLon reports whether lat and lon are finite and within [-90, 90] and
// [-180, 180] degrees.
func ValidLatLon(lat, lon float64) bool {
	// NaN fails every comparison and ±Inf is out of range.
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}

// validPoint reports whether p holds a valid [lon, lat] pair.
func validPoint(p orb.Point) bool {
	return ValidLatLon(p[1], p[0])
}
