package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// served is pair 1: the nearest unit to a call, served over the network
// to concurrent keep-alive clients. Lifeline answers GET
// /api/v1/incidents/{id}/recommendations with its units placed by real
// GPS fixes through MQTT; Tile38 answers NEARBY fleet LIMIT 1 POINT and
// Redis GEOSEARCH ... COUNT 1 over the same units. Lifeline's /livez with
// the same client is the ceiling of any call it serves on this machine.
func (h *harness) served(ctx context.Context) error {
	sec := h.section("served", "Served nearest unit",
		fmt.Sprintf("%d concurrent keep-alive clients, %s per side per round after %s of warm-up, %d call points; "+
			"Lifeline: `GET /api/v1/incidents/{id}/recommendations` (every unit fresh and available, rural radii); "+
			"Tile38: `NEARBY fleet LIMIT 1 POINT lat lon`; Redis: `GEOSEARCH fleet FROMLONLAT lon lat BYRADIUS r km ASC COUNT 1` for r = 1, 5, 20 until one is found; "+
			"ceiling: Lifeline's `GET /livez` with the same client.", h.cfg.clients, h.cfg.duration, h.cfg.warmup, h.cfg.calls))
	sec.header = []string{"units", "side", "req/s", "p50", "p99", "RSS before → after", "Lifeline ÷ this"}
	mosq, err := h.mosquitto(ctx)
	if err != nil {
		return err
	}
	tile38, t38err := findBinary(h.cfg.tile38, "tile38-server")
	if t38err != nil {
		sec.notef("Tile38: tile38-server %v; set TILE38_SERVER or -tile38 to a tile38-server built from github.com/tidwall/tile38. Its rows are skipped.", t38err)
	}
	redis, rerr := findBinary(h.cfg.redis, "redis-server")
	if rerr != nil {
		sec.notef("Redis: redis-server %v. Its rows are skipped.", rerr)
	}
	for _, n := range h.cfg.sizes {
		if err := h.servedSize(ctx, sec, mosq, n, tile38, redis); err != nil {
			return fmt.Errorf("%d units: %w", n, err)
		}
	}
	return nil
}

func (h *harness) servedSize(ctx context.Context, sec *section, mosq *peer, n int, tile38, redis string) error {
	f := newFleet(h.cfg.seed, n, h.cfg.calls)
	area, err := f.writeArea(h.dir)
	if err != nil {
		return err
	}
	h.progress("served, %d units: starting lifelined (ingest from mosquitto %s)", n, mosq.addr)
	l, err := startLifeline(ctx, lifelineOpts{bin: h.bin, area: area, dataDir: h.tempDir("served"), externalMQTT: "tcp://" + mosq.addr, log: h.childLog})
	if err != nil {
		return err
	}
	defer l.p.stop()
	var t38, rds *peer
	if tile38 != "" {
		if t38, err = startTile38(ctx, tile38, h.dir, h.childLog); err != nil {
			return err
		}
		defer t38.stop()
		if err := load(t38.addr, f, func(id, lon, lat string) []string { return []string{"SET", "fleet", id, "POINT", lat, lon} }); err != nil {
			return fmt.Errorf("loading Tile38: %w", err)
		}
	}
	if redis != "" {
		if rds, err = startRedis(ctx, redis, h.tempDir("redis"), h.childLog); err != nil {
			return err
		}
		defer rds.stop()
		if err := load(rds.addr, f, func(id, lon, lat string) []string { return []string{"GEOADD", "fleet", lon, lat, id} }); err != nil {
			return fmt.Errorf("loading Redis: %w", err)
		}
	}
	pl := &placer{broker: "tcp://" + mosq.addr, f: f, seq: make([]uint64, n)}
	t0 := time.Now()
	if err := pl.place(ctx, l); err != nil {
		return fmt.Errorf("placing units: %w", err)
	}
	h.progress("served, %d units: placed by %d fixes over MQTT in %s", n, n, time.Since(t0).Round(time.Millisecond))
	// Calls are taken in chunks, the units kept fresh between them: a call
	// ranked while every unit is stale lists them all as excluded.
	var incidents []string
	t0 = time.Now()
	for i := 0; i < len(f.calls); i += 32 {
		if err := pl.fresh(ctx, l); err != nil {
			return err
		}
		ids, err := l.createIncidents(ctx, f.calls[i:min(i+32, len(f.calls))])
		if err != nil {
			return fmt.Errorf("taking calls: %w", err)
		}
		incidents = append(incidents, ids...)
	}
	h.progress("served, %d units: %d calls taken in %s", n, len(incidents), time.Since(t0).Round(time.Millisecond))
	// Both sides must answer the same question.
	if t38 != nil {
		if err := pl.fresh(ctx, l); err != nil {
			return err
		}
		if bad, err := compareNearest(ctx, l, incidents, t38.addr, f); err != nil {
			return err
		} else if bad > 0 {
			sec.notef("%d units: Lifeline's nearest recommendation and Tile38's NEARBY differed at %d of the first %d call points.", n, bad, min(32, len(incidents)))
		}
	}

	before := map[string]float64{"Lifeline": l.p.rssMB()}
	if t38 != nil {
		before["Tile38"] = t38.p.rssMB()
	}
	if rds != nil {
		before["Redis"] = rds.p.rssMB()
	}
	var next atomic.Int64
	sides := []side{{name: "Lifeline", run: func(ctx context.Context) (measure, error) {
		// Keep every unit fresh (a fix older than 90 s makes it stale).
		if err := pl.refresh(ctx, l); err != nil {
			return measure{}, err
		}
		c := httpClient(h.cfg.clients)
		return closedLoop(ctx, h.cfg.clients, h.cfg.warmup, h.cfg.duration, func(int) (func(context.Context) error, func(), error) {
			return func(ctx context.Context) error {
				id := incidents[int(next.Add(1))%len(incidents)]
				return get(ctx, c, l.base+"/api/v1/incidents/"+id+"/recommendations", l.token)
			}, nil, nil
		})
	}}}
	if t38 != nil {
		sides = append(sides, side{name: "Tile38", run: func(ctx context.Context) (measure, error) {
			return closedLoop(ctx, h.cfg.clients, h.cfg.warmup, h.cfg.duration, respOp(t38.addr, &next, f, func(lat, lon string) []string {
				return []string{"NEARBY", "fleet", "LIMIT", "1", "POINT", lat, lon}
			}))
		}})
	}
	if rds != nil {
		sides = append(sides, side{name: "Redis", run: func(ctx context.Context) (measure, error) {
			return closedLoop(ctx, h.cfg.clients, h.cfg.warmup, h.cfg.duration, redisNearest(rds.addr, &next, f))
		}})
	}
	sides = append(sides, side{name: "ceiling: Lifeline /livez", run: func(ctx context.Context) (measure, error) {
		c := httpClient(h.cfg.clients)
		return closedLoop(ctx, h.cfg.clients, h.cfg.warmup, h.cfg.duration, func(int) (func(context.Context) error, func(), error) {
			return func(ctx context.Context) error { return get(ctx, c, l.base+"/livez", "") }, nil, nil
		})
	}})
	res, err := h.rounds(ctx, fmt.Sprintf("served, %d units", n), sides)
	if err != nil {
		return err
	}
	after := map[string]float64{"Lifeline": l.p.rssMB()}
	if t38 != nil {
		after["Tile38"] = t38.p.rssMB()
	}
	if rds != nil {
		after["Redis"] = rds.p.rssMB()
	}
	if rej := l.rejected(ctx); rej > 0 {
		sec.notef("%d units: lifelined rejected %.0f telemetry messages or fixes.", n, rej)
	}
	life := res["Lifeline"]
	for _, s := range sides {
		m := res[s.name]
		rss := ""
		if b, ok := before[s.name]; ok {
			rss = fmt.Sprintf("%.0f → %.0f MB", b, after[s.name])
		}
		vs := ""
		if s.name != "Lifeline" {
			vs = ratio(life.Rate, m.Rate)
		}
		sec.row(strconv.Itoa(n), s.name, rate(m.Rate), ms(m.P50), ms(m.P99), rss, vs)
		if m.Errors > 0 {
			sec.notef("%d units, %s: %d failed requests in the median round (first: %s).", n, s.name, m.Errors, m.FirstErr)
		}
	}
	path := fmt.Sprintf("served nearest unit, %d clients, %s units", h.cfg.clients, count(n))
	ceil := res["ceiling: Lifeline /livez"]
	ceiling := fmt.Sprintf("`/livez` %s req/s; Lifeline at %s of it", rate(ceil.Rate), pct(life.Rate, ceil.Rate))
	if t, ok := res["Tile38"]; ok {
		h.summary(path, fmt.Sprintf("%s req/s, p99 %s, RSS %.0f → %.0f MB", rate(life.Rate), ms(life.P99), before["Lifeline"], after["Lifeline"]),
			fmt.Sprintf("Tile38 `NEARBY … LIMIT 1`: %s req/s, p99 %s", rate(t.Rate), ms(t.P99)), ratio(life.Rate, t.Rate), ceiling)
	} else {
		h.summary(path, fmt.Sprintf("%s req/s, p99 %s", rate(life.Rate), ms(life.P99)), "Tile38 not found: skipped", "", ceiling)
	}
	return nil
}

// placer places a fleet in a lifelined through an open broker: one fix
// per unit, each newer than the unit's last.
type placer struct {
	broker string
	f      *fleet
	seq    []uint64
	last   time.Time // the time of the newest fixes
}

// place publishes a fix for every unit and waits until lifelined has
// handled them all.
func (pl *placer) place(ctx context.Context, l *lifeline) error {
	base, err := l.gpsMessages(ctx)
	if err != nil {
		return err
	}
	const clients = 8
	now := time.Now().UTC()
	pl.last = now
	err = parallel(ctx, clients, clients, func(w int) error {
		c, err := connect(pl.broker, fmt.Sprintf("benchpeers-placer-%d-%s", w, randomHex(3)), "", "")
		if err != nil {
			return err
		}
		defer c.Disconnect(100)
		win := newWindow(256, nil)
		for i := w; i < len(pl.f.ids); i += clients {
			pl.seq[i]++
			p := pl.f.points[i]
			fix := telemetry.Fix{Seq: pl.seq[i], Time: now, Lat: p[1], Lon: p[0], Sats: 9, HDOP: 0.9}
			win.publish(c, telemetry.Topic(pl.f.ids[i], telemetry.KindGPS), telemetry.EncodeFixes(fix))
		}
		return win.close()
	})
	if err != nil {
		return err
	}
	return l.waitIngested(ctx, base+float64(len(pl.f.ids)), 10*time.Minute)
}

// refresh is place again, so that no unit's fix is stale.
func (pl *placer) refresh(ctx context.Context, l *lifeline) error { return pl.place(ctx, l) }

// fresh refreshes the units when their fixes are more than 40 s old, half
// of the 90 s after which lifelined calls a unit stale.
func (pl *placer) fresh(ctx context.Context, l *lifeline) error {
	if time.Since(pl.last) < 40*time.Second {
		return nil
	}
	return pl.place(ctx, l)
}

// load sends one command for each unit of f to the RESP server at addr,
// pipelined.
func load(addr string, f *fleet, cmd func(id string, lon, lat string) []string) error {
	c, err := dialRESP(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	cmds := make([][]string, len(f.ids))
	for i, id := range f.ids {
		cmds[i] = cmd(id, ftoa(f.points[i][0]), ftoa(f.points[i][1]))
	}
	return c.pipeline(cmds)
}

// respOp makes closed-loop workers that each own a RESP connection and
// query the call points in turn.
func respOp(addr string, next *atomic.Int64, f *fleet, cmd func(lat, lon string) []string) func(int) (func(context.Context) error, func(), error) {
	return func(int) (func(context.Context) error, func(), error) {
		c, err := dialRESP(addr)
		if err != nil {
			return nil, nil, err
		}
		return func(context.Context) error {
			p := f.calls[int(next.Add(1))%len(f.calls)]
			_, err := c.do(cmd(ftoa(p[1]), ftoa(p[0]))...)
			return err
		}, func() { c.Close() }, nil
	}
}

// redisNearest makes closed-loop workers that ask Redis for the nearest
// unit as one would: GEOSEARCH sorts every member within its radius, so
// ask within 1 km, then 5 km, then 20 km, until there is one.
func redisNearest(addr string, next *atomic.Int64, f *fleet) func(int) (func(context.Context) error, func(), error) {
	return func(int) (func(context.Context) error, func(), error) {
		c, err := dialRESP(addr)
		if err != nil {
			return nil, nil, err
		}
		return func(context.Context) error {
			p := f.calls[int(next.Add(1))%len(f.calls)]
			for _, km := range []string{"1", "5", "20"} {
				reply, err := c.do("GEOSEARCH", "fleet", "FROMLONLAT", ftoa(p[0]), ftoa(p[1]), "BYRADIUS", km, "km", "ASC", "COUNT", "1")
				if err != nil {
					return err
				}
				if r, ok := reply.([]any); ok && len(r) > 0 {
					return nil
				}
			}
			return nil
		}, func() { c.Close() }, nil
	}
}

// compareNearest checks, at the first call points, that Lifeline's
// nearest recommended unit is Tile38's nearest, and returns how many
// differ.
func compareNearest(ctx context.Context, l *lifeline, incidents []string, addr string, f *fleet) (int, error) {
	c, err := dialRESP(addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	bad := 0
	for i := range min(32, len(incidents)) {
		got, err := l.nearest(ctx, incidents[i])
		if err != nil {
			return 0, err
		}
		p := f.calls[i]
		reply, err := c.do("NEARBY", "fleet", "LIMIT", "1", "IDS", "POINT", ftoa(p[1]), ftoa(p[0]))
		if err != nil {
			return 0, err
		}
		want := ""
		if r, ok := reply.([]any); ok && len(r) == 2 {
			if ids, ok := r[1].([]any); ok && len(ids) > 0 {
				want, _ = ids[0].(string)
			}
		}
		if got != want {
			bad++
		}
	}
	return bad, nil
}

func ftoa(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
