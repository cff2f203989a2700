package dispatch

import "github.com/paulmach/orb"

// CoverCell is a coverage cell as tests see it.
type CoverCell struct {
	Centre       orb.Point
	Radius       float64
	Jurisdiction string
	N            int // available units covering it
}

// CellsForTest returns every cell of c.
func (c *Coverage) CellsForTest() []CoverCell {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CoverCell, len(c.jur))
	for i := range c.jur {
		out[i] = CoverCell{Centre: orb.Point{c.lon[i], c.lat[i]}, Radius: c.radius[i], Jurisdiction: c.jurs[c.jur[i]], N: int(c.n[i])}
	}
	return out
}

// SquaresForTest calls fn with the centre of every grid square and
// whether it holds a cell.
func (c *Coverage) SquaresForTest(fn func(centre orb.Point, cell bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sq, cell := range c.square {
		fn(orb.Point{c.lon0 + (float64(sq%c.nx)+0.5)*c.dLon, c.lat0 + (float64(sq/c.nx)+0.5)*c.dLat}, cell >= 0)
	}
}

// AnchorsForTest returns where each counted unit is counted.
func (c *Coverage) AnchorsForTest() map[string]orb.Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]orb.Point{}
	for id, u := range c.units {
		if u.on {
			out[id] = u.at
		}
	}
	return out
}
