package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// assignCmd returns an assign command for an incident at scene and, when
// dest is not nil, a destination there.
func assignCmd(tb testing.TB, assignment, incident string, scene orb.Point, dest *orb.Point) telemetry.Command {
	tb.Helper()
	loc := func(p orb.Point) map[string]float64 { return map[string]float64{"lat": p.Lat(), "lon": p.Lon()} }
	inc, err := json.Marshal(map[string]any{"id": incident, "location": loc(scene), "category": "trauma", "priority": 1, "address": "Fuji"})
	if err != nil {
		tb.Fatal(err)
	}
	c := telemetry.Command{Type: telemetry.CommandAssign, Assignment: assignment, Incident: inc}
	if dest != nil {
		c.Destination, _ = json.Marshal(map[string]any{"id": "H-1", "name": "County People's Hospital", "location": loc(*dest)})
	}
	return c
}

// decoded renders reports as "kind:detail" for comparison.
func decoded(tb testing.TB, rs []report) []string {
	tb.Helper()
	var out []string
	for _, r := range rs {
		switch r.kind {
		case telemetry.KindStatus:
			s, err := telemetry.DecodeStatus("u", r.payload, time.Now())
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, "status:"+s.Status+":"+s.Incident)
		case telemetry.KindAck:
			a, err := telemetry.DecodeAck("u", r.payload, time.Now())
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, fmt.Sprintf("ack:%s:%t:%s", a.Assignment, a.Accepted, a.Reason))
		default:
			out = append(out, string(r.kind))
		}
	}
	return out
}

func testVehicle(tb testing.TB, w *world, wander bool, now time.Time) *vehicle {
	tb.Helper()
	cfg := Config{Speedup: 100, Wander: wander}.withDefaults()
	return newVehicle(UnitSpec{ID: "A1", Home: station}, w, cfg, rand.New(rand.NewPCG(1, 2)), now)
}

// runUntil steps v in 1 s ticks until it has been idle at home or until
// limit, collecting reports and checking every fix.
func runUntil(tb testing.TB, v *vehicle, now time.Time, limit time.Duration) ([]string, time.Time) {
	tb.Helper()
	var got []string
	var seq uint64
	for end := now.Add(limit); now.Before(end); now = now.Add(time.Second) {
		got = append(got, decoded(tb, v.step(now))...)
		f := v.fix(now)
		if f.Seq <= seq || !geo.ValidLatLon(f.Lat, f.Lon) || f.SpeedKmh > 200.5 || f.HDOP <= 0 || f.Sats < 4 {
			tb.Fatalf("bad fix %+v after seq %d", f, seq)
		}
		seq = f.Seq
		if !v.busy() && v.act.what == parked {
			break
		}
	}
	return got, now
}

func TestVehicleAssignment(t *testing.T) {
	scene, hosp := offset(station, 3000, 2000), offset(station, -2000, 1000)
	w := &world{hospitals: []orb.Point{offset(station, 9000, 0), hosp}}
	tests := []struct {
		name string
		dest *orb.Point
		want orb.Point // where the transport ends
	}{
		{"destination in the command", &hosp, hosp},
		{"nearest hospital", nil, hosp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
			v := testVehicle(t, w, false, now)
			out, err := v.command(now, assignCmd(t, "ASG-1", "INC-1", scene, tt.dest))
			if err != nil {
				t.Fatal(err)
			}
			got := decoded(t, out)
			var handover orb.Point
			for end := now.Add(time.Hour); now.Before(end) && len(got) < 6; {
				now = now.Add(time.Second)
				got = append(got, decoded(t, v.step(now))...)
				if v.act.what == atHospital {
					handover = v.act.at
				}
			}
			want := []string{"ack:ASG-1:true:", "status:en_route:INC-1", "status:on_scene:INC-1",
				"status:transporting:INC-1", "status:at_hospital:INC-1", "status:available:INC-1"}
			if !slices.Equal(got, want) {
				t.Fatalf("reports = %q, want %q", got, want)
			}
			if d := geo.Distance(handover, tt.want); d > 1 {
				t.Errorf("handed over %.0f m from the destination", d)
			}
			rest, _ := runUntil(t, v, now, time.Hour)
			if p, _, _ := v.position(now.Add(time.Hour)); len(rest) != 0 || geo.Distance(p, station) > 1 {
				t.Errorf("after the call: reports %q, %.0f m from home; want none, home", rest, geo.Distance(p, station))
			}
		})
	}
}

func TestVehicleCommands(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	scene := offset(station, 3000, 0)
	tests := []struct {
		name    string
		cmd     telemetry.Command
		want    []string
		wantErr bool
	}{
		{"second assignment", assignCmd(t, "ASG-2", "INC-2", scene, nil), []string{"ack:ASG-2:false:busy"}, false},
		{"redelivered assignment", assignCmd(t, "ASG-1", "INC-1", scene, nil), []string{"ack:ASG-1:true:"}, false},
		{"cancel of another", telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-9"}, nil, true},
		{"no assignment id", telemetry.Command{Type: telemetry.CommandCancel}, nil, true},
		{"cancel", telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"}, []string{"status:available:INC-1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVehicle(t, &world{}, false, now)
			if _, err := v.command(now, assignCmd(t, "ASG-1", "INC-1", scene, nil)); err != nil {
				t.Fatal(err)
			}
			out, err := v.command(now.Add(time.Second), tt.cmd)
			if got := decoded(t, out); !slices.Equal(got, tt.want) || (err != nil) != tt.wantErr {
				t.Errorf("command = %q, %v; want %q, error %t", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("bad incident", func(t *testing.T) {
		v := testVehicle(t, &world{}, false, now)
		c := assignCmd(t, "ASG-1", "INC-1", orb.Point{0, 0}, nil)
		out, err := v.command(now, c)
		if got := decoded(t, out); err != nil || len(got) != 1 || got[0][:len("ack:ASG-1:false")] != "ack:ASG-1:false" || v.busy() {
			t.Errorf("command = %q, %v, busy %t; want a refusal", got, err, v.busy())
		}
	})
	t.Run("cancel drives home", func(t *testing.T) {
		v := testVehicle(t, &world{}, false, now)
		if _, err := v.command(now, assignCmd(t, "ASG-1", "INC-1", scene, nil)); err != nil {
			t.Fatal(err)
		}
		now := now.Add(30 * time.Second)
		if _, err := v.command(now, telemetry.Command{Type: telemetry.CommandCancel, Assignment: "ASG-1"}); err != nil {
			t.Fatal(err)
		}
		rest, _ := runUntil(t, v, now, time.Hour)
		if p, _, _ := v.position(now.Add(time.Hour)); len(rest) != 0 || geo.Distance(p, station) > 1 || v.busy() {
			t.Errorf("after cancel: reports %q, %.0f m from home, busy %t", rest, geo.Distance(p, station), v.busy())
		}
	})
}

func TestVehicleWander(t *testing.T) {
	u := uRegion(t)
	home := offset(station, 500, 500)
	w := &world{inside: insideAny([]*geo.Region{u})}
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	moving, driving := 0, 0
	for i := range 30 {
		cfg := Config{Speedup: 10, Wander: true}.withDefaults()
		v := newVehicle(UnitSpec{ID: "A1", Home: home}, w, cfg, rand.New(rand.NewPCG(uint64(i), 2)), now)
		if _, speed, _ := v.position(now); speed > 0 {
			moving++
		}
		for at := now; at.Before(now.Add(2 * time.Hour)); at = at.Add(time.Second) {
			if rs := v.step(at); len(rs) != 0 {
				t.Fatalf("wandering unit reported %q", decoded(t, rs))
			}
			p, speed, _ := v.position(at)
			if !nearlyInside(u, p) {
				t.Fatalf("wandering unit at %v, outside its bounds", p)
			}
			if d := geo.Distance(p, home); d > wanderMaxM+50 {
				t.Fatalf("wandering unit %.0f m from home", d)
			}
			if speed > 0 {
				driving++
			}
		}
	}
	if moving < 3 || moving > 20 {
		t.Errorf("%d of 30 units moving at start, want about a third", moving)
	}
	if driving == 0 {
		t.Error("no unit wandered in two hours")
	}
}

func TestVehicleVideo(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	v := testVehicle(t, &world{}, false, now)
	count := func() map[string]int {
		n := map[string]int{}
		for range 200 {
			vid := v.video(now)
			n["uplink:"+vid.Uplink]++
			for _, c := range vid.Cameras {
				n[c.State]++
			}
		}
		return n
	}
	idle := count()
	if _, err := v.command(now, assignCmd(t, "ASG-1", "INC-1", offset(station, 3000, 0), nil)); err != nil {
		t.Fatal(err)
	}
	call := count()
	if idle[telemetry.CameraStreaming] != 0 || idle[telemetry.CameraIdle] == 0 {
		t.Errorf("idle unit cameras %v, want idle and never streaming", idle)
	}
	if call[telemetry.CameraStreaming] == 0 || call[telemetry.CameraIdle] != 0 {
		t.Errorf("unit on a call cameras %v, want streaming and never idle", call)
	}
	if n := idle["uplink:4g"] + call["uplink:4g"]; n < 200 || idle["uplink:5g"]+call["uplink:5g"] == 0 {
		t.Errorf("uplinks idle %v, on call %v: want 4g mostly, sometimes 5g", idle, call)
	}
}
