package geo

import (
	"math"
	"slices"
	"sync"

	"github.com/paulmach/orb"
)

// DefaultCellMetres is the cell size NewGrid uses when given a size that is
// not positive, and the one an adaptive Grid starts with. It suits a
// county's fleet of tens to hundreds of units; larger fleets want smaller
// cells, which NewAdaptiveGrid chooses by itself (docs/BENCHMARKS.md).
const DefaultCellMetres = 2000

// minCellMetres keeps cell indices well inside int32 range.
const minCellMetres = 10

// An adaptive Grid (NewAdaptiveGrid) sizes its cells to its items: it
// starts with DefaultCellMetres cells and, from adaptMinItems items on,
// re-grids whenever the number of items has grown or shrunk fourfold since
// the last time, to cells of adaptCellFactor times the square root of the
// area per item, clamped to [adaptMinCell, adaptMaxCell] metres. The area
// is that of the box holding the central 90% of the items in latitude and
// in longitude, so that a few units far away do not count. The factor
// comes from BenchmarkNearest (docs/BENCHMARKS.md): fleets gather in towns,
// so the best cell is smaller than the average spacing.
const (
	adaptMinItems   = 64
	adaptCellFactor = 0.5
	adaptMinCell    = 50
	adaptMaxCell    = 20_000
)

// Grid is the Index for real use: a uniform grid of square cells in
// latitude and longitude, each cell a bucket of items, kept in a map keyed by
// the cell's integer coordinates. A query visits rings of cells outward from
// the center's cell and reports a candidate only once no unvisited cell can
// hold a nearer item, so its order is exact, the same as Scan's. It stops as
// soon as the rings are farther than the radius or cover every occupied
// cell, and when a ring would have more cells than are occupied it sweeps
// the occupied cells instead, so sparse data and huge radii stay cheap.
//
// The best cell holds an item or two where the queries are: with cells too
// large a query measures many items, with cells too small it probes many
// empty cells. NewGrid fixes the size; NewAdaptiveGrid follows the items.
//
// Cells are square in degrees, so they are narrower than tall in metres
// away from the equator; that costs a little speed, never correctness.
// Cell coordinates do not wrap around the antimeridian, but the search
// allows for it, so results stay exact there too, only slower to find.
//
// A Grid is safe for concurrent use. Nearby releases its read lock while fn
// runs; if the Grid changes meanwhile, the query resumes after the last hit
// it reported, so the order holds and no item is reported twice, but an item
// that moved may be missed or seen at its new position.
type Grid struct {
	pool     sync.Pool
	adaptive bool

	mu      sync.RWMutex
	deg     float64 // cell side in degrees, on both axes
	items   map[string]slot
	cells   map[uint64][]entry
	placed  int    // items in cells: those with a valid point
	gridded int    // placed when the adaptive Grid last chose its cells
	version uint64 // incremented by every change

	// x0, x1, y0, y1 bound the cells ever occupied since the Grid was last
	// empty. They only grow, which is safe: they limit where to look.
	x0, x1, y0, y1 int
}

var _ Index = (*Grid)(nil)

// entry is an item in a cell.
type entry struct {
	id  string
	p   orb.Point
	cos float64 // cosLat(p), cached for haversine
}

// slot locates an item: its point, its cell and its index in the cell, or
// index -1 for an invalid point, which is in no cell.
type slot struct {
	p   orb.Point
	key uint64
	i   int
}

// NewGrid returns an empty Grid with cells of cellMetres a side, measured
// along a meridian; 2000 suits a county of ambulances. A size that is not
// positive means DefaultCellMetres; sizes below 10 m are raised to 10 m.
func NewGrid(cellMetres float64) *Grid {
	if !(cellMetres > 0) {
		cellMetres = DefaultCellMetres
	}
	cellMetres = max(cellMetres, minCellMetres)
	return &Grid{
		deg:   cellMetres / (EarthRadius * radians),
		items: make(map[string]slot),
		cells: make(map[uint64][]entry),
	}
}

// NewAdaptiveGrid returns an empty Grid that chooses its cell size from its
// items, and chooses again as their number grows or shrinks fourfold, so
// that a query costs about the same from a county's twenty ambulances to a
// city's hundred thousand vehicles. Choosing again moves every item, once
// per fourfold change: amortised, a few moves per Set.
func NewAdaptiveGrid() *Grid {
	g := NewGrid(DefaultCellMetres)
	g.adaptive = true
	return g
}

// CellMetres returns the side of the Grid's cells in metres, along a
// meridian.
func (g *Grid) CellMetres() float64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.deg * EarthRadius * radians
}

// cell returns the integer coordinates of the cell holding the valid point p.
func (g *Grid) cell(p orb.Point) (x, y int) {
	return int(math.Floor(p[0] / g.deg)), int(math.Floor(p[1] / g.deg))
}

// cellKey packs cell coordinates into a map key.
func cellKey(x, y int) uint64 {
	return uint64(uint32(int32(x)))<<32 | uint64(uint32(int32(y)))
}

// Set inserts the item id at p, or moves it there.
func (g *Grid) Set(id string, p orb.Point) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.version++
	old, ok := g.items[id]
	if !validPoint(p) {
		if ok {
			g.unlink(old)
		}
		g.items[id] = slot{p: p, i: -1}
		return
	}
	x, y := g.cell(p)
	key := cellKey(x, y)
	if ok && old.i >= 0 && old.key == key {
		g.cells[key][old.i] = entry{id: id, p: p, cos: cosLat(p)}
		g.items[id] = slot{p: p, key: key, i: old.i}
		return
	}
	if ok {
		g.unlink(old)
	}
	g.link(id, p)
	g.adapt()
}

// link puts the item id, at the valid point p, into its cell.
func (g *Grid) link(id string, p orb.Point) {
	x, y := g.cell(p)
	key := cellKey(x, y)
	if len(g.cells) == 0 {
		g.x0, g.x1, g.y0, g.y1 = x, x, y, y
	} else {
		g.x0, g.x1 = min(g.x0, x), max(g.x1, x)
		g.y0, g.y1 = min(g.y0, y), max(g.y1, y)
	}
	c := g.cells[key]
	g.items[id] = slot{p: p, key: key, i: len(c)}
	g.cells[key] = append(c, entry{id: id, p: p, cos: cosLat(p)})
	g.placed++
}

// adapt chooses the cells of an adaptive Grid again when the number of
// items calls for it. The caller holds the write lock.
func (g *Grid) adapt() {
	n := g.placed
	if !g.adaptive || n < adaptMinItems || (n < 4*g.gridded && 4*n > g.gridded) {
		return
	}
	g.gridded = n
	lons, lats := make([]float64, 0, n), make([]float64, 0, n)
	for _, c := range g.cells {
		for _, e := range c {
			lons, lats = append(lons, e.p[0]), append(lats, e.p[1])
		}
	}
	slices.Sort(lons)
	slices.Sort(lats)
	lo, hi := n/20, n-1-n/20
	height := (lats[hi] - lats[lo]) * radians * EarthRadius
	width := (lons[hi] - lons[lo]) * radians * EarthRadius * math.Cos((lats[hi]+lats[lo])/2*radians)
	area := max(height, 1) * max(width, 1)
	cell := adaptCellFactor * math.Sqrt(area*0.81/float64(n))
	cell = min(max(cell, adaptMinCell), adaptMaxCell)
	if ratio := cell / (g.deg * EarthRadius * radians); ratio > 0.7 && ratio < 1.4 {
		return // near enough: not worth moving every item
	}
	g.deg = cell / (EarthRadius * radians)
	g.version++
	clear(g.cells)
	g.placed = 0
	for id, s := range g.items {
		if s.i >= 0 {
			g.link(id, s.p)
		}
	}
}

// unlink takes the item in slot s out of its cell, if it is in one. The
// caller updates or deletes the item's slot.
func (g *Grid) unlink(s slot) {
	if s.i < 0 {
		return
	}
	c := g.cells[s.key]
	last := len(c) - 1
	if s.i != last {
		c[s.i] = c[last]
		moved := g.items[c[s.i].id]
		moved.i = s.i
		g.items[c[s.i].id] = moved
	}
	c[last] = entry{}
	g.placed--
	if last == 0 {
		delete(g.cells, s.key)
	} else {
		g.cells[s.key] = c[:last]
	}
}

// Delete removes the item id, if present.
func (g *Grid) Delete(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.items[id]
	if !ok {
		return
	}
	g.version++
	g.unlink(s)
	delete(g.items, id)
	g.adapt()
}

// Get returns the position of the item id and whether it is present.
func (g *Grid) Get(id string) (orb.Point, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	s, ok := g.items[id]
	return s.p, ok
}

// Len returns the number of items.
func (g *Grid) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.items)
}

// Nearby calls fn for every item within radius metres of center, nearest
// first with ties broken by ID, until fn returns false.
func (g *Grid) Nearby(center orb.Point, radius float64, fn func(Hit) bool) {
	if !validPoint(center) || !(radius >= 0) {
		return
	}
	s, _ := g.pool.Get().(*search)
	if s == nil {
		s = new(search)
	}
	defer func() {
		s.end()
		g.pool.Put(s)
	}()
	s.begin(center, radius)
	for !s.finished {
		g.mu.RLock()
		s.batch = g.advance(s, s.batch[:0])
		g.mu.RUnlock()
		for _, h := range s.batch {
			if !fn(h) {
				return
			}
		}
	}
}

// search is the state of one Nearby query between batches. Searches are
// pooled, so their slices are reused.
type search struct {
	center    orb.Point
	cos       float64 // cosLat(center)
	radius    float64
	started   bool
	exhausted bool    // every cell that may hold a hit has been visited
	finished  bool    // everything has been reported
	safe      float64 // candidates nearer than this are certain
	limit     int     // most hits to report in the next batch
	version   uint64  // Grid.version the state below reflects

	cx, cy         int // the center's cell
	x0, x1, y0, y1 int // cells that may hold a hit: occupied and near enough
	ring, lastRing int // next ring to visit; rings after lastRing are empty

	cands []Hit // candidates found
	heap  []ref // the candidates not yet reported, nearest on top
	batch []Hit // hits ready to report

	// What has been reported: after a restart, the search skips hits up to
	// last, and the IDs in seen, which is nil until then.
	emitted []string
	last    Hit
	seen    map[string]struct{}
}

func (s *search) begin(center orb.Point, radius float64) {
	*s = search{
		center:  center,
		cos:     cosLat(center),
		radius:  radius,
		cands:   s.cands[:0],
		heap:    s.heap[:0],
		batch:   s.batch[:0],
		emitted: s.emitted[:0],
		limit:   8,
	}
}

// end drops references to items so the pool does not keep them alive.
func (s *search) end() {
	clear(s.cands)
	clear(s.batch)
	clear(s.emitted)
	s.seen = nil
}

// advance reports the next hits: it pops candidates nearer than every
// unvisited cell, visiting rings until there are some or nothing is left,
// and appends them to batch in order, at most s.limit of them so that a
// query that stops early does not sort what it never reads. It sets
// s.finished when there is nothing more to report. The caller holds the read
// lock.
func (g *Grid) advance(s *search, batch []Hit) []Hit {
	if s.started && s.version != g.version {
		g.restart(s)
	}
	if !s.started {
		s.started = true
		s.safe = math.Inf(-1)
		s.exhausted = !g.plan(s)
	}
	s.version = g.version
	for {
		for len(s.heap) > 0 && s.heap[0].d < s.safe && len(batch) < s.limit {
			h := s.pop()
			batch = append(batch, h)
			s.emitted = append(s.emitted, h.ID)
			s.last = h
		}
		if len(batch) > 0 {
			s.limit = min(2*s.limit, 1024)
			return batch
		}
		if s.exhausted {
			s.finished = true
			return batch
		}
		bound := g.step(s)
		// Candidates strictly nearer than every unvisited cell, with a
		// millimetre to spare for rounding in the bound, are certain.
		s.safe = bound*(1-1e-9) - 1e-3
		// The heap holds only hits within the radius, so once the bound is
		// past the radius, nothing unvisited can be a hit.
		if math.IsInf(bound, 1) || s.safe > s.radius {
			s.exhausted = true
			s.safe = math.Inf(1)
		}
	}
}

// restart starts the search over on the changed Grid, skipping everything
// reported so far.
func (g *Grid) restart(s *search) {
	clear(s.cands)
	s.cands = s.cands[:0]
	s.heap = s.heap[:0]
	s.started = false
	if len(s.emitted) == 0 {
		return
	}
	if s.seen == nil {
		s.seen = make(map[string]struct{}, len(s.emitted))
	}
	for _, id := range s.emitted {
		s.seen[id] = struct{}{}
	}
}

// plan sets the center's cell and the rectangle of cells that can hold a
// hit, and reports whether that rectangle is non-empty.
func (g *Grid) plan(s *search) bool {
	if len(g.cells) == 0 {
		return false
	}
	s.cx, s.cy = g.cell(s.center)
	s.x0, s.x1, s.y0, s.y1 = g.x0, g.x1, g.y0, g.y1

	// Clip to the cells within the radius, with a cell to spare on each side.
	lon, lat := s.center[0], s.center[1]
	r := s.radius / EarthRadius // radians
	if r < math.Pi/2 {
		dLat := r / radians
		s.y0 = max(s.y0, int(math.Floor(max(lat-dLat, -90)/g.deg))-1)
		s.y1 = min(s.y1, int(math.Floor(min(lat+dLat, 90)/g.deg))+1)
		if lat+dLat < 90 && lat-dLat > -90 {
			// The widest longitude span of a circle that misses the poles,
			// unless it wraps around the antimeridian.
			dLon := math.Asin(math.Sin(r)/s.cos) / radians
			if lon-dLon >= -180 && lon+dLon <= 180 {
				s.x0 = max(s.x0, int(math.Floor((lon-dLon)/g.deg))-1)
				s.x1 = min(s.x1, int(math.Floor((lon+dLon)/g.deg))+1)
			}
		}
	}
	if s.x0 > s.x1 || s.y0 > s.y1 {
		return false
	}
	// Rings before the first to touch the rectangle are empty, and so are
	// rings after the first to enclose it.
	s.ring = max(0, s.x0-s.cx, s.cx-s.x1, s.y0-s.cy, s.cy-s.y1)
	s.lastRing = max(s.cx-s.x0, s.x1-s.cx, s.cy-s.y0, s.y1-s.cy)
	return true
}

// step visits the next ring, pushing its hits onto the heap, and returns a
// lower bound in metres on the distance of any hit not yet visited: +Inf
// once every cell that may hold one has been visited.
func (g *Grid) step(s *search) float64 {
	k := s.ring
	if k > s.lastRing {
		return math.Inf(1)
	}
	s.ring++
	spans := s.ringSpans(k)
	n := 0
	for _, sp := range spans {
		n += sp.cells()
	}
	if n > len(g.cells) {
		// Cheaper to sweep the occupied cells than to probe this ring.
		for key, c := range g.cells {
			x, y := int(int32(key>>32)), int(int32(uint32(key)))
			if max(abs(x-s.cx), abs(y-s.cy)) >= k &&
				x >= s.x0 && x <= s.x1 && y >= s.y0 && y <= s.y1 {
				s.visit(c)
			}
		}
		s.ring = s.lastRing + 1
		return math.Inf(1)
	}
	for _, sp := range spans {
		for y := sp.y0; y <= sp.y1; y++ {
			for x := sp.x0; x <= sp.x1; x++ {
				s.visit(g.cells[cellKey(x, y)])
			}
		}
	}
	return s.bound(g.deg, k)
}

// span is a rectangle of cells, x0 to x1 by y0 to y1 inclusive, empty if
// either range is.
type span struct{ x0, x1, y0, y1 int }

func (sp span) cells() int {
	return max(0, sp.x1-sp.x0+1) * max(0, sp.y1-sp.y0+1)
}

// ringSpans returns ring k, the cells k steps from the center's cell in x
// or y, clipped to the rectangle: its bottom and top rows and its left and
// right columns between them.
func (s *search) ringSpans(k int) [4]span {
	clip := func(x0, x1, y0, y1 int) span {
		return span{max(x0, s.x0), min(x1, s.x1), max(y0, s.y0), min(y1, s.y1)}
	}
	spans := [4]span{
		clip(s.cx-k, s.cx+k, s.cy-k, s.cy-k),
		clip(s.cx-k, s.cx+k, s.cy+k, s.cy+k),
		clip(s.cx-k, s.cx-k, s.cy-k+1, s.cy+k-1),
		clip(s.cx+k, s.cx+k, s.cy-k+1, s.cy+k-1),
	}
	if k == 0 {
		spans[1] = span{0, -1, 0, -1} // the top row is the bottom row
	}
	return spans
}

// bound returns a lower bound in metres on the distance from the center to
// any point in the rectangle outside the square of rings 0 to k.
func (s *search) bound(deg float64, k int) float64 {
	lon, lat := s.center[0], s.center[1]
	b := math.Inf(1)
	// A point of another latitude is at least the meridian arc away.
	if s.cy-k > s.y0 {
		b = min(b, (lat-float64(s.cy-k)*deg)*radians*EarthRadius)
	}
	if s.cy+k < s.y1 {
		b = min(b, (float64(s.cy+k+1)*deg-lat)*radians*EarthRadius)
	}
	// A point dLon or more away in longitude is at least as far as the
	// meridian dLon away: asin(cos(lat) sin(dLon)), or the pole beyond 90°.
	// Going the other way round, past the antimeridian, the gap on either
	// side is at most 180° minus the center's distance from it.
	gap := math.Inf(1)
	if s.cx-k > s.x0 {
		gap = min(lon-float64(s.cx-k)*deg, 180-lon)
	}
	if s.cx+k < s.x1 {
		gap = min(gap, float64(s.cx+k+1)*deg-lon, 180+lon)
	}
	switch {
	case math.IsInf(gap, 1):
	case gap >= 90:
		b = min(b, (90-math.Abs(lat))*radians*EarthRadius)
	default:
		b = min(b, math.Asin(min(1, s.cos*math.Sin(gap*radians)))*EarthRadius)
	}
	return max(b, 0)
}

// visit pushes the hits among a cell's entries onto the heap.
func (s *search) visit(c []entry) {
	for i := range c {
		e := &c[i]
		d := haversine(s.center, e.p, s.cos, e.cos)
		if !(d <= s.radius) {
			continue
		}
		h := Hit{ID: e.id, Point: e.p, Distance: d}
		if s.seen != nil {
			if compareHits(h, s.last) <= 0 {
				continue
			}
			if _, ok := s.seen[h.ID]; ok {
				continue
			}
		}
		s.push(h)
	}
}

// ref is a heap entry: a candidate's distance and its index in s.cands,
// small so that the heap moves little memory.
type ref struct {
	d float64
	i int
}

// less orders refs as compareHits orders their hits.
func (s *search) less(a, b ref) bool {
	if a.d != b.d {
		return a.d < b.d
	}
	return s.cands[a.i].ID < s.cands[b.i].ID
}

// push and pop keep s.heap a binary min-heap of s.cands.
func (s *search) push(h Hit) {
	s.cands = append(s.cands, h)
	s.heap = append(s.heap, ref{d: h.Distance, i: len(s.cands) - 1})
	i := len(s.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(s.heap[i], s.heap[p]) {
			break
		}
		s.heap[i], s.heap[p] = s.heap[p], s.heap[i]
		i = p
	}
}

func (s *search) pop() Hit {
	h := s.cands[s.heap[0].i]
	n := len(s.heap) - 1
	s.heap[0] = s.heap[n]
	s.heap = s.heap[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s.less(s.heap[l], s.heap[m]) {
			m = l
		}
		if r := l + 1; r < n && s.less(s.heap[r], s.heap[m]) {
			m = r
		}
		if m == i {
			break
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
	return h
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
