package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Scenario times, before Speedup compresses them.
const (
	sceneMin, sceneMax       = 10 * time.Minute, 20 * time.Minute // dwell on scene
	hospitalMin, hospitalMax = 10 * time.Minute, 15 * time.Minute // dwell at hospital
	idleMin, idleMax         = 5 * time.Minute, 20 * time.Minute  // parked between wander drives
	pauseMin, pauseMax       = 1 * time.Minute, 4 * time.Minute   // stop at a wander target
	wanderMinM, wanderMaxM   = 1000.0, 5000.0                     // wander drive length
	minActivity              = time.Millisecond                   // shortest real activity, so no step loops forever
)

// errNoWander is returned when no wander target lies inside the bounds.
var errNoWander = errors.New("no wander target inside the bounds")

// doing is what a vehicle is busy with.
type doing int

const (
	parked     doing = iota // standing, at home or where a wander drive ended
	toScene                 // driving to an incident
	onScene                 // treating a patient
	toHospital              // transporting
	atHospital              // handing over
	homeward                // driving back to the station
	wandering               // a short repositioning drive
	pausing                 // standing at the end of a wander drive
)

// activity is one stretch of a vehicle's day: a drive or a stop.
type activity struct {
	what  doing
	trip  *trip     // nil for a stop
	at    orb.Point // where a stop is
	start time.Time
	scale float64   // scenario seconds per real second
	end   time.Time // zero for a stop with no end
}

// job is the assignment a vehicle is working.
type job struct {
	assignment, incident string
	scene, dest          orb.Point
}

// report is a message a vehicle wants published.
type report struct {
	kind    telemetry.Kind
	payload []byte
}

// cameraState is one camera of a vehicle's video system.
type cameraState struct{ fault bool }

// vehicle is the behaviour of one unit without any I/O: where it is, what
// it does next and what its terminal reports. Its terminal calls it from
// one goroutine; every method takes the current time.
type vehicle struct {
	id      string
	home    orb.Point
	inside  func(orb.Point) bool
	hosp    []orb.Point
	speedup float64
	maxKmh  float64 // cap on the speed seen on the wire; <= 0 for none
	wander  bool
	rng     *rand.Rand

	act     activity
	job     *job
	seq     uint64
	heading float64
	cams    []cameraState
}

// newVehicle returns unit u at home at now, or, with wander, sometimes
// already on a repositioning drive.
func newVehicle(u UnitSpec, w *world, cfg Config, rng *rand.Rand, now time.Time) *vehicle {
	v := &vehicle{
		id: u.ID, home: u.Home, inside: w.inside, hosp: w.hospitals,
		speedup: cfg.Speedup, maxKmh: cfg.MaxSpeedKmh, wander: cfg.Wander, rng: rng,
		heading: rng.Float64() * 360,
		cams:    make([]cameraState, 2+rng.IntN(2)),
	}
	v.act = activity{what: parked, at: u.Home, start: now}
	if !v.wander {
		return v
	}
	if rng.Float64() < 1.0/3 {
		if err := v.startWander(now); err == nil {
			// Already part-way, so that it moves from the first fix on.
			back := time.Duration(float64(v.act.end.Sub(now)) * (0.1 + 0.5*rng.Float64()))
			v.act.start, v.act.end = v.act.start.Add(-back), v.act.end.Add(-back)
			return v
		}
	}
	v.act.end = now.Add(v.real(v.between(0, idleMax), v.speedup))
	return v
}

// between returns a uniformly random duration in [lo, hi).
func (v *vehicle) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(v.rng.Int64N(int64(hi-lo)+1))
}

// real turns a scenario duration into real time at scale, never below
// minActivity.
func (v *vehicle) real(d time.Duration, scale float64) time.Duration {
	return max(time.Duration(float64(d)/scale), minActivity)
}

// position returns where the vehicle is at now, its speed on the wire
// (km/h of real time) and its heading.
func (v *vehicle) position(now time.Time) (p orb.Point, speedKmh, heading float64) {
	if v.act.trip == nil {
		return v.act.at, 0, v.heading
	}
	d := time.Duration(float64(now.Sub(v.act.start)) * v.act.scale)
	p, speedKmh, heading = v.act.trip.At(d)
	if speedKmh == 0 {
		heading = v.heading
	}
	return p, speedKmh * v.act.scale, heading
}

// next returns when the current activity ends, zero for never.
func (v *vehicle) next() time.Time { return v.act.end }

// busy reports whether the vehicle is working an assignment.
func (v *vehicle) busy() bool { return v.job != nil }

// step brings the vehicle up to now, finishing every activity that ended
// by then, and returns the status presses that came with them.
func (v *vehicle) step(now time.Time) []report {
	var out []report
	for !v.act.end.IsZero() && !now.Before(v.act.end) {
		out = append(out, v.finish(v.act.end)...)
	}
	return out
}

// finish ends the current activity at t and starts the next one.
func (v *vehicle) finish(t time.Time) []report {
	p, _, _ := v.position(t)
	switch v.act.what {
	case toScene:
		v.stop(t, onScene, p, v.between(sceneMin, sceneMax))
		return v.status(t, telemetry.StatusOnScene)
	case onScene:
		out := v.status(t, telemetry.StatusTransporting)
		v.drive(t, toHospital, v.job.dest, 45+15*v.rng.Float64())
		return out
	case toHospital:
		v.stop(t, atHospital, p, v.between(hospitalMin, hospitalMax))
		return v.status(t, telemetry.StatusAtHospital)
	case atHospital:
		out := v.status(t, telemetry.StatusAvailable)
		v.job = nil
		v.drive(t, homeward, v.home, 40+15*v.rng.Float64())
		return out
	case parked:
		if v.wander && v.startWander(t) == nil {
			return nil
		}
		v.park(t, p)
	case wandering:
		v.stop(t, pausing, p, v.between(pauseMin, pauseMax))
	case pausing:
		v.drive(t, homeward, v.home, 40+15*v.rng.Float64())
	case homeward:
		v.park(t, p)
	}
	return nil
}

// park stands the vehicle at p; with wander it leaves again later.
func (v *vehicle) park(t time.Time, p orb.Point) {
	v.act = activity{what: parked, at: p, start: t}
	if v.wander {
		v.act.end = t.Add(v.real(v.between(idleMin, idleMax), v.speedup))
	}
}

// stop stands the vehicle at p for the scenario duration d.
func (v *vehicle) stop(t time.Time, what doing, p orb.Point, d time.Duration) {
	v.act = activity{what: what, at: p, start: t, scale: v.speedup, end: t.Add(v.real(d, v.speedup))}
}

// drive starts a drive from where the vehicle is at t to dest at about
// cruiseKmh in scenario time. Speedup compresses it, but never so much
// that the speed on the wire exceeds maxKmh.
func (v *vehicle) drive(t time.Time, what doing, dest orb.Point, cruiseKmh float64) {
	from, _, h := v.position(t)
	v.heading = h
	w := wiggle{Amp: 8 + 17*v.rng.Float64(), Wavelength: 300 + 600*v.rng.Float64(), Phase: 2 * math.Pi * v.rng.Float64()}
	tr := newTrip(route(from, dest, v.inside), cruiseKmh, w, v.inside)
	scale := v.speedup
	if v.maxKmh > 0 {
		scale = math.Min(scale, v.maxKmh/cruiseKmh)
	}
	v.act = activity{what: what, trip: tr, start: t, scale: scale, end: t.Add(v.real(tr.Duration(), scale))}
}

// startWander starts a short repositioning drive from home-ish to a point
// 1-5 km from the station inside the bounds.
func (v *vehicle) startWander(t time.Time) error {
	for range 20 {
		d := wanderMinM + (wanderMaxM-wanderMinM)*v.rng.Float64()
		b := 2 * math.Pi * v.rng.Float64()
		p := offset(v.home, d*math.Sin(b), d*math.Cos(b))
		if v.inside == nil || v.inside(p) {
			v.drive(t, wandering, p, 35+15*v.rng.Float64())
			return nil
		}
	}
	return errNoWander
}

// status returns a crew status press at t for the current job.
func (v *vehicle) status(t time.Time, s string) []report {
	st := telemetry.Status{Unit: v.id, Time: t, Status: s}
	if v.job != nil {
		st.Incident = v.job.incident
	}
	return []report{{telemetry.KindStatus, telemetry.EncodeStatus(st)}}
}

func (v *vehicle) ack(assignment string, ok bool, reason string) report {
	return report{telemetry.KindAck, telemetry.EncodeAck(telemetry.Ack{Unit: v.id, Assignment: assignment, Accepted: ok, Reason: reason})}
}

// incident is the part of an assign command's incident the terminal uses.
type incident struct {
	ID       string `json:"id"`
	Location *struct {
		Lat float64 `json:"lat"`
		Lon float64 `json:"lon"`
	} `json:"location"`
}

// place parses a JSON object with a location, as the incident and the
// destination of an assign command have.
func place(raw json.RawMessage) (id string, p orb.Point, err error) {
	var in incident
	if err := json.Unmarshal(raw, &in); err != nil {
		return "", orb.Point{}, err
	}
	if in.Location == nil {
		return "", orb.Point{}, errors.New("no location")
	}
	lat, lon := in.Location.Lat, in.Location.Lon
	if !geo.ValidLatLon(lat, lon) || lat == 0 && lon == 0 {
		return "", orb.Point{}, fmt.Errorf("location %v,%v out of range", lat, lon)
	}
	return in.ID, orb.Point{lon, lat}, nil
}

// command applies a downlink command at now and returns the ack and status
// presses to publish. It returns an error, and nothing to publish, for a
// command no ack can answer (no assignment id).
func (v *vehicle) command(now time.Time, c telemetry.Command) ([]report, error) {
	out := v.step(now)
	if c.Assignment == "" {
		return out, errors.New("command without an assignment")
	}
	switch c.Type {
	case telemetry.CommandAssign:
		if v.job != nil {
			if v.job.assignment == c.Assignment { // a redelivery: answer again
				return append(out, v.ack(c.Assignment, true, "")), nil
			}
			return append(out, v.ack(c.Assignment, false, "busy")), nil
		}
		id, scene, err := place(c.Incident)
		if err != nil {
			return append(out, v.ack(c.Assignment, false, "invalid incident: "+err.Error())), nil
		}
		dest := v.nearestHospital(scene)
		if len(c.Destination) > 0 && string(c.Destination) != "null" {
			if _, p, err := place(c.Destination); err == nil {
				dest = p
			}
		}
		v.job = &job{assignment: c.Assignment, incident: id, scene: scene, dest: dest}
		out = append(out, v.ack(c.Assignment, true, ""))
		out = append(out, v.status(now, telemetry.StatusEnRoute)...)
		v.drive(now, toScene, scene, 50+12*v.rng.Float64())
	case telemetry.CommandCancel:
		if v.job == nil || v.job.assignment != c.Assignment {
			return out, fmt.Errorf("cancel of %s, which this unit is not working", c.Assignment)
		}
		out = append(out, v.status(now, telemetry.StatusAvailable)...)
		v.job = nil
		v.drive(now, homeward, v.home, 40+15*v.rng.Float64())
	}
	return out, nil
}

// nearestHospital returns the hospital nearest p, or home when the world
// has none.
func (v *vehicle) nearestHospital(p orb.Point) orb.Point {
	best, bestD := v.home, math.Inf(1)
	for _, h := range v.hosp {
		if d := geo.Distance(p, h); d < bestD {
			best, bestD = h, d
		}
	}
	return best
}

// fix returns the next GPS fix at now: a new seq, a plausible hdop and
// satellite count, and a little heading noise while moving.
func (v *vehicle) fix(now time.Time) telemetry.Fix {
	p, speed, heading := v.position(now)
	if speed > 0 {
		heading = math.Mod(heading+v.rng.NormFloat64()+360, 360)
		v.heading = heading
	}
	v.seq++
	f := telemetry.Fix{
		Unit: v.id, Seq: v.seq, Time: now.UTC(),
		Lat: round(p[1], 1e6), Lon: round(p[0], 1e6),
		SpeedKmh: round(speed, 10), Heading: round(heading, 10),
		HDOP: round(0.6+0.8*v.rng.Float64(), 10), Sats: 8 + v.rng.IntN(7),
	}
	if v.rng.Float64() < 0.05 { // a valley or a tunnel mouth
		f.HDOP, f.Sats = round(2+2*v.rng.Float64(), 10), 4+v.rng.IntN(3)
	}
	return f
}

// video returns the video status at now: a 4G uplink mostly, sometimes
// 5G, rarely none; cameras stream on a call (or record when there is no
// uplink) and idle otherwise; now and then one faults for a while.
func (v *vehicle) video(now time.Time) telemetry.Video {
	vid := telemetry.Video{Unit: v.id, Time: now.UTC(), Uplink: telemetry.Uplink4G}
	switch r := v.rng.Float64(); {
	case r < 0.02:
		vid.Uplink = telemetry.UplinkNone
	case r < 0.22:
		vid.Uplink = telemetry.Uplink5G
	}
	for i := range v.cams {
		c := &v.cams[i]
		if c.fault {
			c.fault = v.rng.Float64() < 0.7
		} else {
			c.fault = v.rng.Float64() < 0.02
		}
		cam := telemetry.Camera{Ch: i + 1, State: telemetry.CameraIdle}
		switch {
		case c.fault:
			cam.State = telemetry.CameraFault
		case v.job == nil:
		case vid.Uplink == telemetry.UplinkNone:
			cam.State = telemetry.CameraRecording
		case vid.Uplink == telemetry.Uplink5G:
			cam.State, cam.BitrateKbps = telemetry.CameraStreaming, 2500+v.rng.IntN(1500)
		default:
			cam.State, cam.BitrateKbps = telemetry.CameraStreaming, 900+v.rng.IntN(1100)
		}
		vid.Cameras = append(vid.Cameras, cam)
	}
	return vid
}

// round rounds x to 1/per.
func round(x, per float64) float64 { return math.Round(x*per) / per }
