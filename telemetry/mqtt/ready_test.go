package mqtt_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// readyUnits records the units CommandsReady names.
type readyUnits struct {
	mu    sync.Mutex
	units []string
}

func (r *readyUnits) add(unit string) { r.mu.Lock(); r.units = append(r.units, unit); r.mu.Unlock() }

func (r *readyUnits) count(unit string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, u := range r.units {
		if u == unit {
			n++
		}
	}
	return n
}

// TestCommandsReady: the broker says a terminal can take commands when it
// subscribes to its cmd topic or resumes a session that holds that
// subscription, and Reachable says whether a connected client is
// subscribed now; other subscriptions say nothing.
func TestCommandsReady(t *testing.T) {
	checkLeaks(t)
	ready := &readyUnits{}
	b := startBroker(t, mqtt.BrokerConfig{CommandsReady: ready.add})
	url := brokerURL(b)
	if b.Reachable("A1") {
		t.Fatal("A1 reachable before any client")
	}
	persistent := func(o *paho.ClientOptions) { o.SetCleanSession(false) }
	c := connect(t, url, "A1", persistent)
	if tok := c.Subscribe(telemetry.Topic("A1", telemetry.KindGPS), 1, nil); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := c.Subscribe(telemetry.Topic("A1", telemetry.KindCmd), 1, nil); !tok.WaitTimeout(waitLong) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitFor(t, "A1 ready", func() bool { return ready.count("A1") == 1 })
	if !b.Reachable("A1") || b.Reachable("B2") {
		t.Fatal("Reachable: want A1 only")
	}
	c.Disconnect(100)
	waitFor(t, "A1 unreachable", func() bool { return !b.Reachable("A1") })

	// The session comes back with its subscription, without a SUBSCRIBE.
	connect(t, url, "A1", persistent)
	waitFor(t, "A1 ready again", func() bool { return ready.count("A1") == 2 })
	if !b.Reachable("A1") {
		t.Fatal("A1 not reachable after resuming its session")
	}
	time.Sleep(50 * time.Millisecond)
	ready.mu.Lock()
	got := slices.DeleteFunc(slices.Clone(ready.units), func(u string) bool { return u == "A1" })
	ready.mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("ready for %v", got)
	}
}
