package dispatch

import (
	"sync"
	"time"
)

// Session cache defaults: a validated session is trusted from memory for
// a few seconds, so that an API call does not read the session and its
// user from the record each time. What ends sessions on this server (a
// sign-out, a password reset, disabling, a role change) forgets them at
// once, and, through the event bus, on the servers that share it; only
// a change made beside every server (lifelined admin reset-password with
// no bus) waits out the TTL.
const (
	defaultSessionCacheTTL = 5 * time.Second
	maxCachedSessions      = 10000
)

// SessionMarker is implemented by a Users record that another process
// may change beside the server (the embedded store, which lifelined
// admin opens on the same data directory): SessionMark changes whenever
// any process deletes a session or updates a user, and costs far less
// than a read of the record. Access then remembers a session only while the mark
// stands, so that such a change is effective at once, not after the TTL.
type SessionMarker interface {
	SessionMark() uint64
}

// principals is the memory of sessions found valid a moment ago: the
// principal of each, by token hash, until its TTL or the session's own
// expiry, whichever comes first.
//
// A read of the record that began before an invalidation must not put
// back what the invalidation forgot: every invalidation moves epoch on,
// and put keeps an entry only when epoch has not moved since the read
// began.
type principals struct {
	ttl  time.Duration // <= 0: nothing is kept
	mark func() uint64 // the record's SessionMark; nil when it has none

	mu      sync.RWMutex
	epoch   uint64
	entries map[string]cachedSession
}

// cachedSession is one remembered session.
type cachedSession struct {
	p       Principal
	expires time.Time // the session's own expiry
	until   time.Time // when the record must be read again
	mark    uint64    // the record's mark before it was read
}

// stamp is when a read of the record began: the epoch and the mark.
type stamp struct{ epoch, mark uint64 }

func newPrincipals(ttl time.Duration, users Users) *principals {
	c := &principals{ttl: ttl, entries: map[string]cachedSession{}}
	if m, ok := users.(SessionMarker); ok {
		c.mark = m.SessionMark
	}
	return c
}

func (c *principals) marked() uint64 {
	if c.mark == nil {
		return 0
	}
	return c.mark()
}

// get returns the principal of session hash when it is remembered,
// neither its TTL nor the session has run out at now, and the record's
// mark has not moved since.
func (c *principals) get(hash string, now time.Time) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[hash]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) || !now.Before(e.expires) || e.mark != c.marked() {
		return Principal{}, false
	}
	return e.p, true
}

// begin returns the stamp to hand to put after reading the record.
func (c *principals) begin() stamp {
	c.mu.RLock()
	epoch := c.epoch
	c.mu.RUnlock()
	return stamp{epoch: epoch, mark: c.marked()}
}

// put remembers that session hash of p, expiring at expires, was valid
// at now, unless an invalidation came since the read began at st.
func (c *principals) put(hash string, p Principal, expires, now time.Time, st stamp) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != st.epoch {
		return
	}
	if _, ok := c.entries[hash]; !ok && len(c.entries) >= maxCachedSessions {
		c.evict(now)
	}
	c.entries[hash] = cachedSession{p: p, expires: expires, until: now.Add(c.ttl), mark: st.mark}
}

// evict makes room: the entries past their TTL go, or else any one.
// The caller holds mu.
func (c *principals) evict(now time.Time) {
	for h, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, h)
		}
	}
	for h := range c.entries {
		if len(c.entries) < maxCachedSessions {
			return
		}
		delete(c.entries, h)
	}
}

// forget drops the sessions that s ended.
func (c *principals) forget(s SessionsEnded) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if s.TokenHash != "" {
		delete(c.entries, s.TokenHash)
		return
	}
	for h, e := range c.entries {
		if e.p.Name == s.Username {
			delete(c.entries, h)
		}
	}
}

// drop forgets session hash, whatever ended it.
func (c *principals) drop(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	delete(c.entries, hash)
}

// clear forgets every session: what ended while nobody listened is unknown.
func (c *principals) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
}
