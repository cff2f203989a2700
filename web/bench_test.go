package web_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"golang.org/x/crypto/bcrypt"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/web"
)

// The benchmark fleet: n units in one county of about 44 km x 44 km
// (0.4 degrees around centreA), each at a random point, 90% of them with
// their terminal online.
const benchOnline = 0.9

func benchArea(tb testing.TB, n int) *dispatch.Area {
	tb.Helper()
	a := &dispatch.Area{
		Name: "bench",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "city"},
			{ID: countyA, Name: "county A", Parent: cityID, Region: dispatchtest.Region(tb, countyA, dispatchtest.Square(centreA, 0.2))},
		},
		Stations:  []dispatch.Station{{ID: "S1", Name: "A station", Jurisdiction: countyA, Location: centreA}},
		Hospitals: []dispatch.Hospital{{ID: "H1", Name: "A hospital", Jurisdiction: countyA, Location: centreA, Centres: []dispatch.Centre{dispatch.Stroke}}},
	}
	for i := range n {
		id := fmt.Sprintf("U%06d", i)
		a.Units = append(a.Units, dispatch.Unit{ID: id, Callsign: id, Station: "S1", Jurisdiction: countyA, Capabilities: []string{dispatch.BLS}})
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// benchPoint is a random point of the benchmark county.
func benchPoint(r *rand.Rand) orb.Point {
	return orb.Point{centreA[0] + (r.Float64()-0.5)*0.38, centreA[1] + (r.Float64()-0.5)*0.38}
}

// bench is a running server on the memory stores, its fleet placed, and
// a dispatcher of the county signed in.
type bench struct {
	srv   *web.Server
	url   string
	token string
	svc   *dispatch.Service
	bus   *dispatch.Bus
	area  *dispatch.Area
}

func newBench(tb testing.TB, units int, opts ...func(*web.Config)) *bench {
	tb.Helper()
	ctx := context.Background()
	area := benchArea(tb, units)
	bus := dispatch.NewBus()
	svc, err := dispatch.NewService(ctx, dispatch.Config{Area: area, Store: memory.NewStore(), Events: bus, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	acc, err := dispatch.NewAccess(dispatch.AccessConfig{Users: memory.NewUsers(), Auditor: memory.NewAudit(), Area: area, Events: bus, Cost: bcrypt.MinCost, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := acc.Bootstrap(ctx, adminPass); err != nil {
		tb.Fatal(err)
	}
	cfg := web.Config{Addr: "127.0.0.1:0", Dispatch: svc, Events: bus, Access: acc, Logger: quiet, LivePerUser: 1 << 20, LivePerSession: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := web.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
	})
	b := &bench{srv: srv, url: "http://" + srv.Addr().String(), svc: svc, bus: bus, area: area}
	r := rand.New(rand.NewPCG(1, uint64(units)))
	now := time.Now()
	for _, u := range area.Units {
		p := benchPoint(r)
		fix := telemetry.Fix{Unit: u.ID, Seq: 1, Time: now, Lat: p.Lat(), Lon: p.Lon(), Received: now}
		if err := svc.Positions(ctx, telemetry.Positions{Unit: u.ID, Fixes: []telemetry.Fix{fix}, Latest: &fix}); err != nil {
			tb.Fatal(err)
		}
		if err := svc.Presence(ctx, telemetry.Presence{Unit: u.ID, Online: r.Float64() < benchOnline, Time: now}); err != nil {
			tb.Fatal(err)
		}
	}
	e := &env{acc: acc}
	admin, _ := acc.Authenticate(ctx, e.login(tb, "admin", adminPass))
	if _, err := acc.CreateUser(ctx, admin, "disp-a", userPass, dispatch.RoleDispatcher, countyA); err != nil {
		tb.Fatal(err)
	}
	b.token = e.login(tb, "disp-a", userPass)
	return b
}

// load sends n GETs from clients goroutines, each on its own kept-alive
// connection, and returns the requests per second and the latencies,
// sorted.
func load(tb testing.TB, clients, n int, token string, path func(i int) string) (perSec float64, lat []time.Duration, bytes int64) {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var (
		next  atomic.Int64
		total atomic.Int64
		mu    sync.Mutex
		wg    sync.WaitGroup
		fail  atomic.Value
	)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				req, _ := http.NewRequest("GET", path(i), nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					fail.Store(err)
					return
				}
				m, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mine = append(mine, time.Since(t0))
				total.Add(m)
				if res.StatusCode != http.StatusOK {
					fail.Store(fmt.Errorf("GET %s: %d", path(i), res.StatusCode))
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := fail.Load().(error); err != nil {
		tb.Fatal(err)
	}
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), lat, total.Load() / int64(max(n, 1))
}

func quantile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(q*float64(len(lat))))]
}

// reportLoad reports a load's rate and latencies as benchmark metrics.
func reportLoad(b *testing.B, perSec float64, lat []time.Duration) {
	b.ReportMetric(perSec, "req/s")
	b.ReportMetric(float64(quantile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op") // the rate says it; ns/op would count the clients' waits too
}

// BenchmarkServed is GET /api/v1/incidents/{id}/recommendations from 32
// clients at once on one server, against GET /livez on the same server
// in the same run (the server's own ceiling for any served call: the
// same HTTP stack, no session, no engine):
//
//	go test ./web -run '^$' -bench BenchmarkServed -benchtime 20000x -count 3
//
// Each client keeps its connection; the calls are spread over 64 open
// incidents at random points of the county. heap-MB is the live heap
// after the run, to see memory stay flat under load.
func BenchmarkServed(b *testing.B) {
	const clients = 32
	for _, units := range []int{1000, 10000, 100000} {
		srv := newBench(b, units)
		ctx := context.Background()
		r := rand.New(rand.NewPCG(2, uint64(units)))
		var incs []string
		for range 64 {
			p := benchPoint(r)
			inc, _, _, err := srv.svc.CreateIncident(ctx, dispatch.System, dispatch.NewIncident{
				Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: 2, Category: dispatch.CatOther,
			})
			if err != nil {
				b.Fatal(err)
			}
			incs = append(incs, inc.ID)
		}
		paths := map[string]func(int) string{
			"livez":           func(int) string { return srv.url + "/livez" },
			"recommendations": func(i int) string { return srv.url + "/api/v1/incidents/" + incs[i%len(incs)] + "/recommendations" },
		}
		for _, name := range []string{"livez", "recommendations"} {
			b.Run(fmt.Sprintf("units=%d/%s", units, name), func(b *testing.B) {
				load(b, clients, min(b.N, 200), srv.token, paths[name]) // warm the connections
				b.ResetTimer()
				perSec, lat, size := load(b, clients, b.N, srv.token, paths[name])
				b.StopTimer()
				reportLoad(b, perSec, lat)
				b.ReportMetric(float64(size), "B/reply")
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
			})
		}
	}
}
