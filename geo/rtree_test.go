package geo

import (
	"math"
	"sync"

	"github.com/paulmach/orb"
	"github.com/tidwall/rtree"
)

// rtreeIndex is an Index on tidwall/rtree, the R-tree Tile38 uses. It
// lives in the tests: BenchmarkNearest measures the Grid against it, and
// the property tests hold it to the Scan's answers like the Grid, so that
// the comparison is between exact answers. Items are points in longitude
// and latitude; a query walks the tree best first, ordering nodes by a
// lower bound on the great-circle distance to anything inside them, so it
// needs no cell size.
//
// Nearby collects hits in batches under the read lock and releases it
// while fn runs; a batch after the first searches again and skips what was
// reported, so if the index changes meanwhile the order holds and no item
// is reported twice, as with Grid.
type rtreeIndex struct {
	pool sync.Pool

	mu      sync.RWMutex
	tree    rtree.RTreeGN[float64, *rtreeItem]
	items   map[string]*rtreeItem
	version uint64 // incremented by every change
}

var _ Index = (*rtreeIndex)(nil)

// rtreeItem is an item: in the tree when its point is valid. Its fields
// change only under the write lock, and only while it is out of the tree.
type rtreeItem struct {
	id  string
	p   orb.Point
	cos float64 // cosLat(p), cached for haversine
}

// newRTree returns an empty rtreeIndex.
func newRTree() *rtreeIndex {
	return &rtreeIndex{items: make(map[string]*rtreeItem)}
}

// Set inserts the item id at p, or moves it there.
func (t *rtreeIndex) Set(id string, p orb.Point) {
	t.mu.Lock()
	defer t.mu.Unlock()
	it, ok := t.items[id]
	if ok && it.p == p {
		return
	}
	t.version++
	if !ok {
		it = &rtreeItem{id: id}
		t.items[id] = it
	} else if validPoint(it.p) {
		t.tree.Delete(it.p, it.p, it)
	}
	it.p, it.cos = p, cosLat(p)
	if validPoint(p) {
		t.tree.Insert(p, p, it)
	}
}

// Delete removes the item id, if present.
func (t *rtreeIndex) Delete(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	it, ok := t.items[id]
	if !ok {
		return
	}
	t.version++
	if validPoint(it.p) {
		t.tree.Delete(it.p, it.p, it)
	}
	delete(t.items, id)
}

// Get returns the position of the item id and whether it is present.
func (t *rtreeIndex) Get(id string) (orb.Point, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if it, ok := t.items[id]; ok {
		return it.p, true
	}
	return orb.Point{}, false
}

// Len returns the number of items.
func (t *rtreeIndex) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.items)
}

// Nearby calls fn for every item within radius metres of center, nearest
// first with ties broken by ID, until fn returns false.
func (t *rtreeIndex) Nearby(center orb.Point, radius float64, fn func(Hit) bool) {
	if !validPoint(center) || !(radius >= 0) {
		return
	}
	q, _ := t.pool.Get().(*rtreeQuery)
	if q == nil {
		q = new(rtreeQuery)
		q.dist, q.iter = q.bound, q.take
	}
	defer func() {
		q.end()
		t.pool.Put(q)
	}()
	q.begin(center, radius)
	for {
		q.batch = q.batch[:0]
		q.more = false
		t.mu.RLock()
		if q.reported && q.version != t.version && q.seen == nil {
			q.seen = make(map[string]struct{}, len(q.emitted))
			for _, id := range q.emitted {
				q.seen[id] = struct{}{}
			}
		}
		q.version = t.version
		q.search(&t.tree)
		t.mu.RUnlock()
		for _, h := range q.batch {
			if !fn(h) {
				return
			}
			q.reported, q.last = true, h
			if q.seen != nil {
				q.seen[h.ID] = struct{}{}
			} else {
				q.emitted = append(q.emitted, h.ID)
			}
		}
		if !q.more {
			return
		}
		q.limit = min(2*q.limit, 1024)
	}
}

// rtreeQuery is the state of one Nearby query. Queries are pooled, and
// their callbacks are bound once, so that a query allocates nothing.
//
// The tree orders nodes and items alike by a cheap lower bound on their
// distance (lowerBound); an item's exact distance is computed only when the
// tree hands it over, and it waits in pending until the bound has passed
// it, when nothing nearer can still come.
type rtreeQuery struct {
	center orb.Point
	cos    float64 // cosLat(center)
	radius float64
	limit  int // hits to collect before the batch may end

	dist func(min, max [2]float64, it *rtreeItem, item bool) float64
	iter func(min, max [2]float64, it *rtreeItem, d float64) bool

	pending []Hit // items taken from the tree, a min-heap by compareHits
	batch   []Hit // hits ready to report, in order
	more    bool  // the batch ended before the search did
	stopped bool  // the batch ended before the tree did

	// What has been reported: a later batch skips hits up to last, and,
	// once the tree has changed, the IDs in seen, which is nil until then.
	reported bool
	last     Hit
	version  uint64 // rtreeIndex.version at the last batch
	emitted  []string
	seen     map[string]struct{}
}

func (q *rtreeQuery) begin(center orb.Point, radius float64) {
	q.center, q.cos, q.radius = center, cosLat(center), radius
	q.limit = 8
	q.reported = false
	q.batch, q.emitted = q.batch[:0], q.emitted[:0]
}

// end drops references to items so the pool does not keep them alive.
func (q *rtreeQuery) end() {
	clear(q.batch)
	clear(q.emitted)
	clear(q.pending[:cap(q.pending)])
	q.last, q.seen = Hit{}, nil
}

// search runs one batch on the tree: it fills q.batch and sets q.more. The
// caller holds the read lock.
func (q *rtreeQuery) search(tree *rtree.RTreeGN[float64, *rtreeItem]) {
	q.batch, q.pending, q.more, q.stopped = q.batch[:0], q.pending[:0], false, false
	tree.Nearby(q.dist, q.iter)
	if !q.stopped {
		q.release(math.Inf(1))
	}
}

// take is the tree's callback: it is handed items in increasing lower
// bound.
func (q *rtreeQuery) take(_, _ [2]float64, it *rtreeItem, bound float64) bool {
	if !q.release(bound) {
		q.stopped = true
		return false
	}
	q.push(Hit{ID: it.id, Point: it.p, Distance: haversine(q.center, it.p, q.cos, it.cos)})
	return true
}

// release moves the pending hits nearer than bound, which no item still in
// the tree can be nearer than, to the batch. It reports false when the
// search is over: the batch is full or bound is past the radius.
func (q *rtreeQuery) release(bound float64) bool {
	for len(q.pending) > 0 && q.pending[0].Distance < bound {
		h := q.pop()
		if !(h.Distance <= q.radius) {
			return false
		}
		if q.reported {
			if compareHits(h, q.last) <= 0 {
				continue
			}
			if _, ok := q.seen[h.ID]; ok {
				continue
			}
		}
		if n := len(q.batch); n >= q.limit && h.Distance > q.batch[n-1].Distance {
			q.more = true
			return false
		}
		q.batch = append(q.batch, h)
	}
	return bound <= q.radius
}

// push and pop keep q.pending a binary min-heap.
func (q *rtreeQuery) push(h Hit) {
	q.pending = append(q.pending, h)
	hs := q.pending
	for i := len(hs) - 1; i > 0; {
		p := (i - 1) / 2
		if compareHits(hs[i], hs[p]) >= 0 {
			break
		}
		hs[i], hs[p] = hs[p], hs[i]
		i = p
	}
}

func (q *rtreeQuery) pop() Hit {
	hs := q.pending
	h := hs[0]
	n := len(hs) - 1
	hs[0] = hs[n]
	hs = hs[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && compareHits(hs[l], hs[m]) < 0 {
			m = l
		}
		if r := l + 1; r < n && compareHits(hs[r], hs[m]) < 0 {
			m = r
		}
		if m == i {
			break
		}
		hs[i], hs[m] = hs[m], hs[i]
		i = m
	}
	q.pending = hs
	return h
}

// bound is the tree's ordering for nodes and items alike.
func (q *rtreeQuery) bound(lo, hi [2]float64, _ *rtreeItem, _ bool) float64 {
	return q.lowerBound(lo, hi)
}

// lowerBound returns a lower bound in metres on the distance from the
// center to any point with longitude in [lo[0], hi[0]] and latitude in
// [lo[1], hi[1]], cheap enough to compute for every item the tree looks
// at. By the haversine formula, hav(d/R) = hav(dLat) + cos(lat1) cos(lat2)
// hav(dLon); with dLat and dLon at least the gaps to the rectangle, cos(lat2)
// at least the cosine of its latitude farthest from the equator, itself at
// least cos(lat1) less the latitude between them, and x/2 (1 - x²/24) <=
// sin(x/2) <= x/2, d/R is at least the square root of dLat² (1 - dLat²/24)²
// + cos(lat1) cos(lat2) dLon² (1 - dLon²/24)². The bound is lowered by a
// margin for rounding, so that the tree never hands over an item after one
// farther away.
func (q *rtreeQuery) lowerBound(lo, hi [2]float64) float64 {
	lon, lat := q.center[0], q.center[1]
	var dLat float64
	if lat < lo[1] {
		dLat = (lo[1] - lat) * radians
	} else if lat > hi[1] {
		dLat = (lat - hi[1]) * radians
	}
	var dLon float64
	if lon < lo[0] || lon > hi[0] {
		dLon = min(lonGap(lon, lo[0]), lonGap(lon, hi[0])) * radians
	}
	if dLat == 0 && dLon == 0 {
		return 0
	}
	// cos is 1-Lipschitz and falls away from the equator.
	cosFar := q.cos
	if far := max(math.Abs(lo[1]), math.Abs(hi[1])); far > math.Abs(lat) {
		cosFar = max(0, q.cos-(far-math.Abs(lat))*radians)
	}
	a := dLat * (1 - dLat*dLat/24)
	b := dLon * (1 - dLon*dLon/24)
	d := math.Sqrt(a*a+q.cos*cosFar*b*b) * EarthRadius
	return max(0, d*(1-1e-9)-1e-3)
}

// lonGap returns the angle in degrees between two longitudes, the short
// way round.
func lonGap(a, b float64) float64 {
	d := math.Abs(a - b)
	if d > 180 {
		d = 360 - d
	}
	return d
}
