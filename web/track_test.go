package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/web"
)

// trackPage is a reply of GET /api/v1/units/{id}/track.
type trackPage struct {
	Unit        string    `json:"unit"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	SimplifiedM float64   `json:"simplified_m"`
	Fixes       []struct {
		Seq      uint64    `json:"seq"`
		Time     time.Time `json:"ts"`
		Lat, Lon float64
	} `json:"fixes"`
	Next string `json:"next"`
}

// drive records n fixes of unit, one a second from start, heading east
// along a straight road.
func (e *env) drive(tb testing.TB, unit string, start time.Time, n int) []telemetry.Fix {
	tb.Helper()
	fixes := make([]telemetry.Fix, n)
	for i := range fixes {
		fixes[i] = telemetry.Fix{Unit: unit, Seq: uint64(i + 1), Time: start.Add(time.Duration(i) * time.Second),
			Lat: centreA.Lat(), Lon: centreA.Lon() + float64(i)*1e-5, SpeedKmh: 40, Heading: 90, Received: start}
	}
	if err := e.tracks.AppendFixes(context.Background(), fixes); err != nil {
		tb.Fatal(err)
	}
	return fixes
}

func trackPath(unit string, from, to time.Time, extra string) string {
	return fmt.Sprintf("/api/v1/units/%s/track?from=%s&to=%s%s", unit, url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(to.Format(time.RFC3339)), extra)
}

// TestTrackPages: a track is read in bounded pages; walking the cursors
// returns every fix exactly once, in order.
func TestTrackPages(t *testing.T) {
	e := newEnv(t)
	as := bearer(e.tokens["disp-a"])
	start := clock0.Add(-3 * time.Hour)
	fixes := e.drive(t, "U01", start, 2500)
	from, to := start, start.Add(2*time.Hour) // the first 7,201 s: every fix

	t.Run("default page", func(t *testing.T) {
		var p trackPage
		r := e.do(t, "GET", trackPath("U01", from, to, ""), "", as)
		r.decode(t, &p)
		if r.status != http.StatusOK || len(p.Fixes) != dispatch.DefaultTrackPage || p.Next == "" {
			t.Fatalf("%d: %d fixes, next %q; want %d and a cursor", r.status, len(p.Fixes), p.Next, dispatch.DefaultTrackPage)
		}
	})
	for _, limit := range []int{999, 1000, 2500, dispatch.MaxTrackPage} {
		t.Run(fmt.Sprint("walk by ", limit), func(t *testing.T) {
			var seqs []uint64
			cursor, pages := "", 0
			for {
				var p trackPage
				r := e.do(t, "GET", trackPath("U01", from, to, fmt.Sprintf("&limit=%d&cursor=%s", limit, cursor)), "", as)
				r.decode(t, &p)
				pages++
				if r.status != http.StatusOK || len(p.Fixes) > limit || pages > 10 {
					t.Fatalf("page %d: %d with %d fixes", pages, r.status, len(p.Fixes))
				}
				for _, f := range p.Fixes {
					seqs = append(seqs, f.Seq)
				}
				if p.Next == "" {
					break
				}
				cursor = p.Next
			}
			if len(seqs) != len(fixes) {
				t.Fatalf("%d fixes over %d pages, want %d", len(seqs), pages, len(fixes))
			}
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("fix %d has seq %d: a fix lost or repeated between pages", i, s)
				}
			}
			if want := (len(fixes) + limit - 1) / limit; pages != want {
				t.Fatalf("%d pages, want %d", pages, want)
			}
		})
	}
	t.Run("simplified", func(t *testing.T) {
		var p trackPage
		r := e.do(t, "GET", trackPath("U01", from, to, "&limit=5000&simplify=5"), "", as)
		r.decode(t, &p)
		// A straight road: its two ends are all a drawing needs.
		if r.status != http.StatusOK || p.SimplifiedM != 5 || len(p.Fixes) != 2 || p.Fixes[0].Seq != 1 || p.Fixes[1].Seq != 2500 || p.Next != "" {
			t.Fatalf("%d: simplified %v, %d fixes, next %q; want the two ends", r.status, p.SimplifiedM, len(p.Fixes), p.Next)
		}
	})
	t.Run("empty", func(t *testing.T) {
		r := e.do(t, "GET", trackPath("U02", from, to, ""), "", as)
		var p trackPage
		r.decode(t, &p)
		if r.status != http.StatusOK || p.Fixes == nil || len(p.Fixes) != 0 || p.Next != "" {
			t.Fatalf("a unit without fixes: %d %s", r.status, r.body)
		}
	})
}

// TestTrackRefused: what the track API will not serve, and why.
func TestTrackRefused(t *testing.T) {
	e := newEnv(t)
	as := bearer(e.tokens["disp-a"])
	now := clock0
	tests := []struct {
		name, path string
		status     int
		says       string
	}{
		{"a range over a day", trackPath("U01", now.Add(-25*time.Hour), now, ""), 400, "at most 24h0m0s"},
		{"to before from", trackPath("U01", now, now.Add(-time.Hour), ""), 400, "before"},
		{"a page too large", trackPath("U01", now.Add(-time.Hour), now, "&limit=5001"), 400, "1 to 5000"},
		{"an empty page", trackPath("U01", now.Add(-time.Hour), now, "&limit=0"), 400, "1 to 5000"},
		{"a page of words", trackPath("U01", now.Add(-time.Hour), now, "&limit=all"), 400, "1 to 5000"},
		{"a forged cursor", trackPath("U01", now.Add(-time.Hour), now, "&cursor=bm90LWEtY3Vyc29y"), 400, "cursor"},
		{"a cursor of junk", trackPath("U01", now.Add(-time.Hour), now, "&cursor=%25%25"), 400, "cursor"},
		{"a negative tolerance", trackPath("U01", now.Add(-time.Hour), now, "&simplify=-1"), 400, "simplify"},
		{"a tolerance of words", trackPath("U01", now.Add(-time.Hour), now, "&simplify=NaN"), 400, "simplify"},
		{"another county's unit", trackPath("N01", now.Add(-time.Hour), now, ""), 403, "jurisdiction"},
		{"an unknown unit", trackPath("X99", now.Add(-time.Hour), now, ""), 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "GET", tt.path, "", as)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.says) {
				t.Fatalf("%d %s, want %d saying %q", r.status, r.body, tt.status, tt.says)
			}
		})
	}
}

// TestTrackEncoding: the fixes written by hand decode as encoding/json
// would have written them.
func TestTrackEncoding(t *testing.T) {
	e := newEnv(t)
	at := clock0.Add(-time.Minute).Add(123456 * time.Microsecond)
	odd := []telemetry.Fix{
		{Unit: "U01", Seq: 1, Time: at, Lat: 29.123456789012345, Lon: 104.98765432109876, SpeedKmh: 0, Heading: 359.99},
		{Unit: "U01", Seq: 1<<64 - 1, Time: at.Add(time.Second), Lat: -0.0000001, Lon: 1e-7, SpeedKmh: 1e-9, Heading: 0.1},
	}
	if err := e.tracks.AppendFixes(context.Background(), odd); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "GET", trackPath("U01", at.Add(-time.Minute), at.Add(time.Minute), ""), "", bearer(e.tokens["admin"]))
	var got struct {
		Fixes []map[string]any `json:"fixes"`
	}
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil || len(got.Fixes) != 2 {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	for i, f := range odd {
		want, _ := json.Marshal(map[string]any{"seq": f.Seq, "ts": f.Time.UTC(), "lat": f.Lat, "lon": f.Lon, "speed_kmh": f.SpeedKmh, "heading": f.Heading})
		var w map[string]any
		d := json.NewDecoder(strings.NewReader(string(want)))
		d.UseNumber()
		_ = d.Decode(&w)
		gb, _ := json.Marshal(got.Fixes[i])
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("fix %d:\n got %s\nwant %s", i, gb, wb)
		}
	}
}

// counting is a Dispatcher whose track reads are counted as the store
// hands them on.
type counting struct {
	web.Dispatcher
	read int
}

func (c *counting) Track(ctx context.Context, by dispatch.Principal, q telemetry.TrackQuery, fn func(telemetry.Fix) error) (telemetry.TrackCursor, error) {
	return c.Dispatcher.Track(ctx, by, q, func(f telemetry.Fix) error { c.read++; return fn(f) })
}

// firstWrite records how many fixes had been read when the reply's first
// bytes went out.
type firstWrite struct {
	http.ResponseWriter
	c       *counting
	atFirst int
}

func (w *firstWrite) Write(b []byte) (int, error) {
	if w.atFirst < 0 {
		w.atFirst = w.c.read
	}
	return w.ResponseWriter.Write(b)
}

// TestTrackStreams: a page goes out as it is read: the first bytes leave
// long before the last fix is read, so no page is held whole.
func TestTrackStreams(t *testing.T) {
	var c *counting
	e := newEnv(t, func(cfg *web.Config) { c = &counting{Dispatcher: cfg.Dispatch}; cfg.Dispatch = c })
	start := clock0.Add(-3 * time.Hour)
	e.drive(t, "U01", start, dispatch.MaxTrackPage)
	req := httptest.NewRequest("GET", trackPath("U01", start, start.Add(2*time.Hour), "&limit=5000"), nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
	w := &firstWrite{ResponseWriter: httptest.NewRecorder(), c: c, atFirst: -1}
	e.srv.Handler().ServeHTTP(w, req)
	if c.read != dispatch.MaxTrackPage {
		t.Fatalf("%d fixes read, want %d", c.read, dispatch.MaxTrackPage)
	}
	if w.atFirst < 0 || w.atFirst > dispatch.MaxTrackPage/10 {
		t.Fatalf("the first bytes went out after %d of %d fixes were read: want them streamed", w.atFirst, c.read)
	}
	var p trackPage
	if err := json.Unmarshal(w.ResponseWriter.(*httptest.ResponseRecorder).Body.Bytes(), &p); err != nil || len(p.Fixes) != dispatch.MaxTrackPage {
		t.Fatalf("the streamed page: %d fixes, %v", len(p.Fixes), err)
	}
}

// BenchmarkTrackPage serves a page of 5,000 fixes: streamed as read (the
// handler) against the way it was served before, gathered whole and then
// encoded (slice); compare allocations and bytes in one run.
func BenchmarkTrackPage(b *testing.B) {
	e := newEnv(b)
	start := clock0.Add(-3 * time.Hour)
	e.drive(b, "U01", start, dispatch.MaxTrackPage)
	path := trackPath("U01", start, start.Add(2*time.Hour), "&limit=5000")
	admin, _ := e.acc.Authenticate(context.Background(), e.tokens["admin"])
	q := telemetry.TrackQuery{Unit: "U01", From: start, To: start.Add(2 * time.Hour), Limit: dispatch.MaxTrackPage}
	b.Run("stream", func(b *testing.B) {
		h := e.srv.Handler()
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens["admin"])
			h.ServeHTTP(discard{}, req)
		}
	})
	b.Run("slice", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var page []telemetry.Fix
			if _, err := e.svc.Track(context.Background(), admin, q, func(f telemetry.Fix) error { page = append(page, f); return nil }); err != nil {
				b.Fatal(err)
			}
			type fix struct {
				Seq      uint64    `json:"seq"`
				Time     time.Time `json:"ts"`
				Lat      float64   `json:"lat"`
				Lon      float64   `json:"lon"`
				SpeedKmh float64   `json:"speed_kmh"`
				Heading  float64   `json:"heading"`
			}
			out := make([]fix, len(page))
			for i, f := range page {
				out[i] = fix{f.Seq, f.Time, f.Lat, f.Lon, f.SpeedKmh, f.Heading}
			}
			_ = json.NewEncoder(io.Discard).Encode(map[string]any{"unit": "U01", "from": q.From, "to": q.To, "fixes": out})
		}
	})
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// TestIncidentTrackBounded: an incident embeds each assigned unit's track
// bounded as a page is, simplified for drawing, and says when it goes on.
func TestIncidentTrackBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.move(t, "U01", centreA)
	inc := e.incident(t, centreA)
	if _, err := e.svc.Assign(ctx, dispatch.System, inc.ID, "U01"); err != nil {
		t.Fatal(err)
	}
	e.drive(t, "U01", clock0.Add(time.Second), dispatch.MaxTrackPage+1000) // straight east, while assigned
	var v struct {
		Tracks []struct {
			Unit        string  `json:"unit"`
			SimplifiedM float64 `json:"simplified_m"`
			Fixes       []struct {
				Seq uint64 `json:"seq"`
			} `json:"fixes"`
			More bool   `json:"more"`
			Next string `json:"next"`
		} `json:"tracks"`
	}
	r := e.do(t, "GET", "/api/v1/incidents/"+inc.ID, "", bearer(e.tokens["disp-a"]))
	r.decode(t, &v)
	if r.status != http.StatusOK || len(v.Tracks) != 1 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tr := v.Tracks[0]
	// The first page's two ends: a straight road simplifies to them.
	if tr.SimplifiedM <= 0 || len(tr.Fixes) != 2 || tr.Fixes[0].Seq != 1 || tr.Fixes[1].Seq != dispatch.MaxTrackPage || !tr.More || tr.Next == "" {
		t.Fatalf("embedded track: simplified %v m, %d fixes, more %v, next %q; want the ends of the first %d fixes and a cursor", tr.SimplifiedM, len(tr.Fixes), tr.More, tr.Next, dispatch.MaxTrackPage)
	}
}
