package storetest

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

func fix(unit string, seq uint64, t time.Time) telemetry.Fix {
	return telemetry.Fix{
		Unit: unit, Seq: seq, Time: t,
		Lat: 29.18 + float64(seq)*1e-5, Lon: 104.97 - float64(seq)*1e-5,
		SpeedKmh: 42.5 + float64(seq)/10, Heading: 270.3, HDOP: 0.9, Sats: 11,
		Received: t.Add(1500 * time.Millisecond),
	}
}

func track(t *testing.T, h telemetry.History, unit string, from, to time.Time) []telemetry.Fix {
	t.Helper()
	return Track(t, h, unit, from, to)
}

// Track reads the whole track of unit in [from, to] from h, page by page
// (small pages, so that every reader walks cursors), and checks that each
// page keeps its bound and says truly whether more follows.
func Track(tb testing.TB, h telemetry.History, unit string, from, to time.Time) []telemetry.Fix {
	tb.Helper()
	const page = 7
	var (
		all   []telemetry.Fix
		after telemetry.TrackCursor
	)
	for {
		n := 0
		more, err := h.Track(tb.Context(), telemetry.TrackQuery{Unit: unit, From: from, To: to, After: after, Limit: page}, func(f telemetry.Fix) error {
			all = append(all, f)
			n++
			return nil
		})
		must(tb, err)
		if n > page || (more && n != page) {
			tb.Fatalf("a page of %d fixes, more %v: want at most %d, and a full page when more follows", n, more, page)
		}
		if !more {
			return all
		}
		after = telemetry.CursorAt(all[len(all)-1])
	}
}

func testHistory(t *testing.T, open func(t *testing.T) Stores) {
	t.Run("BatchAndBounds", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		var u1 []telemetry.Fix
		for i := range 10 {
			u1 = append(u1, fix("U1", uint64(i+1), at(time.Duration(i)*5*time.Second)))
		}
		must(t, h.AppendFixes(ctx, append(slices.Clone(u1), fix("U2", 1, at(7*time.Second)))))
		must(t, h.AppendFixes(ctx, nil))
		tests := []struct {
			name     string
			from, to time.Time
			want     []telemetry.Fix
		}{
			{"everything", at(-time.Hour), at(time.Hour), u1},
			{"bounds inclusive", at(10 * time.Second), at(20 * time.Second), u1[2:5]},
			{"just inside by a microsecond", at(10*time.Second - time.Microsecond), at(20*time.Second + time.Microsecond), u1[2:5]},
			{"just outside by a microsecond", at(10*time.Second + time.Microsecond), at(20*time.Second - time.Microsecond), u1[3:4]},
			{"one instant", at(15 * time.Second), at(15 * time.Second), u1[3:4]},
			{"before everything", at(-time.Hour), at(-time.Second), nil},
			{"reversed", at(20 * time.Second), at(10 * time.Second), nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { same(t, track(t, h, "U1", tt.from, tt.to), tt.want) })
		}
		same(t, track(t, h, "U2", at(-time.Hour), at(time.Hour)), []telemetry.Fix{fix("U2", 1, at(7*time.Second))})
		same(t, track(t, h, "U3", at(-time.Hour), at(time.Hour)), []telemetry.Fix(nil))
	})

	t.Run("Pages", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		// 24 fixes, some sharing a fix time (only seq tells them apart),
		// and another unit's between them.
		var want []telemetry.Fix
		for i := range 24 {
			want = append(want, fix("U1", uint64(i+1), at(time.Duration(i/3)*time.Second)))
		}
		must(t, h.AppendFixes(ctx, append(slices.Clone(want), fix("U2", 1, at(time.Second)))))
		page := func(after telemetry.TrackCursor, limit int) ([]telemetry.Fix, bool) {
			t.Helper()
			var got []telemetry.Fix
			more, err := h.Track(ctx, telemetry.TrackQuery{Unit: "U1", From: at(-time.Hour), To: at(time.Hour), After: after, Limit: limit}, func(f telemetry.Fix) error {
				got = append(got, f)
				return nil
			})
			must(t, err)
			return got, more
		}
		for _, limit := range []int{1, 4, 5, 23, 24, 25, 1000} {
			t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
				var (
					all   []telemetry.Fix
					after telemetry.TrackCursor
					pages int
				)
				for {
					got, more := page(after, limit)
					pages++
					if len(got) > limit || (more && len(got) != limit) {
						t.Fatalf("page %d: %d fixes, more %v", pages, len(got), more)
					}
					all = append(all, got...)
					if !more {
						break
					}
					after = telemetry.CursorAt(got[len(got)-1])
				}
				same(t, all, want) // every fix once, in order
				if wantPages := (len(want) + limit - 1) / limit; pages != wantPages {
					t.Fatalf("%d pages, want %d: the last full page must say nothing follows", pages, wantPages)
				}
			})
		}
		t.Run("cursor within one fix time", func(t *testing.T) {
			got, more := page(telemetry.CursorAt(want[3]), 2) // seq 4 at 1 s: seq 5 and 6 share that time
			same(t, got, want[4:6])
			if !more {
				t.Fatal("more is false with fixes left")
			}
		})
		t.Run("cursor at the end", func(t *testing.T) {
			if got, more := page(telemetry.CursorAt(want[23]), 5); len(got) != 0 || more {
				t.Fatalf("after the last fix: %d fixes, more %v", len(got), more)
			}
		})
		t.Run("cursor and range together", func(t *testing.T) {
			var got []telemetry.Fix
			_, err := h.Track(ctx, telemetry.TrackQuery{Unit: "U1", From: at(2 * time.Second), To: at(4 * time.Second), After: telemetry.CursorAt(want[1]), Limit: 100}, func(f telemetry.Fix) error {
				got = append(got, f)
				return nil
			})
			must(t, err)
			same(t, got, want[6:15]) // the range, not the cursor, bounds the start
		})
		t.Run("reader stops", func(t *testing.T) {
			stop := fmt.Errorf("client gone")
			n := 0
			_, err := h.Track(ctx, telemetry.TrackQuery{Unit: "U1", From: at(-time.Hour), To: at(time.Hour), Limit: 100}, func(telemetry.Fix) error {
				n++
				if n == 3 {
					return stop
				}
				return nil
			})
			if err != stop || n != 3 {
				t.Fatalf("reader stopped at 3: Track read %d and returned %v, want %v", n, err, stop)
			}
		})
		t.Run("no page size", func(t *testing.T) {
			if _, err := h.Track(ctx, telemetry.TrackQuery{Unit: "U1", From: at(-time.Hour), To: at(time.Hour)}, func(telemetry.Fix) error { return nil }); err == nil {
				t.Fatal("a read without a page size was served")
			}
		})
	})

	t.Run("DuplicatesStoredOnce", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		a, b, c := fix("U1", 1, at(0)), fix("U1", 2, at(5*time.Second)), fix("U1", 3, at(10*time.Second))
		must(t, h.AppendFixes(ctx, []telemetry.Fix{a, b, b})) // a duplicate within a batch
		must(t, h.AppendFixes(ctx, []telemetry.Fix{b, c}))    // a redelivered fix with a new one
		must(t, h.AppendFixes(ctx, []telemetry.Fix{a}))       // only duplicates
		again := b
		again.Received = at(time.Hour) // the same fix received again is the same fix
		must(t, h.AppendFixes(ctx, []telemetry.Fix{again}))
		same(t, track(t, h, "U1", at(-time.Hour), at(time.Hour)), []telemetry.Fix{a, b, c})
	})

	t.Run("SeqRestartAfterReboot", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		before := []telemetry.Fix{fix("U1", 1, at(0)), fix("U1", 2, at(5*time.Second))}
		after := []telemetry.Fix{fix("U1", 1, at(time.Hour)), fix("U1", 2, at(time.Hour+5*time.Second))}
		must(t, h.AppendFixes(ctx, before))
		must(t, h.AppendFixes(ctx, after))
		same(t, track(t, h, "U1", at(-time.Hour), at(2*time.Hour)), append(slices.Clone(before), after...))
	})

	t.Run("LateFixes", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		live := []telemetry.Fix{fix("U1", 100, at(10*time.Minute)), fix("U1", 101, at(10*time.Minute+5*time.Second))}
		// Store-and-forward after a coverage gap: older fixes arrive later.
		late := []telemetry.Fix{fix("U1", 60, at(5*time.Minute)), fix("U1", 61, at(5*time.Minute+5*time.Second))}
		must(t, h.AppendFixes(ctx, live))
		must(t, h.AppendFixes(ctx, late))
		same(t, track(t, h, "U1", at(0), at(time.Hour)), append(slices.Clone(late), live...))
		latest, err := h.Latest(ctx)
		must(t, err)
		same(t, latest, live[1:]) // a late fix is not the newest
	})

	t.Run("Latest", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		latest, err := h.Latest(ctx)
		must(t, err)
		same(t, latest, []telemetry.Fix(nil))
		fixes := []telemetry.Fix{
			fix("U2", 5, at(time.Minute)),
			fix("U1", 1, at(0)),
			fix("U1", 9, at(2*time.Minute)),
			fix("U1", 3, at(3*time.Minute)), // newest by fix time, not by seq
			fix("U3", 1, at(-time.Hour)),
			fix("U2", 6, at(time.Minute)), // same time as seq 5: the higher seq
		}
		must(t, h.AppendFixes(ctx, fixes))
		latest, err = h.Latest(ctx)
		must(t, err)
		same(t, latest, []telemetry.Fix{fixes[3], fixes[5], fixes[4]}) // by unit
	})

	t.Run("TimePrecision", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		cst := time.FixedZone("CST", 8*3600)
		f := fix("U1", 1, time.Date(2026, 11, 23, 16, 0, 1, 987654321, cst))
		f.Received = time.Date(2026, 11, 23, 16, 0, 2, 1999, cst)
		f.Lat, f.Lon, f.SpeedKmh, f.Heading, f.HDOP, f.Sats = 29.123456789012345, 104.98765432109876, 0.1, 359.99, 12.3, 0
		f.Seq = math.MaxInt64 + 10 // seq is a uint64 on the wire
		must(t, h.AppendFixes(ctx, []telemetry.Fix{f}))
		want := f
		want.Time = time.Date(2026, 11, 23, 8, 0, 1, 987654000, time.UTC)
		want.Received = time.Date(2026, 11, 23, 8, 0, 2, 1000, time.UTC)
		got := track(t, h, "U1", want.Time, want.Time)
		same(t, got, []telemetry.Fix{want})
		latest, err := h.Latest(ctx)
		must(t, err)
		same(t, latest, []telemetry.Fix{want})
		// The same fix in another zone, or with its nanoseconds, is the same fix.
		must(t, h.AppendFixes(ctx, []telemetry.Fix{f, want}))
		same(t, track(t, h, "U1", at(-24*time.Hour), at(24*time.Hour)), []telemetry.Fix{want})
	})

	t.Run("ConcurrentAppenders", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		const units, batches, per = 20, 10, 5
		var (
			wg   sync.WaitGroup
			errs [units]error
		)
		for u := range units {
			wg.Go(func() {
				unit := fmt.Sprintf("U%02d", u)
				for b := range batches {
					var fixes []telemetry.Fix
					for i := range per {
						seq := uint64(b*per + i)
						fixes = append(fixes, fix(unit, seq, at(time.Duration(seq)*time.Second)))
					}
					if err := h.AppendFixes(ctx, fixes); err != nil {
						errs[u] = err
						return
					}
					// Acknowledged means readable: the caller's rows are committed.
					got := track(t, h, unit, fixes[0].Time, fixes[per-1].Time)
					if len(got) != per {
						errs[u] = fmt.Errorf("%s batch %d: %d fixes readable after AppendFixes returned, want %d", unit, b, len(got), per)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}
		for u := range units {
			if got := track(t, h, fmt.Sprintf("U%02d", u), at(-time.Hour), at(time.Hour)); len(got) != batches*per {
				t.Fatalf("U%02d: %d fixes, want %d", u, len(got), batches*per)
			}
		}
		latest, err := h.Latest(ctx)
		must(t, err)
		if len(latest) != units {
			t.Fatalf("Latest has %d units, want %d", len(latest), units)
		}
	})

	t.Run("Video", func(t *testing.T) {
		h := open(t).History
		ctx := t.Context()
		vs := []telemetry.Video{
			{Unit: "U1", Time: at(0), Uplink: telemetry.Uplink5G, Cameras: []telemetry.Camera{{Ch: 1, State: telemetry.CameraStreaming, BitrateKbps: 1800}, {Ch: 2, State: telemetry.CameraFault}}},
			{Unit: "U1", Time: at(time.Second), Uplink: telemetry.UplinkNone},
			{Unit: "U2", Time: at(0)},
		}
		for _, v := range vs {
			must(t, h.AppendVideo(ctx, v))
		}
	})
}
