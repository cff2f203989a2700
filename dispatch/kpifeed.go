package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"
)

// Subscriber is where a duty learns of the changes of the picture (Bus).
type Subscriber interface {
	Subscribe(n int) *Subscription
}

// KPIFeedConfig holds what a KPIFeed is made of. Events is required.
type KPIFeedConfig struct {
	Events Subscriber
	// Every is how often the feed looks for changes: each jurisdiction
	// gets at most one kpi message per Every; default 5 s.
	Every time.Duration
	// Refresh is how often every jurisdiction is recomputed from the
	// record whatever this server saw (another server's decisions, calls
	// leaving the window, calls falling due); default 1 min.
	Refresh time.Duration
	Logger  *slog.Logger
}

// feedMisses bounds the misses a kpi message lists; the API lists all.
const feedMisses = 10

// feedBuffer is the feed's event buffer: it reads every unit fix too.
const feedBuffer = 4096

// KPIFeed publishes the kpi websocket message: for each jurisdiction, the
// KPIs of the last KPIWindow and its coverage now, whenever they change.
// A call taken, an assignment or an incident changed, or a change of
// coverage marks the jurisdiction and those above it; every Every, the
// marked ones are computed from the record (one query for all of them)
// and published when different from what was last published. It only
// reads, so it is safe to run on every server, each for its own consoles.
type KPIFeed struct {
	s      *Service
	cfg    KPIFeedConfig
	log    *slog.Logger
	last   map[string]string // jurisdiction -> what was last published
	parent map[string]string
}

// NewKPIFeed returns the feed of s's KPIs.
func NewKPIFeed(s *Service, cfg KPIFeedConfig) *KPIFeed {
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = s.log
	}
	f := &KPIFeed{s: s, cfg: cfg, log: log.With("component", "kpi"), last: map[string]string{}, parent: map[string]string{}}
	for _, j := range s.area.Jurisdictions {
		f.parent[j.ID] = j.Parent
	}
	return f
}

// Run publishes until ctx is done.
func (f *KPIFeed) Run(ctx context.Context) error {
	sub := f.cfg.Events.Subscribe(feedBuffer)
	defer func() { sub.Close() }()
	tick := time.NewTicker(f.cfg.Every)
	defer tick.Stop()
	dirty := map[string]bool{}
	all := func() {
		for id := range f.parent {
			dirty[id] = true
		}
	}
	all()
	full := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sub.C:
			if !ok { // dropped for being slow: start again, missing nothing
				sub = f.cfg.Events.Subscribe(feedBuffer)
				all()
				continue
			}
			if e.Type == EventIncident || e.Type == EventAssignment {
				f.mark(dirty, e.Jurisdiction)
			}
		case <-tick.C:
			_, changed := f.s.syncCoverage()
			for _, j := range changed {
				f.mark(dirty, j)
			}
			if time.Since(full) >= f.cfg.Refresh {
				all()
				full = time.Now()
			}
			if len(dirty) == 0 {
				continue
			}
			if err := f.publish(ctx, dirty); err != nil {
				if ctx.Err() == nil {
					f.log.Warn("kpi: read the record", "err", err) // the marks stay for the next round
				}
				continue
			}
			clear(dirty)
		}
	}
}

// mark marks jurisdiction id and every one above it.
func (f *KPIFeed) mark(dirty map[string]bool, id string) {
	for range len(f.parent) {
		p, ok := f.parent[id]
		if !ok {
			return
		}
		dirty[id] = true
		id = p
	}
}

// publish computes the marked jurisdictions' KPIs and publishes those
// that changed.
func (f *KPIFeed) publish(ctx context.Context, dirty map[string]bool) error {
	now := f.s.now().UTC()
	from := now.Add(-KPIWindow)
	recs, err := f.s.store.CallRecords(ctx, KPIFilter{From: from, To: now})
	if err != nil {
		return err
	}
	cov := f.s.coverage()
	ids := make([]string, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var mine []CallRecord
	for _, id := range ids {
		mine = mine[:0]
		for _, r := range recs {
			if f.s.area.Within(r.Jurisdiction, id) {
				mine = append(mine, r)
			}
		}
		k := Ledger(mine, now)
		k.Jurisdiction = id
		k.Satisfaction.Misses = k.Satisfaction.Misses[:min(len(k.Satisfaction.Misses), feedMisses)]
		k.OnScene.Misses = k.OnScene.Misses[:min(len(k.OnScene.Misses), feedMisses)]
		share := cov.Share(id)
		k.Coverage = &share
		key, _ := json.Marshal(k) // the period left out: it moves on every round
		if f.last[id] == string(key) {
			continue
		}
		f.last[id] = string(key)
		k.From, k.To = from, now
		f.s.events.Publish(Event{Type: EventKPI, KPI: &k, Jurisdiction: id})
	}
	return nil
}
