package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

func orbPoint(l LatLon) orb.Point { return orb.Point{l.Lon, l.Lat} }

// farthest bounds the walk outward from a call: 1,000 km, so that a
// dispatcher with no unit anywhere near still sees the nearest ones.
const farthest = 1_000_000

// maxExcluded bounds the units a recommendation lists as excluded from
// the call's own jurisdiction, and maxExcludedFurther from each further
// rung of the ladder: the ones the search met within the widest radius,
// nearest first. A fleet with many busy or offline units must not grow
// every answer with them.
const (
	maxExcluded        = 20
	maxExcludedFurther = 5
)

// furtherTop is how many candidates each rung beyond the own jurisdiction
// lists (neighbouring counties, the rest of the city).
const furtherTop = 3

// The rungs of the ladder in order, as the ranker counts them; stepNone
// is where the ladder ends when no rung holds a suitable unit.
const (
	stepOwn = iota
	stepOwnWidened
	stepNeighbour
	stepCity
	stepNone
)

// The distance bands of a call's radii.
const (
	bandFirst  = iota // within the first radius
	bandWidest        // beyond it, within the widest
	bandBeyond        // beyond the widest
	nBands
)

// The tiers of the ranking, best first.
const (
	tierSuited  = iota // within the radius used, with what the call needs
	tierLacking        // within the radius used, without it
	tierOutside        // outside the radius used: a backup
)

// rank ranks the units for inc as its own county's dispatcher would see
// them (alerts to the county's consoles). It reads nothing from the record.
func (s *Service) rank(ctx context.Context, inc *Incident) Recommendations {
	return s.rankFor(inc, Principal{Role: RoleDispatcher, Jurisdiction: inc.Jurisdiction})
}

// rankFor lists the units to send to inc, best first, for by (who decides
// whether a unit needs its county's consent), and why units near it are
// not listed.
//
// The ranking climbs the escalation ladder: the call's own county within
// the first radius of its zone (own); the own county within the widest
// radius (own_widened, rural calls: 10 km, then 20 km); the neighbouring
// counties of the same city (neighbour); the rest of the city (city). It
// stops at the first rung that holds a suitable unit: one with what the
// call needs (an ALS crew for priority 1, an incubator for a neonatal
// call), or any unit when none within the widest radius has it. The
// radius used is the first one when the own county had a suitable unit
// inside it, else the widest.
//
// The candidates of the rungs up to that one come first: units within
// the radius used that have what the call needs, then those that lack
// it, then those outside the radius, each group in ladder order and by
// ETA. Rungs above it follow, as backups, in ladder order; they are
// listed only when the ladder climbed. Up to Config.Candidates units
// come from the own county and up to three from each further rung.
//
// The search walks the picture outward from the call and stops once no
// unit farther out could change the list: a unit's ETA is never below
// the estimator's MinDuration for its distance, so the ranking is by ETA
// exactly, even when a farther unit drives faster. Its cost grows with
// how far it must look, not with the fleet. Units that declined or
// abandoned the call are not offered it again.
func (s *Service) rankFor(inc *Incident, by Principal) Recommendations {
	r := rankers.Get().(*ranker)
	defer r.release()
	r.start(s, inc)
	if r.home != nil {
		s.pic.Nearby(r.loc, farthest, r.visit)
	}
	return r.result(by)
}

// firstRadius is the first search radius for a call at p in jurisdiction
// jur and zone z.
func (s *Service) firstRadius(jur string, p orb.Point, z geo.Zone) float64 {
	first, _ := s.ground.ladder(jur, p, z)
	return first
}

// cand is a unit the ranker may list.
type cand struct {
	unit, callsign, station, jur string
	caps                         capSet
	d                            float64
	route                        geo.Route
}

// before orders candidates by ETA, then distance, then id.
func (c *cand) before(o *cand) bool {
	return cmp.Or(cmp.Compare(c.route.Duration, o.route.Duration), cmp.Compare(c.d, o.d), strings.Compare(c.unit, o.unit)) < 0
}

// excl is a unit the ranker met that cannot go, with what says why.
type excl struct {
	unit, incident, refused string
	status                  UnitStatus
	online                  bool
	fix                     *Position
}

// ending is where the ladder stopped: whether the call's needs were
// waived (no unit within the widest radius has them), the rung, and the
// radius used.
type ending struct {
	waived bool
	stop   int
	radius float64
}

// ranker is the state of one ranking. Rankers are pooled, so that the
// walk over the picture allocates nothing once warm.
type ranker struct {
	s             *Service
	inc           *Incident
	home          *place
	now           time.Time
	loc           orb.Point
	first, widest float64
	wanted, needs capSet // what the call needs; of that, what some unit has
	refused       map[string]string
	k             [nBuckets]int

	// The best k[b] candidates of each bucket, band and capability (1:
	// has what the call needs), by ETA; whether one of each was met.
	classes [nBuckets][nBands][2][]cand
	count   [nBuckets][nBands][2]int // how many were met: found is count > 0
	met     [nBuckets]int            // units of each bucket met, eligible or not
	excl    [nBuckets][]excl
	d       float64 // the distance the walk has reached

	visit func(geo.Hit, UnitState) bool // r.see, bound once
}

var rankers = sync.Pool{New: func() any {
	r := new(ranker)
	r.visit = r.see
	return r
}}

// start prepares r to rank inc.
func (r *ranker) start(s *Service, inc *Incident) {
	r.s, r.inc, r.now, r.loc, r.d = s, inc, s.now(), orbPoint(inc.Location), 0
	r.home = s.ground.places[inc.Jurisdiction]
	r.first, r.widest = s.ground.ladder(inc.Jurisdiction, r.loc, inc.Zone)
	r.wanted = needsOf(inc)
	r.needs = r.wanted & s.ground.caps
	r.refused = s.refused.of(inc.ID)
	r.k = [nBuckets]int{s.top, furtherTop, furtherTop}
	r.count, r.met = [nBuckets][nBands][2]int{}, [nBuckets]int{}
}

// release clears r of the call's data and puts it back in the pool.
func (r *ranker) release() {
	for b := range r.classes {
		for band := range r.classes[b] {
			for c := range r.classes[b][band] {
				clear(r.classes[b][band][c])
				r.classes[b][band][c] = r.classes[b][band][c][:0]
			}
		}
		clear(r.excl[b])
		r.excl[b] = r.excl[b][:0]
	}
	r.s, r.inc, r.home, r.refused = nil, nil, nil, nil
	rankers.Put(r)
}

// see takes the next unit of the walk and says whether to go on.
func (r *ranker) see(h geo.Hit, st UnitState) bool {
	r.d = h.Distance
	if b, ok := r.s.ground.bucketOf(r.home, st.Jurisdiction); ok {
		r.met[b]++
		r.consider(b, h, &st)
	}
	return !r.settled()
}

// band returns the band of distance d.
func (r *ranker) band(d float64) int {
	switch {
	case d <= r.first:
		return bandFirst
	case d <= r.widest:
		return bandWidest
	}
	return bandBeyond
}

// consider files unit st of bucket b, met at h, as a candidate or as
// excluded.
func (r *ranker) consider(b int, h geo.Hit, st *UnitState) {
	band := r.band(h.Distance)
	refused := r.refused[st.ID]
	if !r.s.eligible(st, r.now) || refused != "" {
		limit := maxExcludedFurther
		if b == bucketOwn {
			limit = maxExcluded
		}
		if band != bandBeyond && len(r.excl[b]) < limit {
			r.excl[b] = append(r.excl[b], excl{unit: st.ID, incident: st.Incident, refused: refused, status: st.Status, online: st.Online, fix: st.Position})
		}
		return
	}
	c := cand{
		unit: st.ID, callsign: st.Callsign, station: st.Station, jur: st.Jurisdiction,
		caps: capsOf(st.Capabilities), d: h.Distance,
		route: r.s.eta.Estimate(h.Point, r.loc, r.s.ground.zoneAt(h.Point), r.inc.Zone),
	}
	able := 0
	if c.caps&r.needs == r.needs {
		able = 1
	}
	r.count[b][band][able]++
	keep(&r.classes[b][band][able], c, r.k[b])
}

// keep inserts c into list, which is sorted and holds at most k, if it is
// among the k best.
func keep(list *[]cand, c cand, k int) {
	l := *list
	i := len(l)
	for i > 0 && c.before(&l[i-1]) {
		i--
	}
	if i >= k {
		return
	}
	if len(l) < k {
		l = append(l, cand{})
	}
	copy(l[i+1:], l[i:])
	l[i] = c
	*list = l
}

// ending says where the ladder stops, once the walk has reached distance
// d: ok is false while a unit farther out could still change it.
func (r *ranker) ending(d float64) (ending, bool) {
	able := false
	for b := range nBuckets {
		able = able || r.count[b][bandFirst][1] > 0 || r.count[b][bandWidest][1] > 0
	}
	if r.needs != 0 && !able && d <= r.widest {
		return ending{}, false
	}
	o := ending{waived: r.needs != 0 && !able}
	suits := func(b, band int) bool { return r.count[b][band][1] > 0 || (o.waived && r.count[b][band][0] > 0) }
	switch {
	case suits(bucketOwn, bandFirst):
		o.stop = stepOwn
	case d <= r.first:
		return ending{}, false
	case suits(bucketOwn, bandWidest):
		o.stop = stepOwnWidened
	case d <= r.widest:
		return ending{}, false
	case suits(bucketNeighbour, bandFirst) || suits(bucketNeighbour, bandWidest):
		o.stop = stepNeighbour
	case suits(bucketCity, bandFirst) || suits(bucketCity, bandWidest):
		o.stop = stepCity
	default:
		o.stop = stepNone
	}
	o.radius = r.widest
	if o.stop == stepOwn {
		o.radius = r.first
	}
	return o, true
}

// listed reports whether bucket b is listed under o: the own jurisdiction
// always, further rungs when the ladder climbed.
func listed(b int, o ending) bool { return b == bucketOwn || o.stop != stepOwn }

// settled reports whether no unit beyond the walk's distance could change
// the ranking.
func (r *ranker) settled() bool {
	o, ok := r.ending(r.d)
	if !ok {
		return false
	}
	lb := r.s.eta.MinDuration(r.d)
	for b := range nBuckets {
		if listed(b, o) && !r.bucketSettled(b, o, lb) {
			return false
		}
	}
	return true
}

// bucketSettled reports whether the candidates bucket b lists under o are
// final at the walk's distance, lb being the shortest drive from there:
// every unit of the bucket has been met, or it has its k candidates and
// the last of them ranks before any unit still unmet could.
func (r *ranker) bucketSettled(b int, o ending, lb time.Duration) bool {
	if r.met[b] >= r.home.units[b] {
		return true
	}
	// The best an unmet unit could be: farther than r.d, no sooner than lb.
	tmin := tierOutside
	if r.d <= o.radius {
		tmin = tierSuited
	}
	// A quick no: an unmet unit could still be suited, and fewer than k are.
	have := 0
	for band := range nBands {
		for able := range 2 {
			if tmin == tierOutside || (r.band(r.d) >= band && (able == 1 || o.waived)) {
				have += r.count[b][band][able]
			}
		}
	}
	if have < r.k[b] {
		return false
	}
	n, want := 0, r.k[b]
	var tier, step int
	var eta time.Duration
	r.each(b, o, func(c *cand, t, s int) bool {
		n++
		tier, step, eta = t, s, c.route.Duration
		return n < want
	})
	if n < want {
		return false
	}
	smin := r.step(b, r.band(r.d))
	return tier < tmin || (tier == tmin && (step < smin || (step == smin && eta < lb)))
}

// step returns the rung of a unit of bucket b in distance band band.
func (r *ranker) step(b, band int) int {
	switch {
	case b == bucketNeighbour:
		return stepNeighbour
	case b == bucketCity:
		return stepCity
	case band == bandFirst:
		return stepOwn
	}
	return stepOwnWidened
}

// each calls fn with the candidates of bucket b in ranking order under o,
// with their tier and rung, until fn returns false.
func (r *ranker) each(b int, o ending, fn func(c *cand, tier, step int) bool) {
	type source struct {
		tier, step int
		list       []cand
	}
	var srcs [nBands * 2]source
	n := 0
	for band := range nBands {
		for able := range 2 {
			l := r.classes[b][band][able]
			if len(l) == 0 {
				continue
			}
			t := tierSuited
			switch {
			case band > bandFirst && (band == bandBeyond || o.radius <= r.first):
				t = tierOutside
			case able == 0 && !o.waived:
				t = tierLacking
			}
			src := source{tier: t, step: r.step(b, band), list: l}
			i := n
			for i > 0 && (srcs[i-1].tier > src.tier || (srcs[i-1].tier == src.tier && srcs[i-1].step > src.step)) {
				srcs[i] = srcs[i-1]
				i--
			}
			srcs[i] = src
			n++
		}
	}
	for i := 0; i < n; {
		j := i
		for j < n && srcs[j].tier == srcs[i].tier && srcs[j].step == srcs[i].step {
			j++
		}
		var pos [nBands * 2]int
		for {
			best := -1
			for x := i; x < j; x++ {
				if pos[x] < len(srcs[x].list) && (best < 0 || srcs[x].list[pos[x]].before(&srcs[best].list[pos[best]])) {
					best = x
				}
			}
			if best < 0 {
				break
			}
			if !fn(&srcs[best].list[pos[best]], srcs[best].tier, srcs[best].step) {
				return
			}
			pos[best]++
		}
		i = j
	}
}

// pick is a candidate chosen for the list.
type pick struct {
	cand
	tier, step int
}

// result builds the recommendations from what the walk found.
func (r *ranker) result(by Principal) Recommendations {
	s, inc := r.s, r.inc
	out := Recommendations{Incident: inc.ID, RadiusM: r.widest, Candidates: []Recommendation{}, Excluded: []Exclusion{}, GeneratedAt: r.now.UTC()}
	if r.home == nil {
		return out
	}
	o, _ := r.ending(math.Inf(1))
	out.RadiusM = o.radius
	var picks []pick
	for b := range nBuckets {
		if !listed(b, o) {
			continue
		}
		n := 0
		r.each(b, o, func(c *cand, tier, step int) bool {
			picks = append(picks, pick{cand: *c, tier: tier, step: step})
			n++
			return n < r.k[b]
		})
		for _, e := range r.excl[b] {
			out.Excluded = append(out.Excluded, Exclusion{Unit: e.unit, Reason: s.whyNot(&e, r.now)})
		}
	}
	slices.SortStableFunc(picks, func(a, b pick) int {
		pa, pb := a.step > o.stop, b.step > o.stop
		switch {
		case pa != pb:
			if pa {
				return 1
			}
			return -1
		case pa: // backups from rungs above the stop: ladder order
			if c := cmp.Or(cmp.Compare(a.step, b.step), cmp.Compare(a.tier, b.tier)); c != 0 {
				return c
			}
		default:
			if c := cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.step, b.step)); c != 0 {
				return c
			}
		}
		if a.before(&b.cand) {
			return -1
		}
		return 1
	})
	var best *pick // the first listed unit with what the call needs, inside the radius
	for i := range picks {
		if picks[i].tier == tierSuited && picks[i].caps&r.needs == r.needs && r.needs != 0 {
			best = &picks[i]
			break
		}
	}
	for i := range picks {
		p := &picks[i]
		rec := Recommendation{
			Rank: i + 1, Unit: p.unit, Callsign: p.callsign, Station: p.station,
			DistanceM: p.d, RoadM: p.route.Metres, ETAS: p.route.Duration.Seconds(),
			WithinRadius: p.d <= o.radius, Step: steps[p.step], Jurisdiction: p.jur,
			NeedsConsent: !by.Sees(s.area, p.jur),
		}
		rec.Reasons = r.reasons(p, &rec, o, best)
		out.Candidates = append(out.Candidates, rec)
	}
	slices.SortFunc(out.Excluded, func(a, b Exclusion) int { return cmp.Compare(a.Unit, b.Unit) })
	return out
}

// eligible reports whether st can be recommended now: available, online,
// with a fresh fix.
func (s *Service) eligible(st *UnitState, now time.Time) bool {
	return st.Status == Available && st.Online && st.Position != nil && now.Sub(st.Position.seen()) <= s.stale
}

// ineligible says why a unit cannot be recommended now, or "" when it can.
func (s *Service) ineligible(st *UnitState, now time.Time) string {
	if s.eligible(st, now) {
		return ""
	}
	return s.whyNot(&excl{unit: st.ID, incident: st.Incident, status: st.Status, online: st.Online, fix: st.Position}, now)
}

// whyNot says why an excluded unit cannot be recommended.
func (s *Service) whyNot(e *excl, now time.Time) string {
	switch {
	case e.status != Available:
		if e.incident != "" {
			return fmt.Sprintf("%s on %s", e.status, e.incident)
		}
		return string(e.status)
	case !e.online:
		return "terminal offline"
	case e.fix == nil:
		return "no GPS fix yet"
	case now.Sub(e.fix.seen()) > s.stale:
		return fmt.Sprintf("position stale: last fix received %s ago", now.Sub(e.fix.seen()).Round(time.Second))
	}
	return e.refused
}

// reasons explains a candidate's place in the ranking: how far and how
// long, the rung it comes from and why the ladder climbed to it, and what
// it has or lacks of what the call needs.
func (r *ranker) reasons(p *pick, rec *Recommendation, o ending, best *pick) []string {
	inc := r.inc
	var out []string
	km := p.d / 1000
	switch {
	case !rec.WithinRadius && rec.Rank == 1:
		out = append(out, fmt.Sprintf("no available unit within the %s %s radius: nearest outside it (%.1f km, about %.0f min) — consider linkage", inc.Zone, distance(o.radius), km, rec.ETAS/60))
	case !rec.WithinRadius:
		out = append(out, fmt.Sprintf("%.1f km, about %.0f min: outside the %s radius (backup)", km, rec.ETAS/60, distance(o.radius)))
	case rec.Rank == 1:
		out = append(out, fmt.Sprintf("best available unit: %.1f km, about %.0f min", km, rec.ETAS/60))
	default:
		out = append(out, fmt.Sprintf("%.1f km, about %.0f min", km, rec.ETAS/60))
	}
	what := "unit"
	if !o.waived && r.needs != 0 {
		what = needPhrase(r.needs)
	}
	home := r.home.Name
	switch {
	case o.stop == stepNone:
		if rec.Rank == 1 {
			out = append(out, fmt.Sprintf("no %s free within %s on any rung of the ladder", what, distance(r.widest)))
		}
	case p.step != o.stop:
	case p.step == stepOwnWidened && rec.WithinRadius:
		out = append(out, fmt.Sprintf("no %s free within %s: %s radius widened to %s", what, distance(r.first), inc.Zone, distance(r.widest)))
	case p.step == stepNeighbour:
		out = append(out, fmt.Sprintf("no %s of %s free within %s: the ladder climbs to its neighbouring counties", what, home, distance(r.widest)))
	case p.step == stepCity:
		out = append(out, fmt.Sprintf("no %s free within %s in %s or its neighbouring counties: the ladder climbs to the rest of the city", what, distance(r.widest), home))
	}
	if p.step >= stepNeighbour {
		where := "neighbouring county"
		if p.step == stepCity {
			where = "elsewhere in the city:"
		}
		line := fmt.Sprintf("%s %s (%s)", where, r.s.ground.places[p.jur].Name, p.jur)
		if rec.NeedsConsent {
			line += ": needs its consent"
		}
		out = append(out, line)
	}
	if p.caps&capALS != 0 {
		out = append(out, "ALS crew")
	}
	if p.caps&capIncubator != 0 && r.wanted&capIncubator != 0 {
		out = append(out, "carries a transport incubator")
	}
	if lack := r.wanted &^ p.caps; lack != 0 {
		var labels []string
		if lack&capALS != 0 {
			labels = append(labels, "BLS only")
		}
		if lack&capIncubator != 0 {
			labels = append(labels, "no transport incubator")
		}
		var tail string
		switch {
		case lack&^r.needs != 0:
			tail = fmt.Sprintf("the area has no %s", needPhrase(lack&^r.needs))
		case best != nil:
			tail = fmt.Sprintf("%s %s is %.1f km away", article(r.needs), needPhrase(r.needs), best.d/1000)
		default:
			tail = fmt.Sprintf("no %s free within %s", needPhrase(r.needs), distance(r.widest))
		}
		out = append(out, strings.Join(labels, ", ")+": "+tail)
	}
	return out
}

// needPhrase names a unit with the capabilities n.
func needPhrase(n capSet) string {
	switch n {
	case capALS:
		return "ALS unit"
	case capIncubator:
		return "unit with a transport incubator"
	case capALS | capIncubator:
		return "ALS unit with a transport incubator"
	}
	return "unit"
}

// article is the indefinite article before needPhrase(n).
func article(n capSet) string {
	if n&capALS != 0 {
		return "an"
	}
	return "a"
}

// distance writes metres as kilometres: "5 km", "2.5 km".
func distance(m float64) string {
	return strconv.FormatFloat(m/1000, 'f', -1, 64) + " km"
}
