// Package storetest is the conformance suite every implementation of
// Lifeline's durable record passes: dispatch.Store, dispatch.Users,
// dispatch.Auditor and telemetry.History. The in-memory reference
// (dispatch/memory), the embedded SQLite store and the PostgreSQL store
// each run it from their own tests, so that they can be swapped without
// the rest of Lifeline noticing:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Stores {
//			db := open(t) // a fresh, empty store, closed in t.Cleanup
//			return storetest.Stores{Store: db, Users: db, Audit: db, History: db}
//		})
//	}
//
// What the suite pins down beyond the interfaces' comments: times come
// back in UTC at microsecond precision (what PostgreSQL keeps); not found
// and conflicts are dispatch error codes; an assignment is exclusive per
// unit even against concurrent creators; the audit chain never forks
// under concurrent appends; a fix is the same fix when its unit, seq and
// fix time are equal (a terminal that reboots starts its seq again).
package storetest
