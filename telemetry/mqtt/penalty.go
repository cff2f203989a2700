package mqtt

import (
	"sync"
	"time"
)

// The penalty box: what a connected client may get wrong before it is
// disconnected and its next CONNECTs refused for a growing time.
const (
	// penaltyFree is how many offences a client may commit within
	// penaltyQuiet before it is penalised: a terminal misconfigured once,
	// or on a flaky link, is not.
	penaltyFree = 3
	// penaltyBase is the first penalty; each further offence doubles it,
	// up to penaltyMax.
	penaltyBase = time.Second
	penaltyMax  = 5 * time.Minute
	// penaltyQuiet is how long a client must commit no offence to start
	// afresh.
	penaltyQuiet = 10 * time.Minute
	// penaltyHold is how long a CONNECT from a client in the box is held
	// before it is refused, so that a client retrying at once is slowed
	// even when it ignores the refusal.
	penaltyHold = 2 * time.Second
	// deniedPerMinute is how many refused publishes an MQTT 5 client
	// (answered with a negative PUBACK, not disconnected) may send in a
	// minute before it is disconnected as an offender.
	deniedPerMinute = 60
	// minPenaltySweep is how many clients are remembered before those
	// that served their time and kept quiet are forgotten.
	minPenaltySweep = 1024
)

// penalties is the penalty box. An offence is something only a client
// that has been let in can commit and that no working terminal does: a
// QoS 1 or 2 publish it may not make, or to a topic no client may publish
// to ($SYS), a flood past the message rate, a packet over the size limit.
// A connection refused before it is authenticated is never an offence,
// so that nobody can get a unit's terminal penalised by failing to log in
// as it. Clients are known by id: a unit's terminal must use its unit id.
type penalties struct {
	mu      sync.Mutex
	m       map[string]*record
	sweepAt int
	denied  quota // MQTT 5 refused publishes, per client per minute
}

// record is one client's offences.
type record struct {
	offences int
	last     time.Time // the last offence
	until    time.Time // end of the current penalty
}

func newPenalties() *penalties {
	return &penalties{m: map[string]*record{}, sweepAt: minPenaltySweep,
		denied: quota{window: time.Minute, perKey: deniedPerMinute, total: 1 << 30}}
}

// offend records an offence of client id at now and returns the penalty
// it earned: zero while it is within penaltyFree.
func (p *penalties) offend(id string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.m[id]
	if r == nil {
		if len(p.m) >= p.sweepAt {
			p.sweep(now)
		}
		r = &record{}
		p.m[id] = r
	}
	if now.Sub(r.last) > penaltyQuiet {
		r.offences = 0
	}
	r.offences++
	r.last = now
	if r.offences <= penaltyFree {
		return 0
	}
	d := penaltyMax
	if n := r.offences - penaltyFree - 1; n < 20 {
		d = min(penaltyBase<<n, penaltyMax)
	}
	r.until = now.Add(d)
	return d
}

// serving returns how much longer client id is in the box at now.
func (p *penalties) serving(id string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.m[id]; r != nil && now.Before(r.until) {
		return r.until.Sub(now)
	}
	return 0
}

// sweep forgets the clients that served their time and have been quiet
// for penaltyQuiet: they would start afresh anyway.
func (p *penalties) sweep(now time.Time) {
	for id, r := range p.m {
		if now.Sub(r.last) > penaltyQuiet && !now.Before(r.until) {
			delete(p.m, id)
		}
	}
	p.sweepAt = max(2*len(p.m), minPenaltySweep)
}
