package geo

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/paulmach/orb"
)

// Hit is an item found by a nearby query: its ID, its position and its
// great-circle distance from the query's center in metres.
type Hit struct {
	ID       string
	Point    orb.Point
	Distance float64
}

// compareHits orders hits by distance, then by ID, so that results are
// deterministic even when two items are equally far away.
func compareHits(a, b Hit) int {
	if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Index holds the positions of items, such as units, by ID and finds those
// near a point. Implementations are safe for concurrent use.
//
// Points that fail ValidLatLon are stored, so Get and Len see them, but no
// query ever reports them.
type Index interface {
	// Set inserts the item id at p, or moves it there.
	Set(id string, p orb.Point)
	// Delete removes the item id, if present.
	Delete(id string)
	// Get returns the position of the item id and whether it is present.
	Get(id string) (orb.Point, bool)
	// Len returns the number of items.
	Len() int
	// Nearby calls fn for every item within radius metres of center, in
	// increasing distance and then increasing ID, until fn returns false.
	// Nearby holds no lock while fn runs, so fn may use the index.
	Nearby(center orb.Point, radius float64, fn func(Hit) bool)
}

// Nearest returns, nearest first, the first k items within radius metres of
// center that keep accepts. A nil keep accepts every item; k <= 0 means no
// limit.
func Nearest(ix Index, center orb.Point, radius float64, k int, keep func(id string) bool) []Hit {
	var out []Hit
	if k > 0 && k <= 64 {
		out = make([]Hit, 0, k)
	}
	return AppendNearest(out, ix, center, radius, k, keep)
}

// AppendNearest is Nearest appending to dst, so that a caller who reuses
// dst queries without allocating.
func AppendNearest(dst []Hit, ix Index, center orb.Point, radius float64, k int, keep func(id string) bool) []Hit {
	c := collectors.Get().(*collector)
	c.out, c.want, c.keep = dst, len(dst)+k, keep
	if k <= 0 {
		c.want = -1
	}
	ix.Nearby(center, radius, c.fn)
	out := c.out
	c.out, c.keep = nil, nil
	collectors.Put(c)
	return out
}

// collector gathers Nearest's hits. Collectors are pooled with their
// callback bound, so that passing it to an Index allocates nothing.
type collector struct {
	out  []Hit
	want int // len(out) to stop at, or -1 for no limit
	keep func(id string) bool
	fn   func(Hit) bool
}

var collectors = sync.Pool{New: func() any {
	c := new(collector)
	c.fn = c.add
	return c
}}

func (c *collector) add(h Hit) bool {
	if c.keep == nil || c.keep(h.ID) {
		c.out = append(c.out, h)
	}
	return c.want < 0 || len(c.out) < c.want
}

// Scan is the brute-force Index: a map that every query scans in full and
// then sorts. It is the baseline the Grid is tested and measured against,
// and for a handful of items it is as fast. It is safe for concurrent use.
type Scan struct {
	mu    sync.RWMutex
	items map[string]orb.Point
}

var _ Index = (*Scan)(nil)

// NewScan returns an empty Scan.
func NewScan() *Scan {
	return &Scan{items: make(map[string]orb.Point)}
}

// Set inserts the item id at p, or moves it there.
func (s *Scan) Set(id string, p orb.Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[id] = p
}

// Delete removes the item id, if present.
func (s *Scan) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, id)
}

// Get returns the position of the item id and whether it is present.
func (s *Scan) Get(id string) (orb.Point, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.items[id]
	return p, ok
}

// Len returns the number of items.
func (s *Scan) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.items)
}

// Nearby calls fn for every item within radius metres of center, nearest
// first with ties broken by ID, until fn returns false. The hits are
// collected under the read lock and reported after it is released.
func (s *Scan) Nearby(center orb.Point, radius float64, fn func(Hit) bool) {
	if !validPoint(center) || !(radius >= 0) {
		return
	}
	cosC := cosLat(center)
	var hits []Hit
	s.mu.RLock()
	for id, p := range s.items {
		if !validPoint(p) {
			continue
		}
		if d := haversine(center, p, cosC, cosLat(p)); d <= radius {
			hits = append(hits, Hit{ID: id, Point: p, Distance: d})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(hits, compareHits)
	for _, h := range hits {
		if !fn(h) {
			return
		}
	}
}
