package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/dispatch/dispatchtest"
	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/web"
)

// The test area: a city with two counties side by side. County A holds
// units U01 and U02, county B unit N01.
const (
	cityID    = "510300"
	countyA   = "510322"
	countyB   = "510302"
	adminPass = "correct horse battery"
	userPass  = "dispatch-1234567"
)

var (
	clock0  = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	centreA = orb.Point{105.0, 29.2}
	centreB = orb.Point{105.5, 29.2}
	quiet   = slog.New(slog.DiscardHandler)
)

func testArea(tb testing.TB) *dispatch.Area {
	tb.Helper()
	a := &dispatch.Area{
		Name: "test",
		Jurisdictions: []dispatch.Jurisdiction{
			{ID: cityID, Name: "city"},
			{ID: countyA, Name: "county A", Parent: cityID, Region: dispatchtest.Region(tb, countyA, dispatchtest.Square(centreA, 0.2))},
			{ID: countyB, Name: "county B", Parent: cityID, Region: dispatchtest.Region(tb, countyB, dispatchtest.Square(centreB, 0.1))},
		},
		Stations: []dispatch.Station{
			{ID: "S1", Name: "A station", Jurisdiction: countyA, Location: centreA},
			{ID: "S2", Name: "B station", Jurisdiction: countyB, Location: centreB},
		},
		Hospitals: []dispatch.Hospital{{ID: "H1", Name: "A hospital", Jurisdiction: countyA, Location: centreA, Centres: []dispatch.Centre{dispatch.Stroke}}},
		Units: []dispatch.Unit{
			{ID: "U01", Callsign: "A1", Station: "S1", Jurisdiction: countyA},
			{ID: "U02", Callsign: "A2", Station: "S1", Jurisdiction: countyA},
			{ID: "N01", Callsign: "B1", Station: "S2", Jurisdiction: countyB},
		},
	}
	if err := a.Validate(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// env is a running server on the memory stores with one signed-in user
// per role: admin, disp-a and disp-b (dispatchers of counties A and B),
// city, and integ (an integrator of county A).
type env struct {
	url    string
	srv    *web.Server
	svc    *dispatch.Service
	tracks *memory.Tracks
	acc    *dispatch.Access
	users  *memory.Users
	audit  *memory.Audit
	clock  *dispatchtest.Clock
	reg    *prometheus.Registry
	tokens map[string]string
	seq    map[string]uint64
}

var roles = []struct {
	name string
	role dispatch.Role
	jur  string
}{
	{"disp-a", dispatch.RoleDispatcher, countyA},
	{"disp-b", dispatch.RoleDispatcher, countyB},
	{"city", dispatch.RoleCity, cityID},
	{"integ", dispatch.RoleIntegrator, countyA},
}

// newEnv starts a server; opts are func(*web.Config), applied before it
// is built, and func(*web.Server), applied before it runs.
func newEnv(tb testing.TB, opts ...any) *env {
	tb.Helper()
	ctx := context.Background()
	e := &env{tracks: memory.NewTracks(20000), users: memory.NewUsers(), audit: memory.NewAudit(), clock: dispatchtest.NewClock(clock0), reg: prometheus.NewRegistry(), tokens: map[string]string{}, seq: map[string]uint64{}}
	area := testArea(tb)
	bus := dispatch.NewBus()
	var err error
	e.svc, err = dispatch.NewService(ctx, dispatch.Config{
		Area: area, Store: memory.NewStore(), Tracks: e.tracks, Events: bus, Auditor: e.audit, Now: e.clock.Now, Logger: quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}
	e.acc, err = dispatch.NewAccess(dispatch.AccessConfig{Users: e.users, Auditor: e.audit, Area: area, Events: bus, Cost: bcrypt.MinCost, Now: e.clock.Now, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.acc.Bootstrap(ctx, adminPass); err != nil {
		tb.Fatal(err)
	}
	cfg := web.Config{
		Addr: "127.0.0.1:0", Dispatch: e.svc, Events: bus, Access: e.acc, AreaGeoJSON: []byte(`{"type":"FeatureCollection","features":[]}`),
		Metrics: promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}), Registry: e.reg, Logger: quiet,
	}
	for _, o := range opts {
		if o, ok := o.(func(*web.Config)); ok {
			o(&cfg)
		}
	}
	e.srv, err = web.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, o := range opts {
		if o, ok := o.(func(*web.Server)); ok {
			o(e.srv)
		}
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	e.url = scheme + "://" + e.srv.Addr().String()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(runCtx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
	})
	admin := e.login(tb, "admin", adminPass)
	e.tokens["admin"] = admin
	p, _ := e.acc.Authenticate(ctx, admin)
	for _, r := range roles {
		if _, err := e.acc.CreateUser(ctx, p, r.name, userPass, r.role, r.jur); err != nil {
			tb.Fatal(err)
		}
		e.tokens[r.name] = e.login(tb, r.name, userPass)
	}
	return e
}

func (e *env) login(tb testing.TB, user, pw string) string {
	tb.Helper()
	tok, _, err := e.acc.Login(context.Background(), user, pw, "test")
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// auth sets how a request proves who sends it.
type auth func(*http.Request)

func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// cookie sends tok as the session cookie, from origin ("" for none).
func cookie(tok, origin string) auth {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: web.CookieName, Value: tok})
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
	}
}

func noAuth(*http.Request) {}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error reply.
func (r reply) code() string {
	var v struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.body, &v)
	return v.Error.Code
}

func (r reply) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("reply %d %s: %v", r.status, r.body, err)
	}
}

func (e *env) client() *http.Client { return http.DefaultClient }

func (e *env) do(tb testing.TB, method, path, body string, a auth) reply {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	a(req)
	res, err := e.client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, res.Header, b}
}

// record is what the admin sees: used to check that a refused request changed nothing.
type record struct {
	Incidents, Assignments, Users int
}

func (e *env) record(tb testing.TB) record {
	tb.Helper()
	admin := bearer(e.tokens["admin"])
	var incs struct{ Incidents []dispatch.Incident }
	e.do(tb, "GET", "/api/v1/incidents", "", admin).decode(tb, &incs)
	var rec record
	rec.Incidents = len(incs.Incidents)
	for _, i := range incs.Incidents {
		var v struct{ Assignments []dispatch.Assignment }
		e.do(tb, "GET", "/api/v1/incidents/"+i.ID, "", admin).decode(tb, &v)
		rec.Assignments += len(v.Assignments)
	}
	var us struct{ Users []dispatch.User }
	e.do(tb, "GET", "/api/v1/users", "", admin).decode(tb, &us)
	rec.Users = len(us.Users)
	return rec
}

// rejected returns lifeline_http_rejected_total{reason}.
func (e *env) rejected(tb testing.TB, reason string) float64 {
	tb.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lifeline_http_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	tb.Fatalf("no lifeline_http_rejected_total{reason=%q}", reason)
	return 0
}

// incident creates a call at p as the system and returns it.
func (e *env) incident(tb testing.TB, p orb.Point) *dispatch.Incident {
	tb.Helper()
	inc, _, _, err := e.svc.CreateIncident(context.Background(), dispatch.System, callAt(p))
	if err != nil {
		tb.Fatal(err)
	}
	return inc
}

func callAt(p orb.Point) dispatch.NewIncident {
	return dispatch.NewIncident{Location: dispatch.LatLon{Lat: p.Lat(), Lon: p.Lon()}, Priority: 2, Category: dispatch.CatOther}
}

func callJSON(p orb.Point) string {
	return fmt.Sprintf(`{"location":{"lat":%v,"lon":%v},"priority":2,"category":"other"}`, p.Lat(), p.Lon())
}

// move reports unit at p, as the telemetry pipeline would.
func (e *env) move(tb testing.TB, unit string, p orb.Point) {
	tb.Helper()
	e.seq[unit]++
	f := telemetry.Fix{Unit: unit, Seq: e.seq[unit], Time: e.clock.Now(), Lat: p.Lat(), Lon: p.Lon(), Received: e.clock.Now()}
	if err := e.svc.Positions(context.Background(), telemetry.Positions{Unit: unit, Fixes: []telemetry.Fix{f}, Latest: &f}); err != nil {
		tb.Fatal(err)
	}
}

func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", " ") != nil {
		return string(b)
	}
	return out.String()
}
