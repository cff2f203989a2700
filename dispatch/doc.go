// Package dispatch is Lifeline's dispatch engine and the domain it works
// in: the area (jurisdictions, urban zones, stations, hospitals and the
// unit registry), units and their lifecycle, incidents, ranked
// recommendations and assignments.
//
// A Service keeps the live picture of the fleet from telemetry (it is the
// telemetry.Sink), takes calls, ranks the available units by what the call
// needs and by ETA within the zone's service radius (urban 5 km; rural
// 10 km, widening to 20 km), climbing from the call's county to its
// neighbours and the rest of the city when it must (recommend.go,
// ground.go), and assigns them with a compare-and-set, so that one unit is
// never sent twice. A unit of another county of the same city is borrowed
// with that county's consent (Request, AnswerConsent; ConsentExpiry ends
// the requests nobody answers). Every change of the picture is one Event,
// fanned out by a Publisher. The durable record sits behind Store,
// Consents and Tracks, implemented by the adapter subpackages.
//
// The KPI ledger (kpi.go) is computed from the record: each call keeps its
// call satisfaction, decided at intake, and Ledger turns a period's
// CallRecords into rates and stage percentiles. Coverage (coverage.go)
// keeps, incrementally, the share of each jurisdiction within its radius of
// an available unit and the best move-up; KPIFeed publishes both as the
// kpi event.
package dispatch
