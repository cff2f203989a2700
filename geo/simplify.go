package geo

import (
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/simplify"
)

// Simplify thins a track for drawing: it returns the indexes of the
// points of track that the Douglas-Peucker algorithm keeps when no point
// dropped lies farther than metres from the simplified line. The first
// and last points are always kept; metres <= 0, or fewer than three
// points, keeps every point.
//
// Douglas-Peucker (orb/simplify) measures in the plane, so the points are
// first projected onto a local plane in metres: an equirectangular
// projection about the track's mean latitude, whose scale error over the
// few hundred kilometres a track spans is far below a drawing tolerance.
func Simplify(track []orb.Point, metres float64) []int {
	keep := make([]int, 0, len(track))
	if metres <= 0 || len(track) < 3 {
		for i := range track {
			keep = append(keep, i)
		}
		return keep
	}
	lat := 0.0
	for _, p := range track {
		lat += p[1]
	}
	lat /= float64(len(track))
	kx, ky := EarthRadius*radians*math.Cos(lat*radians), EarthRadius*radians
	origin := track[0]
	plane := make(orb.LineString, len(track))
	for i, p := range track {
		plane[i] = orb.Point{(p[0] - origin[0]) * kx, (p[1] - origin[1]) * ky}
	}
	kept := simplify.DouglasPeucker(metres).LineString(append(orb.LineString(nil), plane...))
	// The points kept are copies of plane's, in order, the first and the
	// last at the ends: find each inner one's index. Equal points (a unit
	// standing still) are interchangeable: the first not yet passed is
	// taken, which is never past the one kept.
	keep = append(keep, 0)
	i := 1
	for _, p := range kept[1 : len(kept)-1] {
		for plane[i] != p {
			i++
		}
		keep = append(keep, i)
		i++
	}
	return append(keep, len(track)-1)
}
