// Package simarea draws the fleet simulator's world from an area: each
// unit at its home, driving inside its jurisdiction, to the area's
// hospitals. telemetry/sim may not know dispatch's types, so this small
// package, which knows both, is the one place the two meet; cmd/fleetsim
// and lifelined's --demo both use it.
package simarea
