package telemetry

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestClockEstimate(t *testing.T) {
	type msg struct {
		after time.Duration // since the previous message
		skew  time.Duration // newest fix time less received
	}
	steady := func(n int, every, skew, jitter time.Duration, seed uint64) []msg {
		rng := rand.New(rand.NewPCG(seed, seed))
		out := make([]msg, n)
		for i := range out {
			// Transit time makes a report look older, never newer.
			out[i] = msg{every, skew - time.Duration(rng.Int64N(int64(jitter)+1))}
		}
		return out
	}
	backlog := func(n int, every, from, step time.Duration) []msg {
		out := make([]msg, n)
		for i := range out {
			out[i] = msg{every, from + time.Duration(i)*step}
		}
		return out
	}
	tests := []struct {
		name      string
		msgs      []msg
		wantKnown bool
		want      time.Duration // with a second's tolerance, when known
	}{
		{"nothing yet", nil, false, 0},
		{"four messages are not enough", steady(4, 5*time.Second, 35*time.Second, 0, 1), false, 0},
		{"35 s fast, a fix every second", steady(9, time.Second, 35*time.Second, 300*time.Millisecond, 2), true, 35 * time.Second},
		{"35 s fast, four fixes a second", steady(30, 250*time.Millisecond, 35*time.Second, 300*time.Millisecond, 8), true, 35 * time.Second},
		{"not in two seconds, whatever the rate", steady(8, 250*time.Millisecond, 35*time.Second, 0, 9), false, 0},
		{"5 min slow, a fix every 5 s", steady(9, 5*time.Second, -5*time.Minute, 2*time.Second, 3), true, -5 * time.Minute},
		{"right, weak 4G", steady(30, time.Second, 0, 3*time.Second, 4), true, -1500 * time.Millisecond},
		{"a burst of backlog is not a clock", backlog(60, 50*time.Millisecond, -time.Hour, time.Second), false, 0},
		{"nor a slow trickle of backlog", backlog(60, 200*time.Millisecond, -time.Hour, 2*time.Second), false, 0},
		{"backlog does not unlearn a clock", append(steady(9, time.Second, 35*time.Second, 0, 5),
			backlog(60, 50*time.Millisecond, -time.Hour, time.Second)...), true, 35 * time.Second},
		{"the clock set right is learnt again", append(steady(9, time.Second, 35*time.Second, 0, 6),
			steady(6, time.Second, 0, 0, 7)...), true, 0},
		{"messages that disagree", []msg{{time.Second, 0}, {time.Second, time.Minute}, {time.Second, 2 * time.Minute},
			{time.Second, 3 * time.Minute}, {time.Second, 4 * time.Minute}, {time.Second, 5 * time.Minute}}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c clockEstimate
			at := t0
			for _, m := range tt.msgs {
				at = at.Add(m.after)
				c.add(at.Add(m.skew), at)
			}
			got := c.clock
			if got.Known != tt.wantKnown || (got.Known && (got.Offset-tt.want).Abs() > time.Second) {
				t.Fatalf("clock %+v, want known %v offset %s", got, tt.wantKnown, tt.want)
			}
		})
	}
}

func TestClockSuspect(t *testing.T) {
	for _, tt := range []struct {
		c    Clock
		want bool
	}{
		{Clock{}, false},
		{Clock{Offset: time.Hour}, false},
		{Clock{Offset: -2 * time.Second, Known: true}, false},
		{Clock{Offset: 35 * time.Second, Known: true}, true},
		{Clock{Offset: -5 * time.Minute, Known: true}, true},
	} {
		if got := tt.c.Suspect(); got != tt.want {
			t.Errorf("%+v.Suspect() = %v, want %v", tt.c, got, tt.want)
		}
	}
}

// TestValidatorClock: a terminal whose clock is steadily off has its
// fixes taken once the offset is known, within MaxClockOffset; the Sink
// hears of the clock even when every fix was dropped.
func TestValidatorClock(t *testing.T) {
	tests := []struct {
		name       string
		skew       time.Duration
		wantDrops  int // of 20 fixes a second apart
		wantSuspct bool
	}{
		{"right", 0, 0, false},
		{"35 s fast", 35 * time.Second, 5, true},
		{"5 min slow", -5 * time.Minute, 0, true},
		{"14 min fast", 14 * time.Minute, 5, true},
		{"20 min fast, beyond what is corrected", 20 * time.Minute, 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			v := NewValidator(DefaultLimits, func() time.Time { return now })
			var told []Positions
			drops := 0
			for i := range 20 {
				now = t0.Add(time.Duration(i) * time.Second)
				f := fx(uint64(i+1), time.Duration(i)*time.Second+tt.skew, float64(i))
				f.Received = now
				_, rejs, err := v.check("A1", []Fix{f}, func(p Positions) error { told = append(told, p); return nil })
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rejs {
					if r.Reason != Future {
						t.Fatalf("fix %d: %v", i+1, r)
					}
				}
				drops += len(rejs)
			}
			if drops != tt.wantDrops {
				t.Errorf("dropped %d of 20 fixes, want %d", drops, tt.wantDrops)
			}
			if len(told) == 0 {
				t.Fatal("the Sink heard nothing")
			}
			last := told[len(told)-1].Clock
			if !last.Known || (last.Offset-tt.skew).Abs() > time.Second || last.Suspect() != tt.wantSuspct {
				t.Errorf("the Sink was last told the clock is %+v, want %s off (suspect %v)", last, tt.skew, tt.wantSuspct)
			}
		})
	}
}
