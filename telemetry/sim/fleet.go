package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"
	"golang.org/x/sync/errgroup"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// UnitSpec is one simulated unit: its id and its station.
type UnitSpec struct {
	ID   string
	Home orb.Point // the station it starts from and returns to
}

// World is the ground the fleet drives on.
type World struct {
	Units []UnitSpec
	// Bounds are where vehicles may drive: wander targets are drawn
	// inside them and drives between two points inside detour to stay
	// inside. Empty means anywhere.
	Bounds []*geo.Region
	// Hospitals are the destinations of assignments whose command names
	// none; the one nearest the incident is taken.
	Hospitals []orb.Point
}

// Config tunes a Fleet. Zero fields take the defaults given.
type Config struct {
	URL string // broker, e.g. tcp://127.0.0.1:1883
	// Credentials, when not nil, returns the broker username and password
	// of a unit's terminal; nil connects anonymously.
	Credentials func(unit string) (username, password string)
	Interval    time.Duration // GPS fix interval; default 5s
	// Speedup compresses the scenario: drives, time on scene and at the
	// hospital, and the pauses between wander drives; default 1. A drive
	// is compressed less when it would otherwise show more than
	// MaxSpeedKmh on the wire.
	Speedup float64
	// MaxSpeedKmh caps the speed a fix reports, which is the real
	// distance over real time the server sees (so a compressed drive
	// reports compressed speeds); default 200, below the 250 km/h at which
	// the server judges a fix an impossible jump. Negative: no cap.
	MaxSpeedKmh float64
	Batch       int           // fixes per gps message; default 1; >1 simulates store-and-forward
	VideoEvery  time.Duration // video status interval; default 30s
	// Wander makes idle units take short repositioning drives now and
	// then (and a third of them start on one), so that the map moves
	// without calls.
	Wander bool
	Seed   uint64 // seeds every random choice, per unit
	// ClientPrefix goes before the unit id in the MQTT client id. Empty by
	// default: a terminal connects with its unit id as client id, which a
	// secured broker requires (no unit may take another's session).
	ClientPrefix string
	// Acked, when not nil, is called with every message whose PUBACK
	// reached the terminal, once each, so that a load harness can keep
	// its own log of what the server took. It is told by paho's session
	// store, not by the publish token, which paho completes without a
	// PUBACK when the connection is re-established (see ackStore). It
	// runs on paho's goroutine and must return quickly.
	Acked func(unit string, k telemetry.Kind, payload []byte)
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if !(c.Speedup > 0) {
		c.Speedup = 1
	}
	if c.MaxSpeedKmh == 0 {
		c.MaxSpeedKmh = 200
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.VideoEvery <= 0 {
		c.VideoEvery = 30 * time.Second
	}
	return c
}

// Stats counts what a Fleet did, for the load harness.
type Stats struct {
	Fixes    uint64 // GPS fixes published (each fix of a batch counts)
	Messages uint64 // messages published, of every kind
	Commands uint64 // commands received
	Acks     uint64 // acks published
	Errors   uint64 // failed publishes, lost connections, bad or dropped commands
}

// String returns the stats on one line.
func (s Stats) String() string {
	return fmt.Sprintf("fixes=%d messages=%d commands=%d acks=%d errors=%d",
		s.Fixes, s.Messages, s.Commands, s.Acks, s.Errors)
}

// world is the part of World vehicles share.
type world struct {
	inside    func(orb.Point) bool // nil for anywhere
	hospitals []orb.Point
}

// Fleet is a set of simulated vehicle terminals, one MQTT client each,
// that speak contract v1.
type Fleet struct {
	units []UnitSpec
	world *world
	cfg   Config
	log   *slog.Logger

	fixes, messages, commands, acks, errors atomic.Uint64
}

// New returns a Fleet of w's units configured by cfg. A nil logger
// discards.
func New(w World, cfg Config, logger *slog.Logger) *Fleet {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wd := &world{inside: insideAny(w.Bounds), hospitals: w.Hospitals}
	return &Fleet{units: w.Units, world: wd, cfg: cfg.withDefaults(), log: logger.With("component", "fleetsim")}
}

// Stats returns what the fleet has done so far. It is safe to call at
// any time.
func (f *Fleet) Stats() Stats {
	return Stats{
		Fixes: f.fixes.Load(), Messages: f.messages.Load(), Commands: f.commands.Load(),
		Acks: f.acks.Load(), Errors: f.errors.Load(),
	}
}

// Run connects every unit's terminal and drives the fleet until ctx is
// done; then each terminal publishes its retained "offline" and
// disconnects, and Run returns nil. It returns an error, stopping the
// others, when a unit id is invalid or repeated, or when a terminal's
// first connection fails; later losses are retried.
func (f *Fleet) Run(ctx context.Context) error {
	if f.cfg.URL == "" {
		return errors.New("fleetsim: no broker URL")
	}
	seen := make(map[string]bool, len(f.units))
	for _, u := range f.units {
		if !telemetry.ValidUnitID(u.ID) || seen[u.ID] {
			return fmt.Errorf("fleetsim: unit id %q is invalid or repeated", u.ID)
		}
		seen[u.ID] = true
	}
	f.log.Info("fleet starting", "units", len(f.units), "broker", f.cfg.URL, "speedup", f.cfg.Speedup)
	g, ctx := errgroup.WithContext(ctx)
	for _, u := range f.units {
		g.Go(func() error { return f.newTerminal(u).run(ctx) })
	}
	err := g.Wait()
	f.log.Info("fleet stopped", "stats", f.Stats().String())
	return err
}

// rng returns the random source of unit id.
func (f *Fleet) rng(id string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(id))
	return rand.New(rand.NewPCG(f.cfg.Seed, h.Sum64()))
}
