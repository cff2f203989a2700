//go:build !race

package geo

// raceEnabled is set when the race detector runs (see race_test.go).
const raceEnabled = false
