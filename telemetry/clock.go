package telemetry

import (
	"cmp"
	"slices"
	"time"
)

// Clock is what the Validator has learnt of a terminal's clock from the
// fixes it sent: when the newest fix of each message was taken, by the
// terminal's clock, against when the server received the message.
type Clock struct {
	// Offset is the terminal's clock minus the server's (less the time a
	// report takes to arrive, which makes it a little low): +35s is a
	// terminal 35 seconds fast. Zero unless Known.
	Offset time.Duration
	// Known is set once the recent messages agree on Offset: at least
	// clockAgree of the last clockSamples seconds' worth within
	// clockSpread of one another, received over at least clockSpread.
	Known bool
}

// Suspect reports whether the terminal's clock is off by more than
// ClockSuspect: its reports' times cannot be taken at their word, and a
// console should say so.
func (c Clock) Suspect() bool {
	return c.Known && (c.Offset > ClockSuspect || c.Offset < -ClockSuspect)
}

// ClockSuspect is how far a terminal's clock may be off before Clock
// calls it suspect: well above the time a report takes over a weak 4G
// link, well below Limits.MaxFuture.
const ClockSuspect = 10 * time.Second

// How the offset of a terminal's clock is estimated.
const (
	clockSamples = 9               // samples the estimate looks at, one a second at most
	clockAgree   = 5               // of which must agree
	clockSpread  = 5 * time.Second // within this of one another, and received over at least this long
)

// clockSample is the least delayed message of a second: its newest fix
// time less when it was received, and when the second's first message was
// received, both Unix milliseconds.
type clockSample struct{ skew, at int64 }

// clockEstimate estimates a terminal's clock offset from its recent
// messages. A message sent at once says the offset plus its transit time;
// one from a store-and-forward backlog says far less. The estimate is the
// median of the largest group of recent samples that agree (the least
// delayed one when groups tie); a sample is the least delayed message of
// a second, so that the estimate looks at the same span of time whatever
// the message rate, and only a group received over clockSpread counts, so
// that a backlog flushed in a burst, whose samples climb together, does
// not pass for a slow clock. (One trickling in at the speed of real time
// can: it is then shown as a clock that is off, until real-time reports
// teach the estimate otherwise, and, being behind, is never corrected
// for: a correction only rescues a fix that would be dropped.)
type clockEstimate struct {
	samples [clockSamples]clockSample
	next, n int
	clock   Clock
}

// add records the newest fix time of a message received at received and
// updates the estimate. A message without a received time is ignored.
func (c *clockEstimate) add(newest, received time.Time) {
	if received.IsZero() {
		return
	}
	x := clockSample{skew: newest.Sub(received).Milliseconds(), at: received.UnixMilli()}
	if last := &c.samples[(c.next+len(c.samples)-1)%len(c.samples)]; c.n > 0 && x.at-last.at < time.Second.Milliseconds() && x.at >= last.at {
		last.skew = max(last.skew, x.skew) // the same second
	} else {
		c.samples[c.next] = x
		c.next = (c.next + 1) % len(c.samples)
		c.n = min(c.n+1, len(c.samples))
	}

	s := make([]clockSample, 0, clockSamples)
	s = append(s, c.samples[:c.n]...)
	slices.SortFunc(s, func(a, b clockSample) int { return cmp.Compare(a.skew, b.skew) })
	spread := clockSpread.Milliseconds()
	best, bestN := -1, 0
	for i, j := 0, 0; i < len(s); i++ {
		for j < len(s) && s[j].skew-s[i].skew <= spread {
			j++
		}
		if n := j - i; n >= bestN && n >= clockAgree && span(s[i:j]) >= spread {
			best, bestN = i, n
		}
	}
	if best < 0 {
		return // keep what was known: a burst of backlog does not unlearn it
	}
	group := s[best : best+bestN]
	c.clock = Clock{Offset: time.Duration(group[len(group)/2].skew) * time.Millisecond, Known: true}
}

// span is the time over which samples were received, in milliseconds.
func span(s []clockSample) int64 {
	lo, hi := s[0].at, s[0].at
	for _, x := range s[1:] {
		lo, hi = min(lo, x.at), max(hi, x.at)
	}
	return hi - lo
}
