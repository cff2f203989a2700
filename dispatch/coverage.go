package dispatch

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Coverage sizes.
const (
	// CoverageCellMetres is the side of a coverage cell.
	CoverageCellMetres = 500
	// CoverMoveMetres is how far a counted unit must move from where it
	// was counted before its coverage is counted again: coverage follows
	// a unit in steps of this, not on every fix.
	CoverMoveMetres = 250
	// maxCoverSquares bounds the grid of an area; a larger area gets
	// larger cells.
	maxCoverSquares = 1 << 24
	// maxUncovered bounds the uncovered cells a report lists.
	maxUncovered = 5000
)

// Coverage is the share of each jurisdiction's area within its service
// radius of at least one available unit. The area is a grid of square
// cells (CoverageCellMetres a side) laid over every jurisdiction's region
// at start; each cell belongs to the most specific jurisdiction holding
// its centre and takes the base radius of that jurisdiction and zone
// (urban or rural). A cell is covered while at least one available unit
// of its jurisdiction (or beneath it) is within the cell's radius of its
// centre: the county's own fleet, which needs nobody's consent.
//
// It is kept incrementally: each cell counts the units covering it, and a
// unit changes the counts only when it becomes available or stops being
// so, or has moved CoverMoveMetres from where it was counted (Sync). A
// change touches the cells within the largest radius of the unit, not the
// whole grid. A Coverage is safe for concurrent use.
type Coverage struct {
	mu sync.Mutex

	cellM      float64
	lat0, lon0 float64 // south-west corner of the grid
	dLat, dLon float64 // cell side in degrees
	nx, ny     int
	square     []int32 // row-major ny×nx: the cell at each grid square, -1 outside every region

	// The cells, by index.
	lat, lon, radius []float64
	jur              []int32 // index into jurs
	n                []int32 // available units covering the cell

	jurs     []string
	jurIdx   map[string]int32
	within   [][]bool // within[a][b]: jurisdiction a is b or lies beneath it
	cells    []int    // per jurisdiction: its own cells
	covered  []int    // per jurisdiction: its own cells covered
	maxR     float64
	units    map[string]*coverUnit
	order    []*coverUnit // units by id
	stations []coverStation
	byJur    [][]int // per jurisdiction: its stations, by id

	stamp []uint32 // scratch of MoveUp
	epoch uint32
}

// coverUnit is a unit as the coverage counts it.
type coverUnit struct {
	id, callsign string
	jur          int32
	on           bool      // counted: available, online, fresh
	at           orb.Point // where it was counted
}

// coverStation is a station and the cells a unit of its jurisdiction
// would cover from it (computed on first use).
type coverStation struct {
	Station
	jur   int32
	cells []int32
	done  bool
}

// NewCoverage lays a grid of cells of about cellMetres a side over the
// regions of area; radius gives the service radius of a jurisdiction and
// zone. Every unit of the area starts uncounted.
func NewCoverage(area *Area, cellMetres float64, radius func(jur string, z geo.Zone) float64) *Coverage {
	c := &Coverage{cellM: cellMetres, jurIdx: map[string]int32{}, units: map[string]*coverUnit{}}
	for i, j := range area.Jurisdictions {
		c.jurs = append(c.jurs, j.ID)
		c.jurIdx[j.ID] = int32(i)
	}
	c.within = make([][]bool, len(c.jurs))
	for a := range c.jurs {
		c.within[a] = make([]bool, len(c.jurs))
		for b := range c.jurs {
			c.within[a][b] = area.Within(c.jurs[a], c.jurs[b])
		}
	}
	c.cells, c.covered = make([]int, len(c.jurs)), make([]int, len(c.jurs))
	c.byJur = make([][]int, len(c.jurs))
	for _, u := range area.Units {
		cu := &coverUnit{id: u.ID, callsign: u.Callsign, jur: c.jurIdx[u.Jurisdiction]}
		c.units[u.ID] = cu
		c.order = append(c.order, cu)
	}
	slices.SortFunc(c.order, func(a, b *coverUnit) int { return cmp.Compare(a.id, b.id) })
	for _, st := range area.Stations {
		c.stations = append(c.stations, coverStation{Station: st, jur: c.jurIdx[st.Jurisdiction]})
	}
	slices.SortFunc(c.stations, func(a, b coverStation) int { return cmp.Compare(a.ID, b.ID) })
	for i, st := range c.stations {
		c.byJur[st.jur] = append(c.byJur[st.jur], i)
	}
	c.lay(area, radius)
	return c
}

// lay builds the grid: cells whose centre lies in a region, parents
// before children so that a county's cells are the county's and not its
// city's, each with its radius.
func (c *Coverage) lay(area *Area, radius func(jur string, z geo.Zone) float64) {
	var (
		b   orb.Bound
		any bool
	)
	for _, j := range area.Jurisdictions {
		if j.Region == nil {
			continue
		}
		if !any {
			b, any = j.Region.Bound(), true
		}
		b = b.Union(j.Region.Bound())
	}
	if !any {
		return
	}
	for {
		c.dLat = c.cellM / (geo.EarthRadius * math.Pi / 180)
		c.dLon = c.dLat / math.Cos((b.Min.Lat()+b.Max.Lat())/2*math.Pi/180)
		c.lat0, c.lon0 = b.Min.Lat(), b.Min.Lon()
		c.nx = max(int(math.Ceil((b.Max.Lon()-c.lon0)/c.dLon)), 1)
		c.ny = max(int(math.Ceil((b.Max.Lat()-c.lat0)/c.dLat)), 1)
		if c.nx*c.ny <= maxCoverSquares {
			break
		}
		c.cellM *= 2
	}
	owner := make([]int32, c.nx*c.ny)
	for i := range owner {
		owner[i] = -1
	}
	depth := func(id string) int {
		d := 0
		for j, ok := area.Jurisdiction(id); ok && j.Parent != "" && d <= len(area.Jurisdictions); j, ok = area.Jurisdiction(j.Parent) {
			d++
		}
		return d
	}
	byDepth := slices.Clone(area.Jurisdictions)
	slices.SortStableFunc(byDepth, func(a, b Jurisdiction) int { return cmp.Compare(depth(a.ID), depth(b.ID)) })
	for _, j := range byDepth {
		if j.Region != nil {
			ji := c.jurIdx[j.ID]
			c.fill(j.Region.Geometry(), func(sq int) { owner[sq] = ji })
		}
	}
	urban := make([]bool, len(owner))
	for _, z := range area.Zones {
		zj := c.jurIdx[z.Jurisdiction]
		c.fill(z.Region.Geometry(), func(sq int) {
			if owner[sq] == zj {
				urban[sq] = true
			}
		})
	}
	c.square = make([]int32, len(owner))
	for sq, o := range owner {
		c.square[sq] = -1
		if o < 0 {
			continue
		}
		zone := geo.Rural
		if urban[sq] {
			zone = geo.Urban
		}
		r := radius(c.jurs[o], zone)
		c.square[sq] = int32(len(c.jur))
		c.lat = append(c.lat, c.lat0+(float64(sq/c.nx)+0.5)*c.dLat)
		c.lon = append(c.lon, c.lon0+(float64(sq%c.nx)+0.5)*c.dLon)
		c.radius = append(c.radius, r)
		c.jur = append(c.jur, o)
		c.cells[o]++
		c.maxR = max(c.maxR, r)
	}
	c.n = make([]int32, len(c.jur))
	c.stamp = make([]uint32, len(c.jur))
}

// fill calls set with every grid square whose centre lies inside mp, by
// scanlines: along each row's centre line, the crossings of the rings'
// edges sorted by longitude bound the spans inside (even-odd, so holes
// and several polygons need nothing more).
func (c *Coverage) fill(mp orb.MultiPolygon, set func(sq int)) {
	b := mp.Bound()
	iy0 := max(int(math.Floor((b.Min.Lat()-c.lat0)/c.dLat-0.5)), 0)
	iy1 := min(int(math.Ceil((b.Max.Lat()-c.lat0)/c.dLat-0.5)), c.ny-1)
	var xs []float64
	for iy := iy0; iy <= iy1; iy++ {
		y := c.lat0 + (float64(iy)+0.5)*c.dLat
		xs = xs[:0]
		for _, poly := range mp {
			for _, ring := range poly {
				for k := range ring {
					a, b := ring[k], ring[(k+1)%len(ring)]
					if (a[1] <= y) != (b[1] <= y) {
						xs = append(xs, a[0]+(y-a[1])*(b[0]-a[0])/(b[1]-a[1]))
					}
				}
			}
		}
		slices.Sort(xs)
		for k := 0; k+1 < len(xs); k += 2 {
			ix0 := max(int(math.Ceil((xs[k]-c.lon0)/c.dLon-0.5)), 0)
			ix1 := min(int(math.Floor((xs[k+1]-c.lon0)/c.dLon-0.5)), c.nx-1)
			for ix := ix0; ix <= ix1; ix++ {
				set(iy*c.nx + ix)
			}
		}
	}
}

// each calls fn with every cell a unit of jurisdiction jur at p covers:
// a cell of jur or above it whose radius reaches p. It looks only at the
// grid squares within the largest radius of p.
func (c *Coverage) each(p orb.Point, jur int32, fn func(cell int32)) {
	if len(c.jur) == 0 {
		return
	}
	rLat := c.maxR / (geo.EarthRadius * math.Pi / 180)
	rLon := rLat / math.Max(math.Cos((math.Abs(p.Lat())+rLat)*math.Pi/180), 1e-6)
	iy0 := max(int(math.Floor((p.Lat()-rLat-c.lat0)/c.dLat)), 0)
	iy1 := min(int(math.Floor((p.Lat()+rLat-c.lat0)/c.dLat)), c.ny-1)
	ix0 := max(int(math.Floor((p.Lon()-rLon-c.lon0)/c.dLon)), 0)
	ix1 := min(int(math.Floor((p.Lon()+rLon-c.lon0)/c.dLon)), c.nx-1)
	within := c.within[jur]
	// The haversine distance decides. A flat approximation (metres along
	// the parallel of p and the meridian) is within 2% of it for radii
	// up to 50 km below 60° of latitude, so it settles every cell but
	// those within 2% of their radius; the others take the exact test.
	flat := c.maxR <= 50_000 && math.Abs(p.Lat()) <= 60
	kLat := geo.EarthRadius * math.Pi / 180
	kLon := kLat * math.Cos(p.Lat()*math.Pi/180)
	for iy := iy0; iy <= iy1; iy++ {
		row := c.square[iy*c.nx : (iy+1)*c.nx]
		dy := (c.lat0 + (float64(iy)+0.5)*c.dLat - p.Lat()) * kLat
		for ix := ix0; ix <= ix1; ix++ {
			cell := row[ix]
			if cell < 0 || !within[c.jur[cell]] {
				continue
			}
			r := c.radius[cell]
			if flat {
				dx := (c.lon[cell] - p.Lon()) * kLon
				switch d2 := dx*dx + dy*dy; {
				case d2 > r*r*(1.02*1.02):
					continue
				case d2 < r*r*(0.98*0.98):
					fn(cell)
					continue
				}
			}
			if geo.Distance(p, orb.Point{c.lon[cell], c.lat[cell]}) <= r {
				fn(cell)
			}
		}
	}
}

// count adds (delta 1) or removes (-1) unit u's coverage at u.at, and
// marks the jurisdictions whose covered cells changed.
func (c *Coverage) count(u *coverUnit, delta int32, changed map[int32]bool) {
	c.each(u.at, u.jur, func(cell int32) {
		c.n[cell] += delta
		if (delta > 0 && c.n[cell] == 1) || (delta < 0 && c.n[cell] == 0) {
			c.covered[c.jur[cell]] += int(delta)
			changed[c.jur[cell]] = true
		}
	})
}

// counted returns whether st counts (counts says whether it is available
// now) and where.
func counted(st *UnitState, counts func(*UnitState) bool) (bool, orb.Point) {
	if st.Position == nil || !counts(st) {
		return false, orb.Point{}
	}
	return true, orb.Point{st.Position.Lon, st.Position.Lat}
}

// Sync brings the coverage up to date with pic: a unit counts while
// counts says it is available (and it has a position), where it was when
// it was last counted; it is counted again once it has moved
// CoverMoveMetres from there. counts runs under the picture's lock. Sync
// returns the jurisdictions whose covered cells changed.
func (c *Coverage) Sync(pic Picture, counts func(*UnitState) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	moved := pic.Units(func(st *UnitState) bool {
		u := c.units[st.ID]
		if u == nil {
			return false
		}
		on, p := counted(st, counts)
		return on != u.on || (on && geo.Distance(p, u.at) >= CoverMoveMetres)
	})
	changed := map[int32]bool{}
	for i := range moved {
		u := c.units[moved[i].ID]
		if u.on {
			c.count(u, -1, changed)
		}
		if u.on, u.at = counted(&moved[i], counts); u.on {
			c.count(u, 1, changed)
		}
	}
	return c.names(changed)
}

// Recompute counts every unit of pic again from nothing, where it is now:
// what Sync does step by step, in one go.
func (c *Coverage) Recompute(pic Picture, counts func(*UnitState) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.n)
	before := slices.Clone(c.covered)
	clear(c.covered)
	for _, u := range c.order {
		u.on = false
	}
	changed := map[int32]bool{}
	for _, st := range pic.Units(nil) {
		if u := c.units[st.ID]; u != nil {
			if u.on, u.at = counted(&st, counts); u.on {
				c.count(u, 1, changed)
			}
		}
	}
	clear(changed)
	for j := range c.covered {
		if c.covered[j] != before[j] {
			changed[int32(j)] = true
		}
	}
	return c.names(changed)
}

func (c *Coverage) names(js map[int32]bool) []string {
	out := make([]string, 0, len(js))
	for j := range js {
		out = append(out, c.jurs[j])
	}
	slices.Sort(out)
	return out
}

// CoverageShare is how much of a jurisdiction is covered now.
type CoverageShare struct {
	Cells   int      `json:"cells"`
	Covered int      `json:"covered"`
	Share   *float64 `json:"share"` // nil for a jurisdiction without cells
}

// CoverageReport is the coverage of a jurisdiction now: how much of it is
// covered, where it is not, and the single move of an idle unit to a
// station of its own jurisdiction that would raise coverage most.
type CoverageReport struct {
	Jurisdiction string  `json:"jurisdiction"`
	CellM        float64 `json:"cell_m"`
	CoverageShare
	// Units counts the available units of the jurisdiction counted.
	Units int `json:"units"`
	// Uncovered are the centres of the uncovered cells, [lat, lon], at
	// most maxUncovered of them (Truncated says when there are more).
	Uncovered [][2]float64 `json:"uncovered"`
	Truncated bool         `json:"truncated"`
	// MoveUp is the best single move, nil when no move gains a cell.
	MoveUp *MoveUp   `json:"move_up"`
	At     time.Time `json:"at"`
}

// MoveUp is the move of one idle unit to a station that would raise the
// coverage most.
type MoveUp struct {
	Unit        string  `json:"unit"`
	Callsign    string  `json:"callsign"`
	From        LatLon  `json:"from"` // where the unit is counted now
	ToStation   string  `json:"to_station"`
	StationName string  `json:"station_name"`
	To          LatLon  `json:"to"`
	GainCells   int     `json:"gain_cells"` // cells newly covered minus cells no longer covered
	ShareAfter  float64 `json:"share_after"`
}

// scope returns the index of jurisdiction id, -1 for "" (everything).
func (c *Coverage) scope(id string) int32 {
	if id == "" {
		return -1
	}
	if j, ok := c.jurIdx[id]; ok {
		return j
	}
	return -2 // not in the area: nothing
}

func (c *Coverage) in(j, scope int32) bool { return scope == -1 || (scope >= 0 && c.within[j][scope]) }

// share sums the cells of scope; the caller holds c.mu.
func (c *Coverage) share(scope int32) CoverageShare {
	var s CoverageShare
	for j := range c.jurs {
		if c.in(int32(j), scope) {
			s.Cells += c.cells[j]
			s.Covered += c.covered[j]
		}
	}
	s.Share = ratio(s.Covered, s.Cells)
	return s
}

// Share returns the coverage of jurisdiction id ("" for the whole area).
func (c *Coverage) Share(id string) CoverageShare {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.share(c.scope(id))
}

// Report returns the coverage of jurisdiction id ("" for the whole area),
// its uncovered cells and the best move-up.
func (c *Coverage) Report(id string) *CoverageReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	scope := c.scope(id)
	r := &CoverageReport{Jurisdiction: id, CellM: c.cellM, CoverageShare: c.share(scope), Uncovered: [][2]float64{}}
	for _, u := range c.order {
		if u.on && c.in(u.jur, scope) {
			r.Units++
		}
	}
	for cell := range c.n {
		if c.n[cell] > 0 || !c.in(c.jur[cell], scope) {
			continue
		}
		if len(r.Uncovered) == maxUncovered {
			r.Truncated = true
			break
		}
		r.Uncovered = append(r.Uncovered, [2]float64{round5(c.lat[cell]), round5(c.lon[cell])})
	}
	r.MoveUp = c.moveUp(scope, r.CoverageShare)
	return r
}

func round5(v float64) float64 { return math.Round(v*1e5) / 1e5 }

// stationCells returns the cells a unit of station i's jurisdiction would
// cover from it.
func (c *Coverage) stationCells(i int) []int32 {
	st := &c.stations[i]
	if !st.done {
		c.each(st.Location, st.jur, func(cell int32) { st.cells = append(st.cells, cell) })
		st.done = true
	}
	return st.cells
}

// moveUp finds the move of one counted unit in scope to a station of its
// own jurisdiction that gains most cells of scope: the cells the station
// would cover that nobody covers, minus the cells only the unit covers
// that the station would not. Ties go to the first unit, then station, by
// id. Cost: for each idle unit U in scope, one pass over the grid squares
// within the largest radius of it (about (2r/cell)², 1,600 for 10 km at
// 500 m), then for each station of its jurisdiction one pass over that
// station's cells (about π(r/cell)², 1,257); the cells each station would
// gain are counted once per call. So O(U·(B + S·C)), with S the stations
// of a unit's jurisdiction: 30 units and 14 stations are ~0.6 M steps.
// The caller holds c.mu.
func (c *Coverage) moveUp(scope int32, now CoverageShare) *MoveUp {
	if now.Cells == 0 {
		return nil
	}
	var (
		best   *MoveUp
		gained = map[int]int{}
	)
	for _, u := range c.order {
		if !u.on || !c.in(u.jur, scope) || len(c.byJur[u.jur]) == 0 {
			continue
		}
		c.epoch++
		if c.epoch == 0 { // wrapped: old stamps could match
			clear(c.stamp)
			c.epoch = 1
		}
		lost := 0
		c.each(u.at, u.jur, func(cell int32) {
			if c.n[cell] == 1 && c.in(c.jur[cell], scope) {
				c.stamp[cell] = c.epoch
				lost++
			}
		})
		for _, i := range c.byJur[u.jur] {
			st := &c.stations[i]
			if geo.Distance(u.at, st.Location) < CoverMoveMetres {
				continue // it is there already
			}
			cells := c.stationCells(i)
			g, ok := gained[i]
			if !ok {
				for _, cell := range cells {
					if c.n[cell] == 0 && c.in(c.jur[cell], scope) {
						g++
					}
				}
				gained[i] = g
			}
			kept := 0
			for _, cell := range cells {
				if c.stamp[cell] == c.epoch {
					kept++
				}
			}
			gain := g - lost + kept
			if gain > 0 && (best == nil || gain > best.GainCells) {
				best = &MoveUp{
					Unit: u.id, Callsign: u.callsign, From: LatLon{Lat: u.at.Lat(), Lon: u.at.Lon()},
					ToStation: st.ID, StationName: st.Name, To: LatLon{Lat: st.Location.Lat(), Lon: st.Location.Lon()},
					GainCells: gain, ShareAfter: float64(now.Covered+gain) / float64(now.Cells),
				}
			}
		}
	}
	return best
}

// serviceRadius is the base service radius of a jurisdiction and zone:
// what satisfaction and coverage measure against. The one place to read
// it, so that a policy per jurisdiction can replace the area-wide one.
func (s *Service) serviceRadius(jur string, z geo.Zone) float64 {
	if p := s.ground.places[jur]; p != nil {
		first, _ := p.radii.Ladder(z)
		return first
	}
	first, _ := s.radii.Ladder(z)
	return first
}

// coverage returns the service's coverage, laid out on first use.
func (s *Service) coverage() *Coverage {
	s.cover.once.Do(func() { s.cover.c = NewCoverage(s.area, CoverageCellMetres, s.serviceRadius) })
	return s.cover.c
}

// coverHolder holds a service's coverage, laid out on first use.
type coverHolder struct {
	once sync.Once
	c    *Coverage
}

// syncCoverage brings the coverage up to date with the picture now and
// returns it, with the jurisdictions whose covered cells changed.
func (s *Service) syncCoverage() (*Coverage, []string) {
	c, now := s.coverage(), s.now()
	changed := c.Sync(s.pic, func(st *UnitState) bool { return s.ineligible(st, now) == "" })
	return c, changed
}

// Coverage returns the coverage of jurisdiction (by's own when ""; the
// whole area for an administrator of it) as the fleet stands now, with
// its uncovered cells and the best move-up.
func (s *Service) Coverage(ctx context.Context, by Principal, jurisdiction string) (*CoverageReport, error) {
	scope, err := s.Scope(by, jurisdiction)
	if err != nil {
		return nil, err
	}
	c, _ := s.syncCoverage()
	r := c.Report(scope)
	r.At = s.now().UTC()
	return r, nil
}
