package web

import (
	"bufio"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

const (
	// trackWriteWait bounds the writing of one page of a track: the rows
	// are streamed as the store reads them, so a client that stops
	// reading must not hold the store's connection for long.
	trackWriteWait = time.Minute
	// maxSimplify is the largest ?simplify= tolerance, in metres.
	maxSimplify = 10000
	// incidentTrackMetres is the tolerance of the tracks embedded in an
	// incident: they are for drawing its timeline.
	incidentTrackMetres = 10
)

// trackFix is one recorded position on the wire.
type trackFix struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"ts"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	SpeedKmh float64   `json:"speed_kmh"`
	Heading  float64   `json:"heading"`
}

func wireFix(f telemetry.Fix) trackFix {
	return trackFix{Seq: f.Seq, Time: f.Time, Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading}
}

// track serves one page of a unit's track:
//
//	GET /api/v1/units/{id}/track?from=&to=&limit=&cursor=&simplify=
//
// from and to (RFC 3339 or epoch milliseconds; default the last hour)
// span at most dispatch.MaxTrackSpan; limit is the page size (default
// dispatch.DefaultTrackPage, at most dispatch.MaxTrackPage); cursor is the
// "next" of the page before. The reply is {"unit","from","to","fixes",
// "next"}, next present while fixes remain. The fixes are written as the
// store reads them, never gathered whole; with ?simplify=<metres> the
// page is thinned for drawing (Douglas-Peucker, geo.Simplify) and then it
// is gathered, one bounded page.
func (s *Server) track(w http.ResponseWriter, r *http.Request, p dispatch.Principal) {
	q, metres, err := trackQuery(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(trackWriteWait))
	out := &trackWriter{w: w, unit: q.Unit, from: q.From, to: q.To, simplified: metres}
	var next telemetry.TrackCursor
	if metres > 0 {
		var page []telemetry.Fix
		next, err = s.cfg.Dispatch.Track(r.Context(), p, q, func(f telemetry.Fix) error {
			page = append(page, f)
			return nil
		})
		if err == nil {
			err = writeSimplified(out, page, metres)
		}
	} else {
		next, err = s.cfg.Dispatch.Track(r.Context(), p, q, out.fix)
	}
	if err != nil {
		if !out.started {
			s.Error(w, r, err)
			return
		}
		// The status is sent: cut the reply short, so that the client
		// sees a broken body rather than a page that looks whole.
		if !errors.Is(err, errClientGone) {
			s.log.Error("track: read failed after the reply began", "unit", q.Unit, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	if err := out.end(next); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// trackQuery reads a track page's parameters from r.
func trackQuery(r *http.Request) (q telemetry.TrackQuery, metres float64, err error) {
	v := r.URL.Query()
	q.Unit = r.PathValue("id")
	if q.To, err = parseTime("to", v.Get("to"), time.Now().UTC()); err != nil {
		return q, 0, err
	}
	if q.From, err = parseTime("from", v.Get("from"), q.To.Add(-time.Hour)); err != nil {
		return q, 0, err
	}
	q.Limit = dispatch.DefaultTrackPage
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > dispatch.MaxTrackPage {
			return q, 0, dispatch.Errorf(dispatch.CodeInvalid, "limit=%q: want 1 to %d fixes a page", s, dispatch.MaxTrackPage)
		}
	}
	if q.After, err = parseCursor(v.Get("cursor")); err != nil {
		return q, 0, err
	}
	if s := v.Get("simplify"); s != "" {
		if metres, err = strconv.ParseFloat(s, 64); err != nil || !(metres >= 0 && metres <= maxSimplify) {
			return q, 0, dispatch.Errorf(dispatch.CodeInvalid, "simplify=%q: want a tolerance of 0 to %d metres", s, maxSimplify)
		}
	}
	return q, metres, nil
}

// simplified returns the fixes of page that geo.Simplify keeps at metres.
func simplified(page []telemetry.Fix, metres float64) []telemetry.Fix {
	pts := make([]orb.Point, len(page))
	for i, f := range page {
		pts[i] = orb.Point{f.Lon, f.Lat}
	}
	keep := geo.Simplify(pts, metres)
	out := make([]telemetry.Fix, len(keep))
	for i, k := range keep {
		out[i] = page[k]
	}
	return out
}

func writeSimplified(out *trackWriter, page []telemetry.Fix, metres float64) error {
	for _, f := range simplified(page, metres) {
		if err := out.fix(f); err != nil {
			return err
		}
	}
	return nil
}

// errClientGone is a write to a client that has gone.
var errClientGone = errors.New("client gone")

// trackWriter writes a track page's JSON as it goes: the head with the
// first fix (so that an error before any fix still gets its status), each
// fix appended to a reused buffer, the tail at the end.
type trackWriter struct {
	w          http.ResponseWriter
	bw         *bufio.Writer
	buf        []byte
	started    bool
	n          int
	unit       string
	from, to   time.Time
	simplified float64
}

func (t *trackWriter) start() {
	t.started = true
	h := t.w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	t.w.WriteHeader(http.StatusOK)
	t.bw = bufio.NewWriterSize(t.w, 32<<10)
	b := append(t.buf[:0], `{"unit":`...)
	b = strconv.AppendQuote(b, t.unit)
	b = append(b, `,"from":"`...)
	b = t.from.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","to":"`...)
	b = t.to.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if t.simplified > 0 {
		b = append(b, `,"simplified_m":`...)
		b = appendFloat(b, t.simplified)
	}
	b = append(b, `,"fixes":[`...)
	t.buf = b
	_, _ = t.bw.Write(b)
}

// fix writes one fix.
func (t *trackWriter) fix(f telemetry.Fix) error {
	if !t.started {
		t.start()
	}
	b := t.buf[:0]
	if t.n > 0 {
		b = append(b, ',')
	}
	t.n++
	b = appendFix(b, f)
	t.buf = b
	if _, err := t.bw.Write(b); err != nil {
		return errClientGone
	}
	return nil
}

// end writes the tail, with the cursor of the next page if any.
func (t *trackWriter) end(next telemetry.TrackCursor) error {
	if !t.started {
		t.start()
	}
	b := append(t.buf[:0], ']')
	if !next.IsZero() {
		b = append(b, `,"next":"`...)
		b = append(b, encodeCursor(next)...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	if _, err := t.bw.Write(b); err != nil {
		return err
	}
	return t.bw.Flush()
}

// appendFix appends f as JSON, the fields of trackFix.
func appendFix(b []byte, f telemetry.Fix) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = f.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","lat":`...)
	b = appendFloat(b, f.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat(b, f.Lon)
	b = append(b, `,"speed_kmh":`...)
	b = appendFloat(b, f.SpeedKmh)
	b = append(b, `,"heading":`...)
	b = appendFloat(b, f.Heading)
	return append(b, '}')
}

// appendFloat appends v as a JSON number, formatted as encoding/json
// does; a value JSON cannot hold (never stored: fixes are validated) is 0.
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	format := byte('f')
	if a := math.Abs(v); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2], b = b[n-1], b[:n-1] // e-07 as e-7
	}
	return b
}

// encodeCursor makes a cursor opaque for the wire: the fix time in
// microseconds and the seq, in base64url.
func encodeCursor(c telemetry.TrackCursor) string {
	b := strconv.AppendInt(nil, c.Time.UnixMicro(), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, c.Seq, 10)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseCursor reads a cursor encodeCursor made; "" is the start.
func parseCursor(s string) (telemetry.TrackCursor, error) {
	if s == "" {
		return telemetry.TrackCursor{}, nil
	}
	bad := dispatch.Errorf(dispatch.CodeInvalid, "cursor=%q: pass the \"next\" of the page before, as it was given", truncated(s))
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return telemetry.TrackCursor{}, bad
	}
	us, seq, ok := strings.Cut(string(raw), ".")
	t, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return telemetry.TrackCursor{}, bad
	}
	c := telemetry.TrackCursor{Time: time.UnixMicro(t).UTC(), Seq: n}
	if c.IsZero() {
		return telemetry.TrackCursor{}, bad
	}
	return c, nil
}

func truncated(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
