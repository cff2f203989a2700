// Package sim simulates a fleet of ambulances as the vehicle terminals
// Lifeline talks to. Each unit is its own MQTT client, as a real terminal
// is: it connects with a persistent session and a retained "offline" last
// will, announces itself online, reports GPS fixes, video uplink state,
// crew status presses and acknowledgements on its topics of contract v1,
// and takes assign and cancel commands on its cmd topic. An assigned unit
// drives to the incident, stays on scene, transports to the destination
// hospital, hands over and drives home, pressing the crew status of each
// stage; idle units may wander on short repositioning drives so that a map
// moves without calls. Speedup compresses the scenario for demos and load
// tests.
//
// Movement is a small pure model (trip): straight legs between waypoints
// with a speed profile and a mild weave, detouring to stay inside the
// world's bounds. There are no roads yet. The package takes its world as
// its own types (World, UnitSpec) and knows nothing of dispatch; the
// fleetsim command builds a World from an area file.
package sim
