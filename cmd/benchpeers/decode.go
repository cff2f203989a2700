package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// plainFix is the baseline's target: the wire fields in a plain struct,
// what encoding/json does with no validation, conversion or checks.
type plainFix struct {
	Seq      uint64    `json:"seq"`
	TS       time.Time `json:"ts"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	SpeedKmh float64   `json:"speed_kmh"`
	Heading  float64   `json:"heading"`
	HDOP     float64   `json:"hdop"`
	Sats     int       `json:"sats"`
	CRS      string    `json:"crs"`
}

// decode is pair 4: decoding one GPS fix, telemetry.DecodeFixes (the
// whole check of a terminal's payload) against encoding/json into
// plainFix, both in this process with testing.Benchmark.
func (h *harness) decode(ctx context.Context) error {
	sec := h.section("decode", "Decode one GPS fix",
		"One fix as a terminal sends it, decoded in this process by `testing.Benchmark`: Lifeline's `telemetry.DecodeFixes` "+
			"against `encoding/json` into a plain struct of the same fields.")
	sec.header = []string{"side", "ns/op", "allocs/op", "B/op", "Lifeline ÷ this (speed)"}
	payload := telemetry.EncodeFixes(telemetry.Fix{Seq: 1042, Time: time.Date(2026, 11, 23, 8, 0, 1, 0, time.UTC),
		Lat: 29.18, Lon: 104.97, SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Sats: 11})
	received := time.Now()
	if _, err := telemetry.DecodeFixes("FS-01", payload, received); err != nil {
		return fmt.Errorf("DecodeFixes(%s): %w", payload, err)
	}
	bench := func(fn func() error) func(context.Context) (measure, error) {
		return func(ctx context.Context) (measure, error) {
			var failed error
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := fn(); err != nil {
						failed = err
					}
				}
			})
			ns := float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
			return measure{Rate: 1e9 / ns, Extra: map[string]float64{
				"ns/op": ns, "allocs/op": float64(r.AllocsPerOp()), "B/op": float64(r.AllocedBytesPerOp()),
			}}, failed
		}
	}
	sides := []side{
		{name: "Lifeline telemetry.DecodeFixes", run: bench(func() error {
			_, err := telemetry.DecodeFixes("FS-01", payload, received)
			return err
		})},
		{name: "encoding/json into a struct", run: bench(func() error {
			var f plainFix
			return json.Unmarshal(payload, &f)
		})},
	}
	res, err := h.rounds(ctx, "decode", sides)
	if err != nil {
		return err
	}
	life := res[sides[0].name]
	for _, s := range sides {
		m := res[s.name]
		vs := ""
		if s.name != sides[0].name {
			vs = ratio(life.Rate, m.Rate)
		}
		sec.row(s.name, count(int(m.Extra["ns/op"])), fmt.Sprint(m.Extra["allocs/op"]), fmt.Sprint(m.Extra["B/op"]), vs)
	}
	base := res[sides[1].name]
	h.summary("decode one GPS fix",
		fmt.Sprintf("%s ns, %.0f allocs", count(int(life.Extra["ns/op"])), life.Extra["allocs/op"]),
		fmt.Sprintf("`encoding/json` into a plain struct: %s ns, %.0f allocs", count(int(base.Extra["ns/op"])), base.Extra["allocs/op"]),
		ratio(life.Rate, base.Rate), "")
	return nil
}
