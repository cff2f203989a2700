// Command fleetsim connects to an MQTT broker as the vehicle terminals of
// an area's units and drives them through realistic movement and crew
// status: assign and cancel commands from a Lifeline server are answered
// as a crew would, and idle units wander so that a map moves without
// calls. With many units, short intervals and a high speedup it is also
// Lifeline's load generator; it prints what it sent when it stops.
//
//	fleetsim --mqtt-url tcp://127.0.0.1:1883 --speedup 5
//	fleetsim --area fushun.geojson --units 200 --interval 1s --duration 10m
//
// Every flag can also be set by an environment variable, LIFELINE_ and the
// flag's name in upper snake case (LIFELINE_MQTT_URL for --mqtt-url); a
// flag on the command line wins.
package main
