package telemetry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// The tests' unit sits in Fushun County, Sichuan, at (29.18 N, 104.97 E).
const lat0, lon0 = 29.18, 104.97

// metresPerDegLat is close enough for the tests' distances, which keep
// wide margins around every threshold.
const metresPerDegLat = 111195.0

// fx returns a fix of unit A1 at the given offset from t0, metres north of
// the tests' origin.
func fx(seq uint64, at time.Duration, northM float64) Fix {
	return Fix{Unit: "A1", Seq: seq, Time: t0.Add(at), Lat: lat0 + northM/metresPerDegLat, Lon: lon0, Received: received}
}

// at returns f moved to lat, lon.
func at(f Fix, lat, lon float64) Fix { f.Lat, f.Lon = lat, lon; return f }

// hdop returns f with its HDOP set.
func hdop(f Fix, h float64) Fix { f.HDOP = h; return f }

func clock() time.Time { return t0 }

func seqs(fixes []Fix) []uint64 {
	out := make([]uint64, len(fixes))
	for i, f := range fixes {
		out[i] = f.Seq
	}
	return out
}

func reasons(rejs []Rejection) []Reason {
	var out []Reason
	for _, r := range rejs {
		out = append(out, r.Reason)
	}
	return out
}

// noLatest is wantLatest when Positions.Latest must be nil.
const noLatest = -1

// checkPositions checks the result of Validator.Check.
func checkPositions(tb testing.TB, pos Positions, rejs []Rejection, wantSeqs []uint64, wantLatest int64, wantReasons []Reason) {
	tb.Helper()
	if pos.Unit != "A1" {
		tb.Errorf("Positions.Unit = %q, want A1", pos.Unit)
	}
	if got := seqs(pos.Fixes); !slices.Equal(got, wantSeqs) && (len(got) > 0 || len(wantSeqs) > 0) {
		tb.Errorf("accepted seqs: got %v, want %v", got, wantSeqs)
	}
	switch {
	case pos.Latest == nil && wantLatest != noLatest:
		tb.Errorf("Latest: got nil, want seq %d", wantLatest)
	case pos.Latest != nil && int64(pos.Latest.Seq) != wantLatest:
		tb.Errorf("Latest: got seq %d, want %d", pos.Latest.Seq, wantLatest)
	}
	if got := reasons(rejs); !slices.Equal(got, wantReasons) {
		tb.Errorf("rejections: got %v, want %v (%v)", got, wantReasons, rejs)
	}
	for _, r := range rejs {
		if r.Unit != "A1" || r.Kind != KindGPS || r.Detail == "" {
			tb.Errorf("rejection %+v: want unit A1, kind gps and a detail", r)
		}
	}
	for _, f := range pos.Fixes {
		if f.Unit != "A1" {
			tb.Errorf("accepted fix %d: got unit %q, want A1", f.Seq, f.Unit)
		}
	}
}

func TestValidatorCheck(t *testing.T) {
	seed := fx(10, -10*time.Second, 0)
	tests := []struct {
		name        string
		limits      Limits
		seed        *Fix
		fixes       []Fix
		wantSeqs    []uint64
		wantLatest  int64
		wantReasons []Reason
	}{
		{name: "nothing", wantLatest: noLatest},
		{name: "first fix", fixes: []Fix{fx(1, -time.Second, 0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "lat over 90", fixes: []Fix{at(fx(1, 0, 0), 90.0001, lon0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lat under -90", fixes: []Fix{at(fx(1, 0, 0), -91, lon0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lon over 180", fixes: []Fix{at(fx(1, 0, 0), lat0, 180.5)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lon under -180", fixes: []Fix{at(fx(1, 0, 0), lat0, -181)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lat NaN", fixes: []Fix{at(fx(1, 0, 0), math.NaN(), lon0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lon infinite", fixes: []Fix{at(fx(1, 0, 0), lat0, math.Inf(-1))}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "lat huge", fixes: []Fix{at(fx(1, 0, 0), 1e300, lon0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "null island", fixes: []Fix{at(fx(1, 0, 0), 0, 0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "null island after a live position", seed: &seed, fixes: []Fix{at(fx(11, 0, 0), 0, 0)}, wantLatest: noLatest, wantReasons: []Reason{OutOfRange}},
		{name: "equator is not null island", fixes: []Fix{at(fx(1, 0, 0), 0, lon0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "meridian is not null island", fixes: []Fix{at(fx(1, 0, 0), lat0, 0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "poles and antimeridian", fixes: []Fix{at(fx(1, 0, 0), 90, 180)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "future beyond skew", fixes: []Fix{fx(1, 31*time.Second, 0)}, wantLatest: noLatest, wantReasons: []Reason{Future}},
		{name: "future within skew", fixes: []Fix{fx(1, 30*time.Second, 0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "future with own skew", limits: Limits{MaxFuture: time.Second}, fixes: []Fix{fx(1, 2*time.Second, 0)}, wantLatest: noLatest, wantReasons: []Reason{Future}},
		{name: "too old", fixes: []Fix{fx(1, -72*time.Hour-time.Second, 0)}, wantLatest: noLatest, wantReasons: []Reason{TooOld}},
		{name: "old within max age", fixes: []Fix{fx(1, -71*time.Hour, 0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "zero time", fixes: []Fix{{Unit: "A1", Seq: 1, Lat: lat0, Lon: lon0}}, wantLatest: noLatest, wantReasons: []Reason{TooOld}},
		{name: "redelivery of the live fix", seed: &seed, fixes: []Fix{seed}, wantLatest: noLatest, wantReasons: []Reason{DuplicateSeq}},
		{name: "highest seq again with a newer time", seed: &seed, fixes: []Fix{fx(10, -5*time.Second, 0)}, wantLatest: noLatest, wantReasons: []Reason{DuplicateSeq}},
		{name: "seq older than the window", seed: ptr(fx(math.MaxUint32, -10*time.Second, 0)), fixes: []Fix{fx(10, -20*time.Second, 0)},
			wantLatest: noLatest, wantReasons: []Reason{DuplicateSeq}},
		{name: "seq at the bottom of the window", limits: Limits{SeqWindow: 64}, seed: ptr(fx(100, -10*time.Second, 0)), fixes: []Fix{fx(37, -20*time.Second, 0), fx(36, -20*time.Second, 0)},
			wantSeqs: []uint64{37}, wantLatest: noLatest, wantReasons: []Reason{DuplicateSeq}},
		{name: "reboot: seq older than the window with a newer time", limits: Limits{SeqWindow: 64}, seed: ptr(fx(1000, -10*time.Second, 0)),
			fixes: []Fix{fx(1, -5*time.Second, 0)}, wantSeqs: []uint64{1}, wantLatest: 1},
		{name: "late fix: new seq, older time", seed: &seed, fixes: []Fix{fx(9, -20*time.Second, 0)}, wantSeqs: []uint64{9}, wantLatest: noLatest},
		{name: "late fix far back in time", seed: &seed, fixes: []Fix{fx(11, -time.Hour, 50_000)}, wantSeqs: []uint64{11}, wantLatest: noLatest},
		{name: "next fix", seed: &seed, fixes: []Fix{fx(11, -9*time.Second, 20)}, wantSeqs: []uint64{11}, wantLatest: 11},
		{name: "next seq with the same time", seed: &seed, fixes: []Fix{fx(11, -10*time.Second, 0)}, wantSeqs: []uint64{11}, wantLatest: noLatest},
		{name: "impossible jump", seed: &seed, fixes: []Fix{fx(11, 0, 10_000)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "impossible jump south", seed: &seed, fixes: []Fix{fx(11, 0, -10_000)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "fast but possible", seed: &seed, fixes: []Fix{fx(11, 10*time.Second, 1000)}, wantSeqs: []uint64{11}, wantLatest: 11},
		{name: "own speed limit", limits: Limits{MaxSpeedKmh: 100}, seed: &seed, fixes: []Fix{fx(11, 10*time.Second, 1000)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		// Without HDOP each fix may be 50 m off: 100 m of noise, plus 69 m in the one-second floor.
		{name: "noise within the fixes' error", seed: &seed, fixes: []Fix{fx(11, -9900*time.Millisecond, 160)}, wantSeqs: []uint64{11}, wantLatest: 11},
		// Once, hops under 300 m were never judged.
		{name: "a short hop within a second", seed: &seed, fixes: []Fix{fx(11, -9900*time.Millisecond, 250)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "a hop within a second", seed: &seed, fixes: []Fix{fx(11, -9500*time.Millisecond, 400)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "a hop at the same time", seed: &seed, fixes: []Fix{fx(11, -10*time.Second, 400)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "accurate fixes get less room", seed: ptr(hdop(seed, 0.9)), fixes: []Fix{hdop(fx(11, -9900*time.Millisecond, 100), 0.9)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "inaccurate fixes get more room", seed: ptr(hdop(seed, 0.9)), fixes: []Fix{hdop(fx(11, -9900*time.Millisecond, 150), 20)}, wantSeqs: []uint64{11}, wantLatest: 11},
		{name: "but no more than 100 m", seed: ptr(hdop(seed, 0.9)), fixes: []Fix{hdop(fx(11, -9900*time.Millisecond, 200), 1e9)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "late fix with an impossible jump", seed: &seed, fixes: []Fix{fx(11, -time.Hour, 300_000)}, wantLatest: noLatest, wantReasons: []Reason{ImpossibleJump}},
		{name: "jump judged from the previous fix of the message", fixes: []Fix{fx(1, -2*time.Second, 0), fx(2, -time.Second, 10_000)},
			wantSeqs: []uint64{1}, wantLatest: 1, wantReasons: []Reason{ImpossibleJump}},
		{name: "batch judged in seq order", fixes: []Fix{fx(3, -time.Second, 40), fx(1, -3*time.Second, 0), fx(2, -2*time.Second, 20)},
			wantSeqs: []uint64{1, 2, 3}, wantLatest: 3},
		{name: "latest is the newest by time, not seq", fixes: []Fix{fx(5, -time.Second, 0), fx(6, -2*time.Second, 0)},
			wantSeqs: []uint64{5, 6}, wantLatest: 5},
		{name: "batch keeps its good fixes", seed: &seed,
			fixes:    []Fix{fx(11, -9*time.Second, 0), at(fx(12, -8*time.Second, 0), 91, 0), fx(13, -7*time.Second, 0), fx(14, time.Hour, 0), fx(10, -10*time.Second, 0)},
			wantSeqs: []uint64{11, 13}, wantLatest: 13, wantReasons: []Reason{DuplicateSeq, OutOfRange, Future}},
		{name: "duplicate within a batch", fixes: []Fix{fx(1, -time.Second, 0), fx(1, -time.Second, 0)},
			wantSeqs: []uint64{1}, wantLatest: 1, wantReasons: []Reason{DuplicateSeq}},
		{name: "batch too large", limits: Limits{MaxBatch: 2}, fixes: []Fix{fx(1, -3*time.Second, 0), fx(2, -2*time.Second, 0), fx(3, -time.Second, 0)},
			wantLatest: noLatest, wantReasons: []Reason{TooLarge}},
		{name: "batch at the limit", limits: Limits{MaxBatch: 2}, fixes: []Fix{fx(1, -2*time.Second, 0), fx(2, -time.Second, 0)},
			wantSeqs: []uint64{1, 2}, wantLatest: 2},
		{name: "only late fixes", seed: &seed, fixes: []Fix{fx(11, -20*time.Second, 0), fx(12, -15*time.Second, 0)},
			wantSeqs: []uint64{11, 12}, wantLatest: noLatest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewValidator(tt.limits, clock)
			if tt.seed != nil {
				v.Seed(*tt.seed)
			}
			pos, rejs := v.Check("A1", tt.fixes)
			checkPositions(t, pos, rejs, tt.wantSeqs, tt.wantLatest, tt.wantReasons)
			if pos.Latest != nil {
				live, ok := v.Live("A1")
				if !ok || !sameFix(live, *pos.Latest) {
					t.Errorf("Live: got %+v, %v, want Latest %+v", live, ok, *pos.Latest)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestValidatorCheckDoesNotModifyInput(t *testing.T) {
	v := NewValidator(DefaultLimits, clock)
	in := []Fix{fx(2, -time.Second, 0), fx(1, -2*time.Second, 0), at(fx(3, 0, 0), 91, 0)}
	want := slices.Clone(in)
	in[0].Unit, want[0].Unit = "", ""
	v.Check("A1", in)
	if !sameFixes(in, want) {
		t.Errorf("Check changed its input:\ngot  %+v\nwant %+v", in, want)
	}
}

// TestValidatorSeqWindow drives one unit through a sequence of messages:
// redeliveries, late fixes, the window sliding and terminal reboots.
func TestValidatorSeqWindow(t *testing.T) {
	v := NewValidator(Limits{SeqWindow: 64}, clock)
	batch := make([]Fix, 100)
	for i := range batch {
		batch[i] = fx(uint64(i+1), time.Duration(i-300)*time.Second, 0)
	}
	s := func(sec int) time.Duration { return time.Duration(sec) * time.Second }
	steps := []struct {
		name        string
		fixes       []Fix
		wantSeqs    []uint64
		wantLatest  int64
		wantReasons []Reason
	}{
		{"seqs 1 to 100", batch, seqs(batch), 100, nil},
		{"100 redelivered", []Fix{fx(100, s(-201), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"50 redelivered", []Fix{fx(50, s(-251), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"37 redelivered, the oldest in the window", []Fix{fx(37, s(-264), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"36 redelivered, older than the window", []Fix{fx(36, s(-265), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"200 after a gap", []Fix{fx(200, s(-100), 0)}, []uint64{200}, 200, nil},
		{"150 arrives late", []Fix{fx(150, s(-150), 0)}, []uint64{150}, noLatest, nil},
		{"150 redelivered", []Fix{fx(150, s(-150), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"100 replayed, older than the window", []Fix{fx(100, s(-201), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"reboot: counter restarts at 1", []Fix{fx(1, s(-90), 0)}, []uint64{1}, 1, nil},
		{"2 to 10 after the reboot", []Fix{fx(2, s(-89), 0), fx(3, s(-88), 0), fx(4, s(-87), 0), fx(5, s(-86), 0),
			fx(6, s(-85), 0), fx(7, s(-84), 0), fx(8, s(-83), 0), fx(9, s(-82), 0), fx(10, s(-81), 0)},
			[]uint64{2, 3, 4, 5, 6, 7, 8, 9, 10}, 10, nil},
		{"1 redelivered after the reboot", []Fix{fx(1, s(-90), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"reboot within the window: 5 seen, newer time", []Fix{fx(5, s(-70), 0)}, []uint64{5}, 5, nil},
		{"6 after the second reboot", []Fix{fx(6, s(-69), 0)}, []uint64{6}, 6, nil},
		{"6 redelivered", []Fix{fx(6, s(-69), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"68, sliding the window by 62", []Fix{fx(68, s(-62), 0)}, []uint64{68}, 68, nil},
		{"5 redelivered, still in the window", []Fix{fx(5, s(-70), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"70, sliding the window past 5", []Fix{fx(70, s(-60), 0)}, []uint64{70}, 70, nil},
		{"69, late, in the ring slot 5 had", []Fix{fx(69, s(-61), 0)}, []uint64{69}, noLatest, nil},
		{"6 again, now older than the window", []Fix{fx(6, s(-69), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"1000, beyond the window", []Fix{fx(1000, s(-50), 0)}, []uint64{1000}, 1000, nil},
		{"990, late, inside the new window", []Fix{fx(990, s(-55), 0)}, []uint64{990}, noLatest, nil},
		{"70 again, older than the window", []Fix{fx(70, s(-60), 0)}, nil, noLatest, []Reason{DuplicateSeq}},
		{"a rebooted terminal's batch", []Fix{fx(2, s(-39), 0), fx(1, s(-40), 0), fx(3, s(-38), 0)}, []uint64{1, 2, 3}, 3, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			pos, rejs := v.Check("A1", st.fixes)
			checkPositions(t, pos, rejs, st.wantSeqs, st.wantLatest, st.wantReasons)
		})
	}
}

func TestValidatorJumpConfirm(t *testing.T) {
	wild := at(fx(1, -time.Minute, 0), 39.9, 116.4) // a cold-start fix 1,500 km away
	tests := []struct {
		name        string
		limits      Limits
		messages    [][]Fix
		wantReasons []Reason
		wantLive    uint64
	}{
		{name: "three consistent fixes move the unit",
			messages:    [][]Fix{{fx(2, -3*time.Second, 0)}, {fx(3, -2*time.Second, 10)}, {fx(4, -time.Second, 20)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump}, wantLive: 4},
		{name: "in one batch",
			messages:    [][]Fix{{fx(2, -3*time.Second, 0), fx(3, -2*time.Second, 10), fx(4, -time.Second, 20)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump}, wantLive: 4},
		{name: "disabled", limits: Limits{JumpConfirm: -1},
			messages:    [][]Fix{{fx(2, -3*time.Second, 0)}, {fx(3, -2*time.Second, 10)}, {fx(4, -time.Second, 20)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump, ImpossibleJump}, wantLive: 1},
		{name: "fixes that disagree never move it",
			messages: [][]Fix{{fx(2, -4*time.Second, 0)}, {at(fx(3, -3*time.Second, 0), 22.5, 114.1)},
				{fx(4, -2*time.Second, 0)}, {at(fx(5, -time.Second, 0), 22.5, 114.1)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump, ImpossibleJump, ImpossibleJump}, wantLive: 1},
		{name: "a good fix in between starts the count again",
			messages: [][]Fix{{fx(2, -5*time.Second, 0)}, {fx(3, -4*time.Second, 0)}, {at(fx(4, -3*time.Second, 0), 39.9, 116.4)},
				{fx(5, -2*time.Second, 0)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump, ImpossibleJump}, wantLive: 4},
		{name: "late fixes do not count",
			messages:    [][]Fix{{fx(2, -2*time.Minute, 0)}, {fx(3, -2*time.Minute+time.Second, 0)}, {fx(4, -2*time.Minute+2*time.Second, 0)}},
			wantReasons: []Reason{ImpossibleJump, ImpossibleJump, ImpossibleJump}, wantLive: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewValidator(tt.limits, clock)
			v.Seed(wild)
			var got []Reason
			for _, m := range tt.messages {
				_, rejs := v.Check("A1", m)
				got = append(got, reasons(rejs)...)
			}
			if !slices.Equal(got, tt.wantReasons) {
				t.Errorf("rejections: got %v, want %v", got, tt.wantReasons)
			}
			if live, _ := v.Live("A1"); live.Seq != tt.wantLive {
				t.Errorf("live seq: got %d, want %d", live.Seq, tt.wantLive)
			}
		})
	}
}

// TestValidatorJumpWalk replays the walks of issue 7, each fix its own
// message, and checks that none gets the unit past its second hop; and
// that what real units do passes: driving at 120 km/h, parked, with the
// noise their HDOP says.
func TestValidatorJumpWalk(t *testing.T) {
	north := func(f Fix) float64 { return (f.Lat - lat0) * metresPerDegLat }
	walk := func(hopM float64, every time.Duration, h float64) []Fix {
		var out []Fix
		for i := range 50 { // 11 km at 289 m a hop in 3 s
			out = append(out, hdop(fx(uint64(i+2), -10*time.Second+time.Duration(i+1)*every, float64(i+1)*hopM), h))
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		fixes []Fix
	}{
		{"289 m every 60 ms", walk(289, 60*time.Millisecond, 0.9)},
		{"89 m every 60 ms", walk(89, 60*time.Millisecond, 0.9)},
		{"170 m every 60 ms claiming HDOP 99", walk(170, 60*time.Millisecond, 99)},
		{"289 m every 60 ms without HDOP", walk(289, 60*time.Millisecond, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewValidator(DefaultLimits, clock)
			v.Seed(hdop(fx(1, -10*time.Second, 0), 0.9))
			hop := tt.fixes[0].Lat - lat0
			rejected := 0
			for _, f := range tt.fixes {
				_, rejs := v.Check("A1", []Fix{f})
				rejected += len(rejs)
			}
			live, _ := v.Live("A1")
			if got := live.Lat - lat0; got > 2*hop+1e-9 {
				t.Errorf("the walk took the unit %.0f m north, %d hops (%d of %d fixes rejected)", north(live), int(got/hop+0.5), rejected, len(tt.fixes))
			}
		})
	}

	rng := rand.New(rand.NewPCG(7, 7))
	noisy := func(seq uint64, at time.Duration, northM float64) Fix {
		h := 0.6 + 2.4*rng.Float64()
		e := h * 5 * 0.7 // within the error the HDOP claims
		f := hdop(fx(seq, at, northM+e*(2*rng.Float64()-1)), h)
		f.Lon += e * (2*rng.Float64() - 1) / (metresPerDegLat * math.Cos(lat0*math.Pi/180))
		return f
	}
	for _, tt := range []struct {
		name  string
		every time.Duration
		kmh   float64
	}{
		{"driving at 120 km/h, a fix a second", time.Second, 120},
		{"driving at 200 km/h, a fix a second", time.Second, 200},
		{"driving at 120 km/h, ten fixes a second", 100 * time.Millisecond, 120},
		{"parked, a fix a second", time.Second, 0},
		{"parked, ten fixes a second", 100 * time.Millisecond, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewValidator(DefaultLimits, clock)
			const n = 600
			for i := range n {
				at := -time.Hour + time.Duration(i)*tt.every
				f := noisy(uint64(i+1), at, tt.kmh/3.6*at.Seconds())
				if _, rejs := v.Check("A1", []Fix{f}); len(rejs) > 0 {
					t.Fatalf("fix %d of %d (HDOP %.1f): %v", i+1, n, f.HDOP, rejs)
				}
			}
		})
	}
}

func TestValidatorSeedForget(t *testing.T) {
	v := NewValidator(DefaultLimits, clock)
	if _, ok := v.Live("A1"); ok {
		t.Fatal("Live of an unknown unit: got ok")
	}
	seed := fx(10, -10*time.Second, 0)
	v.Seed(seed)
	if live, ok := v.Live("A1"); !ok || !sameFix(live, seed) {
		t.Fatalf("Live after Seed: got %+v, %v, want %+v", live, ok, seed)
	}
	if _, rejs := v.Check("A1", []Fix{seed}); !slices.Equal(reasons(rejs), []Reason{DuplicateSeq}) {
		t.Errorf("seeded fix again: got %v, want [duplicate_seq]", rejs)
	}
	if _, rejs := v.Check("A1", []Fix{fx(11, -5*time.Second, 50_000)}); !slices.Equal(reasons(rejs), []Reason{ImpossibleJump}) {
		t.Errorf("jump from the seeded position: got %v, want [impossible_jump]", rejs)
	}
	if _, rejs := v.Check("A2", []Fix{at(seed, 22.5, 114.1)}); len(rejs) != 0 {
		t.Errorf("other unit: got rejections %v, want none", rejs)
	}
	v.Forget("A1")
	if _, ok := v.Live("A1"); ok {
		t.Error("Live after Forget: got ok")
	}
	pos, rejs := v.Check("A1", []Fix{seed})
	checkPositions(t, pos, rejs, []uint64{10}, 10, nil)
}

func TestValidatorUndo(t *testing.T) {
	v := NewValidator(DefaultLimits, clock)
	v.Seed(fx(10, -10*time.Second, 0))
	fixes := []Fix{fx(11, -9*time.Second, 0), fx(12, -8*time.Second, 0)}
	errSink := fmt.Errorf("sink down")
	_, _, err := v.check("A1", fixes, func(Positions) error { return errSink })
	if err != errSink {
		t.Fatalf("check: got error %v, want %v", err, errSink)
	}
	if live, _ := v.Live("A1"); live.Seq != 10 {
		t.Errorf("live seq after a failed sink: got %d, want 10", live.Seq)
	}
	pos, rejs, err := v.check("A1", fixes, func(Positions) error { return nil })
	if err != nil {
		t.Fatalf("check again: %v", err)
	}
	checkPositions(t, pos, rejs, []uint64{11, 12}, 12, nil)
}

func TestValidatorLimits(t *testing.T) {
	tests := []struct {
		name string
		in   Limits
		want Limits
	}{
		{"zero is the default", Limits{}, DefaultLimits},
		{"window rounds up to 64", Limits{SeqWindow: 100}, func() Limits { l := DefaultLimits; l.SeqWindow = 128; return l }()},
		{"set fields are kept", Limits{MaxBatch: 5, MaxSpeedKmh: 90, JumpConfirm: -1},
			func() Limits { l := DefaultLimits; l.MaxBatch, l.MaxSpeedKmh, l.JumpConfirm = 5, 90, -1; return l }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewValidator(tt.in, nil).Limits(); got != tt.want {
				t.Errorf("Limits: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestValidatorConcurrent checks many units at once, each from its own
// goroutine, and one unit from several goroutines; run it with -race.
func TestValidatorConcurrent(t *testing.T) {
	const (
		units    = 200
		perUnit  = 50
		writers  = 8
		perWrite = 200
	)
	v := NewValidator(Limits{SeqWindow: 1 << 16}, clock)
	var wg sync.WaitGroup
	accepted := make([]int, units+writers)
	for u := range units {
		wg.Go(func() {
			unit := fmt.Sprintf("U%03d", u)
			for i := range perUnit {
				f := fx(uint64(i+1), time.Duration(i-perUnit)*time.Second, float64(i)*10)
				f.Lon += float64(u) * 0.01
				pos, rejs := v.Check(unit, []Fix{f})
				if len(rejs) > 0 || pos.Latest == nil {
					t.Errorf("unit %s seq %d: rejections %v, latest %v", unit, f.Seq, rejs, pos.Latest)
					return
				}
				accepted[u] += len(pos.Fixes)
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range perWrite {
				seq := uint64(i*writers + w + 1)
				pos, rejs := v.Check("shared", []Fix{fx(seq, -time.Hour+time.Duration(seq)*time.Millisecond, 0)})
				if len(rejs) > 0 {
					t.Errorf("shared seq %d: rejections %v", seq, rejs)
				}
				accepted[units+w] += len(pos.Fixes)
			}
		})
	}
	wg.Wait()
	var total int
	for _, n := range accepted {
		total += n
	}
	if want := units*perUnit + writers*perWrite; total != want {
		t.Errorf("accepted fixes: got %d, want %d", total, want)
	}
	if live, _ := v.Live("shared"); live.Seq != writers*perWrite {
		t.Errorf("shared live seq: got %d, want %d", live.Seq, writers*perWrite)
	}
	for u := range units {
		if live, _ := v.Live(fmt.Sprintf("U%03d", u)); live.Seq != perUnit {
			t.Errorf("unit %d live seq: got %d, want %d", u, live.Seq, perUnit)
		}
	}
}

func BenchmarkValidatorCheck(b *testing.B) {
	v := NewValidator(DefaultLimits, clock)
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		f := fx(seq, -48*time.Hour+time.Duration(seq)*time.Millisecond, 0)
		if _, rejs := v.Check("A1", []Fix{f}); len(rejs) > 0 {
			b.Fatal(rejs)
		}
	}
}
