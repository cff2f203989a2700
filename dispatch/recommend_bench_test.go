package dispatch_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// benchFleet is a service with n units on Zigong's six districts and
// counties (the demo's real boundaries and town), and calls to rank.
type benchFleet struct {
	svc   *dispatch.Service
	pic   *dispatch.LocalPicture
	area  *dispatch.Area
	adj   map[string][]string // the area's neighbours, for the brute force
	calls []*dispatch.Incident
}

// newBenchFleet places n units as a city's fleet would be: half of them
// near one of 200 posts (stations, towns), half anywhere, each belonging
// to the county it stands in; 30% ALS, 5% with an incubator; 30% busy
// (out of service). The calls come where people are: 70% near a post,
// the rest anywhere; 30% are priority 1, 5% neonatal.
func newBenchFleet(tb testing.TB, n int, index geo.Index) *benchFleet {
	tb.Helper()
	ctx := context.Background()
	a := geojson.Demo()
	a.Units = nil
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	var box orb.Bound
	for i, j := range a.Jurisdictions {
		if j.Region == nil {
			continue
		}
		if i == 0 || box.IsZero() {
			box = j.Region.Bound()
		}
		box = box.Union(j.Region.Bound())
	}
	inside := func(p orb.Point) (string, bool) {
		j, _, ok := a.Locate(p)
		return j.ID, ok && j.Parent != ""
	}
	anywhere := func() (orb.Point, string) {
		for {
			p := orb.Point{box.Min[0] + rng.Float64()*(box.Max[0]-box.Min[0]), box.Min[1] + rng.Float64()*(box.Max[1]-box.Min[1])}
			if j, ok := inside(p); ok {
				return p, j
			}
		}
	}
	posts := make([]orb.Point, 200)
	for i := range posts {
		posts[i], _ = anywhere()
	}
	near := func() (orb.Point, string) {
		for {
			c := posts[rng.IntN(len(posts))]
			p := at(c, rng.NormFloat64()*800, rng.NormFloat64()*800)
			if j, ok := inside(p); ok {
				return p, j
			}
		}
	}
	where := make([]orb.Point, n)
	for i := range n {
		p, j := anywhere()
		if i%2 == 0 {
			p, j = near()
		}
		u := dispatch.Unit{ID: fmt.Sprintf("U%06d", i), Callsign: "c", Jurisdiction: j, Capabilities: []string{dispatch.BLS}}
		switch r := rng.Float64(); {
		case r < 0.05:
			u.Capabilities = []string{dispatch.ALS, dispatch.NeoCare}
		case r < 0.30:
			u.Capabilities = []string{dispatch.ALS}
		}
		a.Units = append(a.Units, u)
		where[i] = p
	}
	clock := func() time.Time { return clock0 }
	pic := dispatch.NewLocalPicture(a.Units, index)
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: a, Store: memory.NewStore(), Events: dispatch.NewBus(), Picture: pic, Now: clock, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	for i, u := range a.Units {
		p := where[i]
		fix := telemetry.Fix{Unit: u.ID, Seq: 1, Time: clock0, Lat: p.Lat(), Lon: p.Lon(), Received: clock0}
		if err := svc.Positions(ctx, telemetry.Positions{Unit: u.ID, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
			tb.Fatal(err)
		}
		if rng.Float64() < 0.3 {
			if err := svc.Status(ctx, telemetry.Status{Unit: u.ID, Time: clock0, Status: string(dispatch.OutOfService)}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	f := &benchFleet{svc: svc, pic: pic, area: a, adj: a.Neighbours(dispatch.NeighbourTolerance)}
	for i := range 1024 {
		p, _ := anywhere()
		if rng.Float64() < 0.7 {
			p, _ = near()
		}
		cat := []dispatch.Category{dispatch.CatChestPain, dispatch.CatStroke, dispatch.CatTrauma, dispatch.CatOther}[rng.IntN(4)]
		if rng.Float64() < 0.05 {
			cat = dispatch.CatNeonatal
		}
		pri := dispatch.Priority(2 + rng.IntN(3))
		if rng.Float64() < 0.3 {
			pri = 1
		}
		inc, _, _, err := svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{
			Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: pri, Category: cat, ExternalID: fmt.Sprint(i), Source: "bench",
		})
		if err != nil {
			tb.Fatal(err)
		}
		f.calls = append(f.calls, inc)
	}
	return f
}

// BenchmarkRecommend ranks a call among 1k, 10k and 100k units: the
// ranker as shipped (Service.Recommend, which also reads the call from
// the in-memory record), and in the same run the brute force it replaced
// in kind (copy every unit out of the picture and rank them all by the
// same rules) and the bare walk the old ranker made (the five nearest
// free units, by straight line, whatever they carry): what is left is
// what exact ETA, needs and the ladder cost on top of the index. Besides
// ns/op it reports the p50 and p99 of single queries. docs/BENCHMARKS.md
// has the command and the curve.
func BenchmarkRecommend(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		f := newBenchFleet(b, n, nil)
		ctx := context.Background()
		// The two agree (on fewer calls at 100k: the brute force is slow).
		for _, inc := range f.calls[:min(64, 1_600_000/n)] {
			got, err := f.svc.Recommend(ctx, dispatch.System, inc.ID)
			if err != nil {
				b.Fatal(err)
			}
			units, _ := f.svc.Units(dispatch.System, "")
			want := bruteForce(f.area, f.adj, units, geo.DefaultETA, geo.DefaultRadii, inc, dispatch.System, 5, nil)
			if !slices.Equal(unitsOf(got), unitsOf(want)) {
				b.Fatalf("%d units, call %s: ranker %v, brute force %v", n, inc.ID, summary(got), summary(want))
			}
		}
		// measure runs query on the calls in turn, timing each.
		measure := func(way string, on *benchFleet, query func(inc *dispatch.Incident) error) {
			b.Run(fmt.Sprintf("units=%d/%s", n, way), func(b *testing.B) {
				lat := newLatencies(len(on.calls))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					call := i % len(on.calls)
					start := time.Now()
					if err := query(on.calls[call]); err != nil {
						b.Fatal(err)
					}
					lat.add(call, time.Since(start))
					i++
				}
				lat.report(b)
			})
		}
		measure("ranker", f, func(inc *dispatch.Incident) error {
			_, err := f.svc.Recommend(ctx, dispatch.System, inc.ID)
			return err
		})
		// The same fleet on the fixed 2 km grid the picture used before
		// the adaptive one, in the same run.
		g := newBenchFleet(b, n, geo.NewGrid(2000))
		measure("ranker-grid2km", g, func(inc *dispatch.Incident) error {
			_, err := g.svc.Recommend(ctx, dispatch.System, inc.ID)
			return err
		})
		free := 0
		visit := func(h geo.Hit, st dispatch.UnitState) bool {
			if st.Status == dispatch.Available && st.Online {
				free++
			}
			return free < 5
		}
		measure("nearest5", f, func(inc *dispatch.Incident) error {
			free = 0
			f.pic.Nearby(orb.Point{inc.Location.Lon, inc.Location.Lat}, 1_000_000, visit)
			return nil
		})
		measure("brute", f, func(inc *dispatch.Incident) error {
			units, err := f.svc.Units(dispatch.System, "")
			bruteForce(f.area, f.adj, units, geo.DefaultETA, geo.DefaultRadii, inc, dispatch.System, 5, nil)
			return err
		})
	}
}

// latencies keeps query times: up to 1<<16 of them, and the fastest of
// each call. On a machine shared with other work, a query's own time is
// often stretched by a preemption; the fastest of several runs of one
// call is its own cost, so the percentiles of those show the spread of
// the work itself, the raw ones what a caller saw.
type latencies struct {
	all  []time.Duration
	best []time.Duration // by call; 0 until it ran
}

func newLatencies(calls int) *latencies {
	return &latencies{all: make([]time.Duration, 0, 1<<16), best: make([]time.Duration, calls)}
}

func (l *latencies) add(call int, d time.Duration) {
	if len(l.all) < cap(l.all) {
		l.all = append(l.all, d)
	}
	if l.best[call] == 0 || d < l.best[call] {
		l.best[call] = d
	}
}

// report adds p50-ns and p99-ns of every query, and p50-best-ns and
// p99-best-ns of the calls' fastest runs when each call ran at least
// twice.
func (l *latencies) report(b *testing.B) {
	q := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(math.Ceil(p*float64(len(d))))-1].Nanoseconds())
	}
	if len(l.all) == 0 {
		return
	}
	b.ReportMetric(q(l.all, 0.50), "p50-ns")
	b.ReportMetric(q(l.all, 0.99), "p99-ns")
	if b.N >= 2*len(l.best) {
		b.ReportMetric(q(l.best, 0.50), "p50-best-ns")
		b.ReportMetric(q(l.best, 0.99), "p99-best-ns")
	}
}
