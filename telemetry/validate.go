package telemetry

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Reason says why a report was dropped. It is the reason label of the
// lifeline_telemetry_rejected_total metric.
type Reason string

// The reasons a report is dropped.
const (
	Malformed      Reason = "malformed"       // not a payload of contract v1
	UnknownUnit    Reason = "unknown_unit"    // the topic names a unit the Registry does not know
	BadTopic       Reason = "bad_topic"       // not a unit topic of contract v1
	TooLarge       Reason = "too_large"       // payload over Limits.MaxPayload or batch over Limits.MaxBatch
	OutOfRange     Reason = "out_of_range"    // coordinates or time outside what the world has
	Future         Reason = "future"          // fix time more than Limits.MaxFuture ahead of now
	TooOld         Reason = "too_old"         // fix time more than Limits.MaxAge ago
	ImpossibleJump Reason = "impossible_jump" // implied speed from the live position over Limits.MaxSpeedKmh
	DuplicateSeq   Reason = "duplicate_seq"   // seq already seen, or older than the window
)

// Rejection is a report, or one fix of it, that was dropped. It implements
// error; decoders return *Rejection so callers can errors.As them.
type Rejection struct {
	Unit   string
	Kind   Kind
	Reason Reason
	Detail string
	Err    error // the underlying cause, if any (e.g. a JSON syntax error)
}

// Error returns e.g. "telemetry: unit A12 gps: out_of_range: lat 91".
func (r *Rejection) Error() string {
	var b strings.Builder
	b.WriteString("telemetry: ")
	if r.Unit != "" {
		b.WriteString("unit ")
		b.WriteString(r.Unit)
		b.WriteByte(' ')
	}
	if r.Kind != "" {
		b.WriteString(string(r.Kind))
		b.WriteString(": ")
	}
	b.WriteString(string(r.Reason))
	if r.Detail != "" {
		b.WriteString(": ")
		b.WriteString(r.Detail)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (r *Rejection) Unwrap() error { return r.Err }

// Is reports whether target is a *Rejection with the same Reason, so that
// errors.Is(err, &Rejection{Reason: Malformed}) works. Empty Unit and Kind
// in target match any; set ones must be equal.
func (r *Rejection) Is(target error) bool {
	t, ok := target.(*Rejection)
	if !ok {
		return false
	}
	return t.Reason == r.Reason && (t.Unit == "" || t.Unit == r.Unit) && (t.Kind == "" || t.Kind == r.Kind)
}

func reject(unit string, k Kind, reason Reason, format string, args ...any) *Rejection {
	return &Rejection{Unit: unit, Kind: k, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Limits bound what the Validator and the Pipeline accept. A zero field
// takes its value from DefaultLimits.
type Limits struct {
	MaxPayload  int           // bytes; default 256 KiB
	MaxBatch    int           // fixes per message; default 1000
	MaxFuture   time.Duration // clock skew tolerated; default 30s
	MaxAge      time.Duration // oldest fix accepted (store-and-forward after a coverage gap); default 72h
	MaxSpeedKmh float64       // implied speed from the unit's recent path above which a fix is an impossible jump (see Validator); default 250
	SeqWindow   int           // seqs remembered below the highest; rounded up to a multiple of 64; default 4096
	// MaxClockOffset is how far a terminal's clock may be steadily off
	// (see Clock) and its fixes still be taken: a fix from further in the
	// future than MaxFuture (or older than MaxAge) is accepted when it is
	// not once the offset is taken off its time. Default 15m.
	MaxClockOffset time.Duration
	// JumpConfirm is how many consecutive fixes, each an impossible jump
	// from the live position but plausible from one another, move the unit
	// anyway: the live position was the wrong one (a terminal's wild first
	// fix after a cold start, a stale seeded position). Default 3; negative
	// disables it, so a unit can be held by one bad fix until time catches up.
	JumpConfirm int
}

// DefaultLimits are the limits of a production server.
var DefaultLimits = Limits{
	MaxPayload:     256 << 10,
	MaxBatch:       1000,
	MaxFuture:      30 * time.Second,
	MaxAge:         72 * time.Hour,
	MaxSpeedKmh:    250,
	MaxClockOffset: 15 * time.Minute,
	SeqWindow:      4096,
	JumpConfirm:    3,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxPayload <= 0 {
		l.MaxPayload = d.MaxPayload
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = d.MaxBatch
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = d.MaxFuture
	}
	if l.MaxAge <= 0 {
		l.MaxAge = d.MaxAge
	}
	if !(l.MaxSpeedKmh > 0) {
		l.MaxSpeedKmh = d.MaxSpeedKmh
	}
	if l.MaxClockOffset <= 0 {
		l.MaxClockOffset = d.MaxClockOffset
	}
	if l.SeqWindow <= 0 {
		l.SeqWindow = d.SeqWindow
	}
	l.SeqWindow = (l.SeqWindow + 63) / 64 * 64
	if l.JumpConfirm == 0 {
		l.JumpConfirm = d.JumpConfirm
	}
	return l
}

// Validator filters fixes against each unit's live position and sequence
// window. It is safe for concurrent use; units are independent of one
// another and one unit's checks are serialised.
//
// Sequence numbers work like an anti-replay window (IPsec, DTLS): the
// Validator remembers the highest seq seen per unit and which of the
// SeqWindow seqs below it were seen. A seq already seen, or older than the
// window, is a DuplicateSeq (an MQTT redelivery, a replay), with one
// exception: terminal vendors restart the counter when the terminal
// reboots. A seq below the highest seen (already seen or older than the
// window) whose fix time is newer than the live position's cannot be a
// redelivery, since every accepted fix is at or before the live position
// in time; the Validator takes it as a reboot, restarts the window at that
// seq and accepts the fix.
//
// Every fix is judged for speed against the unit's recent path: the last
// few fixes that moved its live position (recentFixes), not only the
// newest. It is an impossible jump when, from any of them, it implies more
// than MaxSpeedKmh once both fixes' GPS error is allowed for:
//
//	(distance - err(a) - err(b)) / max(|fix time b - fix time a|, 1s) > MaxSpeedKmh
//
// where err is a fix's HDOP times a user equivalent range error of 5 m,
// at least 10 m and at most 100 m (50 m when the fix gives no HDOP). The
// error allowance is what lets a parked unit jitter; judging against the
// path and not only the last fix is what keeps it from adding up, so that
// a chain of small hops (289 m every 60 ms moved a unit 11 km in 3 s
// when short hops went unjudged) is stopped at the second hop.
type Validator struct {
	limits Limits
	now    func() time.Time
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu    sync.Mutex
	units map[string]*unitState
}

// unitState is what the Validator knows of one unit. mu serialises checks.
type unitState struct {
	mu      sync.Mutex
	live    Fix
	hasLive bool
	path    path // the newest fixes that moved the live position, live last
	win     seqWindow
	// cand holds the newest of candN consecutive impossible jumps that
	// are plausible from one another (see Limits.JumpConfirm).
	cand  path
	candN int
	clock clockEstimate
	// told is the Clock last handed to the Sink.
	told Clock
	undo unitSnapshot
}

// unitSnapshot is the part of unitState a check changes, kept to undo a
// check whose positions the Sink did not take.
type unitSnapshot struct {
	live    Fix
	hasLive bool
	path    path
	win     seqWindow
	cand    path
	candN   int
	told    Clock
}

// NewValidator returns a Validator with limits l (zero fields default) and
// clock now (time.Now when nil).
func NewValidator(l Limits, now func() time.Time) *Validator {
	if now == nil {
		now = time.Now
	}
	v := &Validator{limits: l.withDefaults(), now: now, seed: maphash.MakeSeed()}
	for i := range v.shards {
		v.shards[i].units = make(map[string]*unitState)
	}
	return v
}

// Limits returns the limits in force, defaults filled in.
func (v *Validator) Limits() Limits { return v.limits }

func (v *Validator) shard(unit string) *shard {
	return &v.shards[maphash.String(v.seed, unit)%uint64(len(v.shards))]
}

func (v *Validator) state(unit string) *unitState {
	sh := v.shard(unit)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.units[unit]
	if st == nil {
		st = &unitState{win: newSeqWindow(v.limits.SeqWindow)}
		sh.units[unit] = st
	}
	return st
}

// Seed restores a unit's live position and seq after a restart, as if
// latest had been the last fix accepted.
func (v *Validator) Seed(latest Fix) {
	st := v.state(latest.Unit)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.live, st.hasLive = latest, true
	st.path.reset(latest)
	st.win.reset(latest.Seq)
	st.cand, st.candN = path{}, 0
}

// Forget drops everything known of unit, e.g. when it is decommissioned.
func (v *Validator) Forget(unit string) {
	sh := v.shard(unit)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.units, unit)
}

// Live returns the unit's live position: the newest accepted fix by fix
// time.
func (v *Validator) Live(unit string) (Fix, bool) {
	sh := v.shard(unit)
	sh.mu.Lock()
	st := sh.units[unit]
	sh.mu.Unlock()
	if st == nil {
		return Fix{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.live, st.hasLive
}

// Check filters one message's fixes for unit and updates the unit's state
// with the accepted ones. Fixes are judged in seq order; a fix is rejected
// when its coordinates are out of range (including exactly 0,0, which
// cheap terminals send without a lock), its time is more than MaxFuture
// ahead of now or more than MaxAge ago, its seq is a duplicate (see
// Validator), or it implies a speed over MaxSpeedKmh from the unit's
// recent path, its GPS error allowed for (see Validator). A message of
// more than MaxBatch fixes is rejected whole with one TooLarge rejection.
//
// Late fixes, older in fix time than the live position but with a new
// seq, are accepted into Positions.Fixes for history but never become
// Latest: the live position only moves forward in fix time.
func (v *Validator) Check(unit string, fixes []Fix) (Positions, []Rejection) {
	pos, rej, _ := v.check(unit, fixes, nil)
	return pos, rej
}

// check is Check that, when then is not nil and some fix was accepted,
// calls then with the unit still locked and undoes the state changes if
// then fails. The Pipeline uses it so that positions the Sink did not take
// are not duplicates when the broker redelivers them, and so that the
// Sink sees one unit's positions in the order they were validated.
func (v *Validator) check(unit string, fixes []Fix, then func(Positions) error) (Positions, []Rejection, error) {
	pos := Positions{Unit: unit}
	if len(fixes) == 0 {
		return pos, nil, nil
	}
	if len(fixes) > v.limits.MaxBatch {
		return pos, []Rejection{*reject(unit, KindGPS, TooLarge, "batch of %d fixes, max %d", len(fixes), v.limits.MaxBatch)}, nil
	}
	in := make([]Fix, len(fixes))
	copy(in, fixes)
	if len(in) > 1 {
		slices.SortStableFunc(in, func(a, b Fix) int {
			if a.Seq != b.Seq {
				if a.Seq < b.Seq {
					return -1
				}
				return 1
			}
			return a.Time.Compare(b.Time)
		})
	}
	now := v.now()
	st := v.state(unit)
	st.mu.Lock()
	defer st.mu.Unlock()
	if then != nil {
		st.save()
	}
	newest, received := in[0].Time, in[0].Received
	for _, f := range in[1:] {
		newest, received = later(newest, f.Time), later(received, f.Received)
	}
	st.clock.add(newest, received)
	var rejs []Rejection
	accepted := in[:0]
	latest := -1
	for _, f := range in {
		f.Unit = unit
		if r := v.judge(st, &f, now, st.clock.clock); r != nil {
			rejs = append(rejs, *r)
			continue
		}
		accepted = append(accepted, f)
		if !st.hasLive || f.Time.After(st.live.Time) {
			st.live, st.hasLive = f, true
			st.path.push(f)
			latest = len(accepted) - 1
		}
	}
	pos.Clock = st.clock.clock
	if len(accepted) == 0 && !newsOf(st.told, pos.Clock) {
		return pos, rejs, nil
	}
	st.told = pos.Clock
	if len(accepted) > 0 {
		pos.Fixes = accepted
	}
	if latest >= 0 {
		pos.Latest = &pos.Fixes[latest]
	}
	if then != nil {
		if err := then(pos); err != nil {
			st.restore()
			return pos, rejs, err
		}
	}
	return pos, rejs, nil
}

// judge decides one fix and, when it is accepted, updates the unit's seq
// window and jump candidate (not the live position). It returns nil for an
// accepted fix.
func (v *Validator) judge(st *unitState, f *Fix, now time.Time, c Clock) *Rejection {
	if r := v.judgeFix(f, now, c); r != nil {
		return r
	}
	reboot := false
	switch c := st.win.classify(f.Seq); c {
	case seqSeen, seqOld:
		if c == seqSeen && f.Seq == st.win.top || !st.hasLive || !f.Time.After(st.live.Time) {
			if c == seqOld {
				return reject(f.Unit, KindGPS, DuplicateSeq, "seq %d older than window (highest %d)", f.Seq, st.win.top)
			}
			return reject(f.Unit, KindGPS, DuplicateSeq, "seq %d already seen", f.Seq)
		}
		reboot = true
	}
	if st.hasLive {
		if from, kmh, jump := v.jumpFrom(&st.path, *f); jump {
			if !v.confirmJump(st, *f) {
				return reject(f.Unit, KindGPS, ImpossibleJump, "seq %d: %.0f km/h from seq %d", f.Seq, kmh, from)
			}
		} else {
			st.cand, st.candN = path{}, 0
		}
	}
	if reboot {
		st.win.reset(f.Seq)
	} else {
		st.win.mark(f.Seq)
	}
	return nil
}

// judgeFix checks what a fix says on its own against the clock: its time
// as it says, or else less the terminal's steady clock offset c.
func (v *Validator) judgeFix(f *Fix, now time.Time, c Clock) *Rejection {
	if !validCoord(f.Lat, f.Lon) {
		return reject(f.Unit, KindGPS, OutOfRange, "seq %d: lat %g lon %g", f.Seq, f.Lat, f.Lon)
	}
	r := v.timeReason(f.Time, now)
	if r == "" {
		return nil
	}
	usable := c.Known && c.Offset.Abs() <= v.limits.MaxClockOffset
	if usable && v.timeReason(f.Time.Add(-c.Offset), now) == "" {
		return nil
	}
	terminal := "terminal clock not yet known"
	switch {
	case usable:
		terminal = fmt.Sprintf("terminal clock %+.0fs", c.Offset.Seconds())
	case c.Known:
		terminal = fmt.Sprintf("terminal clock %+.0fs, beyond the %s corrected", c.Offset.Seconds(), v.limits.MaxClockOffset)
	}
	return reject(f.Unit, KindGPS, r, "seq %d: fix time %s, now %s (%s)", f.Seq, f.Time.Format(time.RFC3339), now.UTC().Format(time.RFC3339), terminal)
}

// newsOf reports whether c differs from what the Sink was told, told, by
// enough to tell it again: a second, or whether it is known.
func newsOf(told, c Clock) bool {
	return told.Known != c.Known || (told.Offset-c.Offset).Abs() >= time.Second
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// timeReason judges a report time against now: Future, TooOld or "".
func (v *Validator) timeReason(t, now time.Time) Reason {
	switch {
	case t.After(now.Add(v.limits.MaxFuture)):
		return Future
	case t.Before(now.Add(-v.limits.MaxAge)):
		return TooOld
	}
	return ""
}

// validCoord reports whether lat, lon can be a terminal's position: a
// valid WGS-84 coordinate other than null island (0, 0).
func validCoord(lat, lon float64) bool {
	if math.IsNaN(lat) || math.IsNaN(lon) || math.IsInf(lat, 0) || math.IsInf(lon, 0) {
		return false
	}
	return geo.ValidLatLon(lat, lon) && !(lat == 0 && lon == 0)
}

// The GPS error allowed for a fix in the jump judgement (see Validator).
const (
	uereM       = 5.0         // metres of horizontal error per unit of HDOP
	minFixErrM  = 10.0        // a receiver's HDOP is optimistic
	maxFixErrM  = 100.0       // a fix claiming worse accuracy gets no more room
	noHDOPErrM  = 50.0        // a fix that gives no HDOP
	minJumpTime = time.Second // the fix times of many terminals have a resolution of a second
	recentFixes = 8           // the fixes of a unit's path a new one is judged against
)

// fixError is the horizontal error allowed for f, in metres.
func fixError(f Fix) float64 {
	h := f.HDOP
	if !(h > 0) || math.IsInf(h, 1) {
		return noHDOPErrM
	}
	return min(max(h*uereM, minFixErrM), maxFixErrM)
}

// jump reports the speed implied between two fixes, their GPS error
// allowed for, and whether it is impossible.
func (v *Validator) jump(a, b pathPoint) (kmh float64, impossible bool) {
	d := geo.Distance(a.p, b.p) - a.errM - b.errM
	if !(d > 0) {
		return 0, false
	}
	dt := max(math.Abs(float64(b.ms-a.ms))/1000, minJumpTime.Seconds())
	kmh = d / dt * 3.6
	return kmh, kmh > v.limits.MaxSpeedKmh
}

// jumpFrom judges f against every fix of p and returns the worst: the seq
// it jumps from and the speed it implies.
func (v *Validator) jumpFrom(p *path, f Fix) (from uint64, kmh float64, impossible bool) {
	b := pointOf(f)
	for i := range p.n {
		a := p.at(i)
		if k, jump := v.jump(a, b); jump && k > kmh {
			from, kmh, impossible = a.seq, k, true
		}
	}
	return from, kmh, impossible
}

// confirmJump counts f, an impossible jump from the live position, towards
// moving the unit anyway (Limits.JumpConfirm) and reports whether it does.
func (v *Validator) confirmJump(st *unitState, f Fix) bool {
	if v.limits.JumpConfirm < 0 || !f.Time.After(st.live.Time) {
		return false
	}
	// Plausible from every candidate, not only the newest, so that a
	// chain of candidates cannot walk either.
	if _, _, jump := v.jumpFrom(&st.cand, f); st.candN > 0 && f.Time.UnixMilli() > st.cand.at(st.cand.n-1).ms && !jump {
		st.cand.push(f)
		st.candN++
	} else {
		st.cand.reset(f)
		st.candN = 1
	}
	if st.candN < v.limits.JumpConfirm {
		return false
	}
	st.cand, st.candN = path{}, 0
	st.path = path{} // it led to the wrong place; f, newer than live, starts it again
	return true
}

func (st *unitState) save() {
	u := &st.undo
	u.live, u.hasLive, u.path, u.cand, u.candN, u.told = st.live, st.hasLive, st.path, st.cand, st.candN, st.told
	bits := u.win.bits
	u.win = st.win
	u.win.bits = append(bits[:0], st.win.bits...)
}

func (st *unitState) restore() {
	u := &st.undo
	st.live, st.hasLive, st.path, st.cand, st.candN, st.told = u.live, u.hasLive, u.path, u.cand, u.candN, u.told
	bits := st.win.bits
	st.win = u.win
	st.win.bits = append(bits[:0], u.win.bits...)
}

// path is a ring of the newest recentFixes fixes of a unit, as much of
// them as the jump judgement needs.
type path struct {
	points [recentFixes]pathPoint
	next   int // where the next fix goes
	n      int
}

// pathPoint is a fix as the jump judgement sees it.
type pathPoint struct {
	p    orb.Point
	ms   int64 // fix time, Unix milliseconds
	errM float64
	seq  uint64
}

func pointOf(f Fix) pathPoint {
	return pathPoint{p: f.Point(), ms: f.Time.UnixMilli(), errM: fixError(f), seq: f.Seq}
}

// push adds f, dropping the oldest when full.
func (p *path) push(f Fix) {
	p.points[p.next] = pointOf(f)
	p.next = (p.next + 1) % len(p.points)
	p.n = min(p.n+1, len(p.points))
}

// at returns the i-th point, oldest first.
func (p *path) at(i int) pathPoint {
	return p.points[(p.next-p.n+i+len(p.points))%len(p.points)]
}

// reset makes f the whole path.
func (p *path) reset(f Fix) {
	*p = path{}
	p.push(f)
}

// seqWindow is an anti-replay sliding window over sequence numbers: the
// highest seq seen and a ring bitmap of the len(bits)*64 seqs up to it.
type seqWindow struct {
	init bool
	top  uint64
	bits []uint64
}

type seqClass int

const (
	seqNew    seqClass = iota // above the highest seen, or the first
	seqUnseen                 // in the window, not seen: a late fix
	seqSeen                   // in the window, seen
	seqOld                    // below the window
)

func newSeqWindow(n int) seqWindow { return seqWindow{bits: make([]uint64, n/64)} }

func (w *seqWindow) size() uint64 { return uint64(len(w.bits)) * 64 }

func (w *seqWindow) bit(s uint64) (word int, mask uint64) {
	i := s % w.size()
	return int(i / 64), 1 << (i % 64)
}

func (w *seqWindow) classify(s uint64) seqClass {
	switch {
	case !w.init || s > w.top:
		return seqNew
	case w.top-s >= w.size():
		return seqOld
	}
	i, m := w.bit(s)
	if w.bits[i]&m != 0 {
		return seqSeen
	}
	return seqUnseen
}

// mark records s as seen, sliding the window up when s is new. s must not
// be seqOld.
func (w *seqWindow) mark(s uint64) {
	if !w.init {
		w.reset(s)
		return
	}
	if s > w.top {
		if s-w.top >= w.size() {
			clear(w.bits)
		} else {
			for t := w.top + 1; t < s; t++ {
				i, m := w.bit(t)
				w.bits[i] &^= m
			}
		}
		w.top = s
	}
	i, m := w.bit(s)
	w.bits[i] |= m
}

// reset restarts the window at s, seen.
func (w *seqWindow) reset(s uint64) {
	clear(w.bits)
	w.init, w.top = true, s
	i, m := w.bit(s)
	w.bits[i] |= m
}
