// Package geo is the geometry leaf of Lifeline: great-circle distance, the
// GCJ-02 ("Mars") datum used by Chinese web maps, urban and rural zones with
// their search-radius ladders, administrative regions, the spatial index that
// answers "the k nearest units that pass a filter, within r metres", and the
// ETA model that turns a straight-line distance into a road distance and a
// drive time.
//
// Points are orb.Point values, [lon, lat] in WGS-84 degrees, unless a name
// says GCJ02. The package does no I/O and imports nothing else of Lifeline.
package geo
