package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
)

// The reform's targets and the ledger's definitions (README, "KPIs").
const (
	// SatisfactionTarget is the share of calls that must find an
	// available unit inside the service radius.
	SatisfactionTarget = 0.95
	// OnSceneTarget is the share of priority-1 calls a unit must reach.
	OnSceneTarget = 0.98
	// OnSceneDue is how long after it came an unfinished priority-1 call
	// counts against the on-scene rate when no unit has reached it.
	OnSceneDue = time.Hour
	// MaxKPIPeriod bounds the period one KPI request reads.
	MaxKPIPeriod = 92 * 24 * time.Hour
	// KPIWindow is the period a KPI request covers when it names no
	// start, and the period of the kpi websocket message: the last 24
	// hours, the same in every time zone.
	KPIWindow = 24 * time.Hour
	// maxMisses bounds the misses a KPI answer lists (newest first);
	// their counts are always whole.
	maxMisses = 1000
)

// Satisfaction is the reform's call satisfaction of one call: whether an
// available unit was inside the call's service radius when the call came.
// It is decided at intake, from the live picture, and kept with the call:
// it cannot be worked out later from the record.
//
// Linkage: a call none of whose own units was inside the radius, but one
// of another county of the same city was, is satisfied through linkage
// (SatisfiedLinked): county-to-city linkage is what the reform counts on,
// so it counts as satisfied, and the ledger reports how many calls needed
// it. A unit of another city never counts.
type Satisfaction string

// Satisfaction values.
const (
	// SatisfiedOwn: an available unit of the call's own jurisdiction (or
	// one beneath it) was inside the radius.
	SatisfiedOwn Satisfaction = "own"
	// SatisfiedLinked: none of its own, but an available unit of another
	// jurisdiction of the same city was (sending it needs consent).
	SatisfiedLinked Satisfaction = "linked"
	// Unsatisfied: no available unit of the city was inside the radius.
	Unsatisfied Satisfaction = "missed"
)

// Satisfied reports whether s counts as a satisfied call.
func (s Satisfaction) Satisfied() bool { return s == SatisfiedOwn || s == SatisfiedLinked }

// satisfaction decides the call satisfaction of inc from the live picture
// at now, with the reason when no unit of its own jurisdiction was inside
// its radius. Available means what a recommendation means: available,
// online and with a fresh position. It walks the picture outward from the
// call and stops at the first answer: an own unit inside the radius, or
// the first available unit beyond it.
func (s *Service) satisfaction(inc *Incident, now time.Time) (Satisfaction, string) {
	radius := inc.RadiusM
	city := s.cityOf(inc.Jurisdiction)
	var (
		got            Satisfaction
		linked, beyond string
		busy           = map[string]int{} // why own units inside the radius were not available
	)
	s.pic.Nearby(orbPoint(inc.Location), farthest, func(h geo.Hit, st UnitState) bool {
		own := s.area.Within(st.Jurisdiction, inc.Jurisdiction)
		if !own && !s.area.Within(st.Jurisdiction, city) {
			return true
		}
		free := s.ineligible(&st, now) == ""
		if h.Distance <= radius {
			switch {
			case own && free:
				got = SatisfiedOwn
				return false
			case own:
				busy[unavailable(&st)]++
			case free && linked == "":
				linked = fmt.Sprintf("%s of %s at %.1f km", st.ID, s.jurName(st.Jurisdiction), h.Distance/1000)
			}
			return true
		}
		if linked != "" {
			return false // no own unit inside the radius: decided
		}
		if free {
			beyond = fmt.Sprintf("nearest available %s at %.1f km", st.ID, h.Distance/1000)
			return false
		}
		return true
	})
	if got == SatisfiedOwn {
		return got, ""
	}
	why := fmt.Sprintf("no available unit of %s within the %s %.0f km radius", s.jurName(inc.Jurisdiction), inc.Zone, radius/1000)
	var inside []string
	for _, k := range unavailableKinds {
		if n := busy[k]; n > 0 {
			inside = append(inside, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(inside) > 0 {
		why += " (inside it: " + strings.Join(inside, ", ") + ")"
	}
	if linked != "" {
		return SatisfiedLinked, why + "; linkage: " + linked
	}
	if beyond == "" {
		beyond = "no available unit in " + s.jurName(city)
	}
	return Unsatisfied, why + ": " + beyond
}

// unavailableKinds orders the reasons a unit was not available.
var unavailableKinds = []string{"busy", "out of service", "offline", "stale"}

// unavailable says in a word why st, which ineligible refused, is not
// available.
func unavailable(st *UnitState) string {
	switch {
	case st.Status.Committed():
		return "busy"
	case st.Status != Available:
		return "out of service"
	case !st.Online:
		return "offline"
	}
	return "stale"
}

// cityOf returns the top of the hierarchy above jurisdiction id: its city.
func (s *Service) cityOf(id string) string {
	for range len(s.area.Jurisdictions) {
		j, ok := s.area.Jurisdiction(id)
		if !ok || j.Parent == "" {
			return id
		}
		id = j.Parent
	}
	return id
}

// jurName names jurisdiction id for people: "富顺县 (510322)".
func (s *Service) jurName(id string) string {
	if j, ok := s.area.Jurisdiction(id); ok && j.Name != "" && j.Name != id {
		return j.Name + " (" + id + ")"
	}
	return id
}

// KPIFilter selects the calls of a KPI ledger: those that came in
// [From, To), of the given jurisdictions (all when empty).
type KPIFilter struct {
	From, To      time.Time
	Jurisdictions []string
}

// CallRecord is one call as the KPI ledger reads it from the record: the
// call, and when each stage of it first happened (zero when it has not).
type CallRecord struct {
	Incident           string
	Jurisdiction       string
	Priority           Priority
	Status             IncidentStatus
	Satisfaction       Satisfaction
	SatisfactionReason string
	CreatedAt          time.Time // the call came
	Dispatched         time.Time // the first assignment was made
	Accepted           time.Time // a crew first accepted it
	EnRoute            time.Time // a unit on it first pressed en_route
	OnScene            time.Time // a unit on it first reached the scene
	AtHospital         time.Time // a unit on it first reached a hospital
	ClosedAt           time.Time // it ended (closed or cancelled)
}

// KPIs is the ledger of a jurisdiction over a period, computed from the
// durable record (so it survives restarts and agrees between servers):
// every call that came in the period counts, with everything that has
// happened to it since.
type KPIs struct {
	// Jurisdiction is the scope: the calls of it and of everything
	// beneath it; "" for the whole area.
	Jurisdiction string          `json:"jurisdiction"`
	From         time.Time       `json:"from"`
	To           time.Time       `json:"to"`
	Calls        int             `json:"calls"`
	Satisfaction SatisfactionKPI `json:"satisfaction"`
	OnScene      OnSceneKPI      `json:"on_scene"`
	Stages       Stages          `json:"stages"`
	// Coverage is the jurisdiction's coverage now; only the kpi
	// websocket message carries it.
	Coverage *CoverageShare `json:"coverage,omitempty"`
}

// SatisfactionKPI is the call satisfaction of a period: the share of the
// calls with a recorded satisfaction that found an available unit inside
// the radius when they came (own or through linkage).
type SatisfactionKPI struct {
	Rate       *float64 `json:"rate"` // nil when no call has a recorded satisfaction
	Target     float64  `json:"target"`
	Recorded   int      `json:"recorded"`    // calls with a recorded satisfaction
	Satisfied  int      `json:"satisfied"`   // own or linked
	ViaLinkage int      `json:"via_linkage"` // of them, satisfied only through linkage
	Missed     int      `json:"missed"`
	Unrecorded int      `json:"unrecorded"` // calls taken before satisfaction was recorded
	Misses     []Miss   `json:"misses"`     // the newest maxMisses misses, newest first
}

// OnSceneKPI is the on-scene rate of priority-1 calls. A priority-1 call
// is due once it ended (closed or cancelled) or OnSceneDue after it came;
// a due call counts as reached when a unit on it reached the scene. A
// call cancelled before any unit reached the scene (a false alarm, a
// duplicate, a test) is excluded; a call neither due nor reached is
// pending. Rate is reached over due.
type OnSceneKPI struct {
	Priority Priority `json:"priority"`
	Rate     *float64 `json:"rate"` // nil when no call is due
	Target   float64  `json:"target"`
	DueAfter float64  `json:"due_after_s"`
	Calls    int      `json:"calls"`
	Due      int      `json:"due"`
	Reached  int      `json:"reached"`
	Pending  int      `json:"pending"`
	Excluded int      `json:"excluded"`
	Misses   []Miss   `json:"misses"` // due and not reached, newest first
}

// Miss is a call that missed a target, and why.
type Miss struct {
	Incident     string    `json:"incident"`
	Jurisdiction string    `json:"jurisdiction"`
	At           time.Time `json:"at"` // when the call came
	Reason       string    `json:"reason"`
}

// Stages holds, for each stage of a call, how long after the call it was
// reached, over the calls that reached it.
type Stages struct {
	Dispatch   StageKPI `json:"dispatch"`    // the first assignment made
	Ack        StageKPI `json:"ack"`         // a crew accepted
	EnRoute    StageKPI `json:"en_route"`    // a unit pressed en_route
	OnScene    StageKPI `json:"on_scene"`    // a unit reached the scene
	AtHospital StageKPI `json:"at_hospital"` // a unit reached a hospital
	Clear      StageKPI `json:"clear"`       // the call closed (not cancelled)
}

// StageKPI is the distribution of one stage's time from the call, in
// seconds, by the nearest-rank percentile (Percentile). A time before the
// call (a terminal's clock behind the server's) counts as 0.
type StageKPI struct {
	N   int      `json:"n"`
	P50 *float64 `json:"p50_s"` // nil when N is 0
	P90 *float64 `json:"p90_s"`
}

// Percentile returns the nearest-rank pct-th percentile of sorted (in
// increasing order, not empty): the smallest value such that at least
// pct% of the values are less than or equal to it, sorted[ceil(pct·n/100)-1].
func Percentile(sorted []float64, pct int) float64 {
	rank := (pct*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

// Ledger computes the KPIs of recs (as Store.CallRecords returns them) as
// they stand at now: the one definition of every rate and percentile. It
// leaves the scope and the period to the caller.
func Ledger(recs []CallRecord, now time.Time) KPIs {
	k := KPIs{
		Calls:        len(recs),
		Satisfaction: SatisfactionKPI{Target: SatisfactionTarget, Misses: []Miss{}},
		OnScene:      OnSceneKPI{Priority: 1, Target: OnSceneTarget, DueAfter: OnSceneDue.Seconds(), Misses: []Miss{}},
	}
	var stages [6][]float64
	since := func(r *CallRecord, t time.Time) float64 { return max(t.Sub(r.CreatedAt), 0).Seconds() }
	for i := range recs {
		r := &recs[i]
		for j, t := range []time.Time{r.Dispatched, r.Accepted, r.EnRoute, r.OnScene, r.AtHospital, r.cleared()} {
			if !t.IsZero() {
				stages[j] = append(stages[j], since(r, t))
			}
		}
		sat := &k.Satisfaction
		switch r.Satisfaction {
		case "":
			sat.Unrecorded++
		case SatisfiedOwn, SatisfiedLinked:
			sat.Recorded++
			sat.Satisfied++
			if r.Satisfaction == SatisfiedLinked {
				sat.ViaLinkage++
			}
		default:
			sat.Recorded++
			sat.Missed++
			sat.Misses = append(sat.Misses, r.miss(r.SatisfactionReason))
		}
		if r.Priority == 1 {
			k.OnScene.add(r, now)
		}
	}
	k.Satisfaction.Rate = ratio(k.Satisfaction.Satisfied, k.Satisfaction.Recorded)
	k.OnScene.Rate = ratio(k.OnScene.Reached, k.OnScene.Due)
	k.Satisfaction.Misses = newest(k.Satisfaction.Misses)
	k.OnScene.Misses = newest(k.OnScene.Misses)
	for j, st := range []*StageKPI{&k.Stages.Dispatch, &k.Stages.Ack, &k.Stages.EnRoute, &k.Stages.OnScene, &k.Stages.AtHospital, &k.Stages.Clear} {
		*st = stage(stages[j])
	}
	return k
}

// add counts r, a priority-1 call, in the on-scene rate as it stands at now.
func (o *OnSceneKPI) add(r *CallRecord, now time.Time) {
	o.Calls++
	switch {
	case !r.OnScene.IsZero():
		o.Due++
		o.Reached++
	case r.Status == IncidentCancelled:
		o.Excluded++
	case r.Status == IncidentClosed:
		o.Due++
		o.Misses = append(o.Misses, r.miss("closed without a unit on scene"))
	case now.Sub(r.CreatedAt) >= OnSceneDue:
		o.Due++
		o.Misses = append(o.Misses, r.miss(fmt.Sprintf("no unit on scene %.0f min after the call (%s)", OnSceneDue.Minutes(), r.Status)))
	default:
		o.Pending++
	}
}

// cleared is when the call closed, zero unless it is closed.
func (r *CallRecord) cleared() time.Time {
	if r.Status != IncidentClosed {
		return time.Time{}
	}
	return r.ClosedAt
}

func (r *CallRecord) miss(reason string) Miss {
	return Miss{Incident: r.Incident, Jurisdiction: r.Jurisdiction, At: r.CreatedAt, Reason: reason}
}

// newest orders misses newest first and keeps maxMisses of them.
func newest(ms []Miss) []Miss {
	slices.SortStableFunc(ms, func(a, b Miss) int { return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.Incident, b.Incident)) })
	if len(ms) > maxMisses {
		ms = ms[:maxMisses]
	}
	return ms
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

func stage(secs []float64) StageKPI {
	if len(secs) == 0 {
		return StageKPI{}
	}
	slices.Sort(secs)
	p50, p90 := Percentile(secs, 50), Percentile(secs, 90)
	return StageKPI{N: len(secs), P50: &p50, P90: &p90}
}

// KPIs returns the KPI ledger of jurisdiction (by's own when ""; the whole
// area for an administrator of it) for the calls that came in [from, to).
// A zero to is now; a zero from is KPIWindow before to. The period must
// be positive and at most MaxKPIPeriod.
func (s *Service) KPIs(ctx context.Context, by Principal, jurisdiction string, from, to time.Time) (*KPIs, error) {
	scope, err := s.Scope(by, jurisdiction)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-KPIWindow)
	}
	if !from.Before(to) {
		return nil, Errorf(CodeInvalid, "from %s is not before to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if to.Sub(from) > MaxKPIPeriod {
		return nil, Errorf(CodeInvalid, "period of %s: at most %.0f days", to.Sub(from).Round(time.Hour), MaxKPIPeriod.Hours()/24)
	}
	recs, err := s.store.CallRecords(ctx, KPIFilter{From: from, To: to, Jurisdictions: s.beneath(scope)})
	if err != nil {
		return nil, fmt.Errorf("kpis: %w", err)
	}
	k := Ledger(recs, now)
	k.Jurisdiction, k.From, k.To = scope, from.UTC(), to.UTC()
	return &k, nil
}

// beneath lists scope and every jurisdiction beneath it; nil for "" (all).
func (s *Service) beneath(scope string) []string {
	if scope == "" {
		return nil
	}
	var out []string
	for _, j := range s.area.Jurisdictions {
		if s.area.Within(j.ID, scope) {
			out = append(out, j.ID)
		}
	}
	return out
}
