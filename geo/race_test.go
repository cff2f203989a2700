//go:build race

package geo

// raceEnabled is set when the race detector runs, which makes sync.Pool
// drop items at random, so that allocation counts mean nothing.
const raceEnabled = true
