package dispatchtest

import (
	"sync"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Square is the polygon of a square of half-side half degrees around c.
func Square(c orb.Point, half float64) orb.Polygon {
	return orb.Polygon{{
		{c[0] - half, c[1] - half}, {c[0] + half, c[1] - half},
		{c[0] + half, c[1] + half}, {c[0] - half, c[1] + half}, {c[0] - half, c[1] - half},
	}}
}

// Region makes a geo.Region of p, failing the test if it cannot.
func Region(tb testing.TB, id string, p orb.Polygon) *geo.Region {
	tb.Helper()
	r, err := geo.NewRegion(id, id, p)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// Clock is a clock a test moves by hand; it is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
