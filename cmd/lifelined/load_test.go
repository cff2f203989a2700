package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/dispatch/postgres/pgtest"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// BenchmarkLoadEndToEnd is the load harness for the whole ingest path: the
// real server on PostgreSQL (or SQLite), real authenticated MQTT terminals
// publishing store-and-forward batches at QoS 1 as fast as they are
// acknowledged, through the embedded broker, validation, the history
// writer (PostgreSQL: COPY with group commit) and the live picture. A
// PUBACK here means stored, so fixes/s is what the record sustains with
// the rest of the pipeline running. Run it with make bench (it is not
// part of make test):
//
//	go test ./cmd/lifelined -run '^$' -bench LoadEndToEnd -benchtime 20000x
func BenchmarkLoadEndToEnd(b *testing.B) {
	for _, store := range []string{"postgres", "sqlite"} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", store, batch), func(b *testing.B) {
				benchLoad(b, store, batch)
			})
		}
	}
}

func benchLoad(b *testing.B, store string, batch int) {
	m := startMain(b, func(c *Config) {
		if store == "postgres" {
			c.PostgresURL = pgtest.DSN(b)
		}
		c.LogLevel, c.UnitRate = "error", 0 // 18 terminals stand in for a fleet
	})
	units := m.Area.Units
	var clients []paho.Client
	for _, u := range units {
		c := paho.NewClient(terminalOptions(m.MQTTURL(), u.ID, m.credentials(b, u.ID)).SetMaxResumePubInFlight(64))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Disconnect(0)
		}
	}()
	// b.N fixes in all, in messages of batch fixes, shared by the units.
	msgs := max(1, b.N/batch)
	var next atomic.Int64
	var fixes atomic.Int64
	const inflight = 16 // unacknowledged messages per terminal
	start := time.Now().UTC().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		unit := units[i].ID
		wg.Go(func() {
			var seq uint64
			toks := make(chan paho.Token, inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for tok := range toks {
					if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
						fixes.Add(int64(batch))
					}
				}
			}()
			for next.Add(1) <= int64(msgs) {
				fs := make([]telemetry.Fix, batch)
				for k := range fs {
					seq++
					fs[k] = telemetry.Fix{Seq: seq, Time: start.Add(time.Duration(seq) * time.Second / 10), Lat: 29.18 + float64(i)*0.001, Lon: 104.98, Sats: 9, HDOP: 1}
				}
				toks <- c.Publish(telemetry.Topic(unit, telemetry.KindGPS), 1, false, telemetry.EncodeFixes(fs...))
			}
			close(toks)
			<-done
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	if got, want := fixes.Load(), int64(msgs*batch); got != want {
		b.Fatalf("%d of %d fixes acknowledged", got, want)
	}
	b.ReportMetric(float64(fixes.Load())/elapsed.Seconds(), "fixes/s")
}
