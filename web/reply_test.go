package web_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/web"
)

// TestReply: a reply is written whole with its length (no chunks, even
// when it is large), and a value that cannot be encoded is a 500 with
// the contract's error body, never a 200 with half a body.
func TestReply(t *testing.T) {
	big := map[string]string{"text": strings.Repeat("x", 64<<10)}
	tests := []struct {
		name   string
		v      any
		status int
		want   string
	}{
		{"small", map[string]int{"n": 1}, http.StatusOK, `{"n":1}` + "\n"},
		{"large", big, http.StatusOK, func() string { b, _ := json.Marshal(big); return string(b) + "\n" }()},
		{"cannot encode", map[string]float64{"x": math.Inf(1)}, http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error"}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { web.WriteJSON(w, http.StatusOK, tt.v) }))
			defer srv.Close()
			res, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || string(body) != tt.want {
				t.Fatalf("reply %d %.80q, want %d %.80q", res.StatusCode, body, tt.status, tt.want)
			}
			if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) > 0 {
				t.Fatalf("Content-Length %d, Transfer-Encoding %q; want the length %d, no chunks", res.ContentLength, res.TransferEncoding, len(body))
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
		})
	}
}

// BenchmarkReply is the encoding of a recommendation (5 candidates, 20
// exclusions, 4.5 KB), pooled and written whole, against encoding straight
// to the writer (as before), in the same run:
//
//	go test ./web -run '^$' -bench BenchmarkReply -benchmem -count 3
func BenchmarkReply(b *testing.B) {
	var recs dispatch.Recommendations
	recs.Incident = "INC-20261123-080001-3f9a1c"
	for i := range 5 {
		recs.Candidates = append(recs.Candidates, dispatch.Recommendation{Rank: i + 1, Unit: "U000123", Callsign: "A1", Station: "S1", DistanceM: 1234.5, RoadM: 1600, ETAS: 180, WithinRadius: true,
			Reasons: []string{"nearest available unit: 1.2 km, about 3 min", "ALS crew"}})
	}
	for range 20 {
		recs.Excluded = append(recs.Excluded, dispatch.Exclusion{Unit: "U000456", Reason: "dispatched on INC-20261123-080001-3f9a1c"})
	}
	ways := map[string]func(w http.ResponseWriter){
		"pooled": func(w http.ResponseWriter) { web.WriteJSON(w, http.StatusOK, recs) },
		"stream": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			_ = json.NewEncoder(w).Encode(recs)
		},
	}
	for _, name := range []string{"pooled", "stream"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ways[name](discard{})
			}
		})
	}
}
