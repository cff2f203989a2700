package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// TestTrackBounded: on the real server and its store, a unit's track is
// served in bounded pages that a cursor walks without loss or repeat; a
// wide range or an oversized page is refused, not read.
func TestTrackBounded(t *testing.T) {
	m := startMain(t, nil)
	const n = 6000 // more than the largest page
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	fixes := make([]telemetry.Fix, n)
	for i := range fixes {
		fixes[i] = telemetry.Fix{Unit: "FS-01", Seq: uint64(i + 1), Time: start.Add(time.Duration(i) * time.Second),
			Lat: 29.18, Lon: 104.98 + float64(i)*1e-5, SpeedKmh: 40, Heading: 90, Received: start}
	}
	if err := m.record.AppendFixes(context.Background(), fixes); err != nil {
		t.Fatal(err)
	}
	path := func(from, to time.Time, extra string) string {
		return fmt.Sprintf("/api/v1/units/FS-01/track?from=%s&to=%s%s", url.QueryEscape(from.Format(time.RFC3339)), url.QueryEscape(to.Format(time.RFC3339)), extra)
	}
	type page struct {
		Fixes []struct{ Seq uint64 } `json:"fixes"`
		Next  string                 `json:"next"`
	}

	var seqs []uint64
	cursor := ""
	for pages := 1; ; pages++ {
		var p page
		if code := m.do(t, "GET", path(start, start.Add(2*time.Hour), "&limit=5000&cursor="+cursor), nil, &p); code != http.StatusOK || len(p.Fixes) > 5000 || pages > 3 {
			t.Fatalf("page %d: %d, %d fixes", pages, code, len(p.Fixes))
		}
		for _, f := range p.Fixes {
			seqs = append(seqs, f.Seq)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if len(seqs) != n {
		t.Fatalf("the pages held %d fixes, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("fix %d has seq %d: lost or repeated between pages", i, s)
		}
	}
	var def page
	if m.do(t, "GET", path(start, start.Add(2*time.Hour), ""), nil, &def); len(def.Fixes) != 1000 || def.Next == "" {
		t.Fatalf("the default page: %d fixes, next %q; want 1000 and a cursor", len(def.Fixes), def.Next)
	}

	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	for _, tt := range []struct{ name, path, says string }{
		{"a range of a month", path(start.Add(-30*24*time.Hour), start.Add(2*time.Hour), ""), "at most"},
		{"a page of 100,000", path(start, start.Add(time.Hour), "&limit=100000"), "1 to 5000"},
	} {
		if code := m.do(t, "GET", tt.path, nil, &e); code != http.StatusBadRequest || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, tt.says) {
			t.Fatalf("%s: %d %+v, want 400 invalid saying %q", tt.name, code, e.Error, tt.says)
		}
	}
}
