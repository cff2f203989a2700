package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Stores is one implementation of the durable record under test. Every
// field must be set; open returns a fresh, empty set for each subtest.
type Stores struct {
	Store   dispatch.Store
	Users   dispatch.Users
	Audit   dispatch.Auditor
	History telemetry.History
}

// Run runs the conformance suite. open is called once per subtest and
// must return empty stores that it closes in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("Incidents", func(t *testing.T) { testIncidents(t, open) })
	t.Run("Assignments", func(t *testing.T) { testAssignments(t, open) })
	t.Run("Transitions", func(t *testing.T) { testTransitions(t, open) })
	t.Run("UnitRecords", func(t *testing.T) { testUnitRecords(t, open) })
	t.Run("ApplyAtomic", func(t *testing.T) { testApplyAtomic(t, open) })
	t.Run("CallRecords", func(t *testing.T) { testCallRecords(t, open) })
	t.Run("KPIDay", func(t *testing.T) { testKPIDay(t, open) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("History", func(t *testing.T) { testHistory(t, open) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, open) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, open) })
	t.Run("HospitalStates", func(t *testing.T) { testHospitalStates(t, open) })
	t.Run("Consents", func(t *testing.T) { testConsents(t, open) })
}

// t0 is the suite's clock: a time with microseconds, in UTC.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// wantCode fails t unless err carries the dispatch error code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := dispatch.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
	if !errors.Is(err, &dispatch.Error{Code: code}) {
		t.Fatalf("errors.Is(%v, code %s) = false", err, code)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// same fails t unless got and want are deeply equal once every time.Time
// in them is compared as an instant; it also checks that each time in
// got is in UTC.
func same(t testing.TB, got, want any) {
	t.Helper()
	g, w := norm(t, reflect.ValueOf(got), true), norm(t, reflect.ValueOf(want), false)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got %s\n%+v\nwant %s\n%+v", gb, got, wb, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// norm returns a copy of v with times in UTC without monotonic reading,
// and empty JSON as nil.
func norm(t testing.TB, v reflect.Value, checkUTC bool) any {
	t.Helper()
	if !v.IsValid() {
		return nil
	}
	c := reflect.New(v.Type()).Elem()
	normInto(t, c, v, checkUTC)
	return c.Interface()
}

func normInto(t testing.TB, dst, src reflect.Value, checkUTC bool) {
	t.Helper()
	switch {
	case src.Type() == timeType:
		tm := src.Interface().(time.Time)
		if checkUTC && !tm.IsZero() && tm.Location() != time.UTC {
			t.Fatalf("time %v is in %v, want UTC", tm, tm.Location())
		}
		dst.Set(reflect.ValueOf(tm.UTC().Round(0)))
	case src.Type() == reflect.TypeFor[json.RawMessage]():
		if src.Len() > 0 {
			dst.Set(src)
		}
	case src.Kind() == reflect.Pointer:
		if !src.IsNil() {
			p := reflect.New(src.Type().Elem())
			normInto(t, p.Elem(), src.Elem(), checkUTC)
			dst.Set(p)
		}
	case src.Kind() == reflect.Struct:
		for i := range src.NumField() {
			if dst.Field(i).CanSet() {
				normInto(t, dst.Field(i), src.Field(i), checkUTC)
			}
		}
	case src.Kind() == reflect.Slice:
		if src.IsNil() || src.Len() == 0 {
			return // nil and empty are the same answer
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			normInto(t, s.Index(i), src.Index(i), checkUTC)
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}
