// Package writable tells whether a durable store can write: a store can
// answer every ping and still fail every write, when its disk is full or
// failing, and a server that cannot record a call must not say it is
// ready to take one.
//
// Latch is set by a write that failed for such a reason and cleared only
// by a probe: a write of a fixed size that proves there is room (the
// store decides what), run by Check at most once every few seconds while
// the latch is set. Not by the next write that succeeds: on a full disk a
// small write into a page with room succeeds while the next call does
// not, and readiness would flap with the traffic; and with readiness down
// the traffic that would clear it may never come.
package writable
