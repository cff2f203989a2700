package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// of returns the payloads under key of the console's messages of type typ.
func (c *console) of(typ, key string) []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []json.RawMessage
	for _, m := range c.msgs {
		var t string
		_ = json.Unmarshal(m["type"], &t)
		if t == typ {
			out = append(out, m[key])
		}
	}
	return out
}

// soon is how soon a reconnected terminal must get what waited for it:
// well before the courier's sweep (every 5 s), so that it is the
// reconnect that brings it.
const soon = 2 * time.Second

// commandWithin waits up to d for the next command of type typ.
func (t *terminal) commandWithin(tb testing.TB, typ string, d time.Duration) telemetry.Command {
	tb.Helper()
	deadline := time.After(d)
	for {
		select {
		case c := <-t.cmds:
			if c.Type == typ {
				return c
			}
		case <-deadline:
			tb.Fatalf("terminal %s: no %s command within %s", t.unit, typ, d)
		}
	}
}

// noCommand fails tb if the terminal gets a command within d.
func (t *terminal) noCommand(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case c := <-t.cmds:
		tb.Fatalf("terminal %s got %+v, want nothing", t.unit, c)
	case <-time.After(d):
	}
}

// call creates an incident at p as the administrator.
func (s *server) call(tb testing.TB, p orb.Point, category string) dispatch.Incident {
	tb.Helper()
	var inc dispatch.Incident
	if code := s.do(tb, "POST", "/api/v1/incidents", map[string]any{
		"location": map[string]float64{"lat": p.Lat(), "lon": p.Lon()}, "priority": 1, "category": category, "address": "county seat",
	}, &inc); code != http.StatusCreated {
		tb.Fatalf("create incident: %d", code)
	}
	return inc
}

// assign assigns unit to inc as the administrator.
func (s *server) assign(tb testing.TB, inc, unit string) dispatch.Assignment {
	tb.Helper()
	var a dispatch.Assignment
	if code := s.do(tb, "POST", "/api/v1/incidents/"+inc+"/assignments", map[string]string{"unit": unit}, &a); code != http.StatusCreated {
		tb.Fatalf("assign %s: %d", unit, code)
	}
	return a
}

var seat = orb.Point{104.9818, 29.1838}

// TestAckTimeoutOverMQTT: a terminal that gets its assign and never
// acknowledges it raises an ack_timeout alert on the console; with policy
// reassign its terminal gets cancel and the next unit's gets assign.
func TestAckTimeoutOverMQTT(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			mutate := st.mutate(t)
			m := startMain(t, func(c *Config) {
				if mutate != nil {
					mutate(c)
				}
				c.AckTimeout, c.AckPolicy = 500*time.Millisecond, "reassign"
			})
			con := dialConsole(t, m)
			waitFor(t, 5*time.Second, "snapshot", func() bool { return con.first() == "snapshot" })
			u1, u2 := m.Area.Units[0].ID, m.Area.Units[1].ID
			t1, t2 := newTerminal(t, m, u1), newTerminal(t, m, u2)
			p1, p2 := orb.Point{seat[0] + 0.002, seat[1]}, orb.Point{seat[0] + 0.004, seat[1]}
			t1.fix(t, p1)
			t2.fix(t, p2)
			waitFor(t, 2*time.Second, "both fixes", func() bool { return con.unitAt(u1, p1) && con.unitAt(u2, p2) })
			inc := m.call(t, seat, "chest_pain")
			a := m.assign(t, inc.ID, u1)
			if c := t1.command(t, telemetry.CommandAssign); c.Assignment != a.ID {
				t.Fatalf("assign %+v", c)
			}
			// t1 stays silent.
			waitFor(t, 5*time.Second, "an ack_timeout alert", func() bool {
				for _, al := range con.alerts() {
					if al.Kind == dispatch.AlertAckTimeout {
						return true
					}
				}
				return false
			})
			var al dispatch.Alert // the first: the next unit may time out too on a slow machine
			for _, x := range con.alerts() {
				if x.Kind == dispatch.AlertAckTimeout {
					al = x
					break
				}
			}
			if al.Unit != u1 || al.Assignment != a.ID || al.Next == nil || al.Next.Unit != u2 {
				t.Fatalf("alert %+v, want U1's assignment with %s next", al, u2)
			}
			if c := t1.command(t, telemetry.CommandCancel); c.Assignment != a.ID {
				t.Fatalf("cancel %+v, want for %s", c, a.ID)
			}
			c2 := t2.command(t, telemetry.CommandAssign)
			b, _ := json.Marshal(map[string]any{"assignment": c2.Assignment, "accepted": true})
			t2.publish(t, telemetry.KindAck, b, false)
			var as []dispatch.Assignment
			var v struct{ Assignments []dispatch.Assignment }
			m.do(t, "GET", "/api/v1/incidents/"+inc.ID, nil, &v)
			for _, x := range v.Assignments {
				if x.Status.Active() {
					as = append(as, x)
				}
			}
			if len(as) != 1 || as[0].Unit != u2 || as[0].ID != c2.Assignment {
				t.Fatalf("active assignments %+v, want only %s's, the one it was sent", as, u2)
			}
		})
	}
}

// TestCommandsWaitForTheTerminal: a command for a terminal that is away
// waits in the record, across a server restart, and reaches it when it
// reconnects; a call assigned and cancelled while it was away never does.
func TestCommandsWaitForTheTerminal(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			mutate := st.mutate(t)
			dir := t.TempDir()
			config := func(c *Config) {
				if mutate != nil {
					mutate(c)
				}
				c.DataDir = dir
			}
			m := startMain(t, config)
			u1, u2 := m.Area.Units[0].ID, m.Area.Units[1].ID
			for _, u := range []string{u1, u2} {
				tm := newTerminal(t, m, u)
				tm.fix(t, seat)
				waitFor(t, 2*time.Second, u+" online", func() bool { return getUnit(t, m, u).Position != nil })
				tm.c.Disconnect(100) // away: no will on a clean disconnect, so still "online"
			}
			inc := m.call(t, seat, "trauma")
			a := m.assign(t, inc.ID, u1)
			other := m.call(t, orb.Point{seat[0] + 0.01, seat[1]}, "other")
			b := m.assign(t, other.ID, u2)
			if code := m.do(t, "DELETE", "/api/v1/incidents/"+other.ID+"/assignments/"+b.ID, nil, nil); code != http.StatusOK {
				t.Fatalf("stand down: %d", code)
			}

			// The server restarts; the terminals come back.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			m = startMain(t, config)
			t1 := newTerminal(t, m, u1)
			if c := t1.commandWithin(t, telemetry.CommandAssign, soon); c.Assignment != a.ID {
				t.Fatalf("after reconnecting: %+v, want the assign for %s", c, a.ID)
			}
			t2 := newTerminal(t, m, u2)
			t2.noCommand(t, 500*time.Millisecond)

			// Away again while stood down: the cancel waits for it too.
			t1.c.Disconnect(100)
			if code := m.do(t, "DELETE", "/api/v1/incidents/"+inc.ID+"/assignments/"+a.ID+"?reason=sent+another", nil, nil); code != http.StatusOK {
				t.Fatalf("stand down: %d", code)
			}
			t1 = newTerminal(t, m, u1)
			if c := t1.commandWithin(t, telemetry.CommandCancel, soon); c.Assignment != a.ID || c.Reason != "sent another" {
				t.Fatalf("after reconnecting: %+v, want the cancel for %s", c, a.ID)
			}
		})
	}
}

// TestPrearrivalOverMQTT: when the crew presses transporting, the console
// gets a prearrival message for the advised hospital, with the patient's
// category and priority and an ETA.
func TestPrearrivalOverMQTT(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			m := startMain(t, st.mutate(t))
			con := dialConsole(t, m)
			waitFor(t, 5*time.Second, "snapshot", func() bool { return con.first() == "snapshot" })
			u := m.Area.Units[0].ID
			tm := newTerminal(t, m, u)
			tm.fix(t, seat)
			waitFor(t, 2*time.Second, "fix", func() bool { return con.unitAt(u, seat) })
			inc := m.call(t, seat, "stroke")
			a := m.assign(t, inc.ID, u)
			tm.command(t, telemetry.CommandAssign)
			b, _ := json.Marshal(map[string]any{"assignment": a.ID, "accepted": true})
			tm.publish(t, telemetry.KindAck, b, false)
			for _, s := range []string{"en_route", "on_scene", "transporting"} {
				tm.press(t, s, inc.ID)
			}
			waitFor(t, 5*time.Second, "a prearrival message", func() bool { return len(con.of("prearrival", "prearrival")) > 0 })
			var p dispatch.Prearrival
			if err := json.Unmarshal(con.of("prearrival", "prearrival")[0], &p); err != nil {
				t.Fatal(err)
			}
			var d dispatch.Destinations
			if code := m.do(t, "GET", "/api/v1/incidents/"+inc.ID+"/destinations", nil, &d); code != http.StatusOK || d.Advice == nil {
				t.Fatalf("destinations: %d %+v", code, d)
			}
			if p.Incident != inc.ID || p.Unit != u || p.Hospital != d.Advice.Hospital || p.Category != dispatch.CatStroke || p.Priority != 1 || p.ETAS <= 0 || p.At.IsZero() {
				t.Fatalf("prearrival %+v, want %s advised (%s)", p, d.Advice.Hospital, d.Advice.Reasons)
			}
		})
	}
}

// TestRedeliverOnOnlineThroughMosquitto: on an external broker the server
// does not see terminals connect; a terminal's online report makes it
// send what waited for it.
func TestRedeliverOnOnlineThroughMosquitto(t *testing.T) {
	url := os.Getenv("LIFELINE_TEST_MQTT_URL")
	if url == "" {
		url = "tcp://127.0.0.1:1883"
	}
	ingestID := fmt.Sprintf("lifelined-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(ingestID).SetCleanSession(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
	})
	m := startMain(t, func(c *Config) { c.MQTTURL, c.MQTTListen, c.MQTTClientID = url, "", ingestID })
	unit := "FS-08"
	connect := func() (paho.Client, chan telemetry.Command) {
		cmds := make(chan telemetry.Command, 4)
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("test-%s-%d", unit, time.Now().UnixNano())).SetCleanSession(true))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect to Mosquitto at %s (make test starts it): %v", url, tok.Error())
		}
		if tok := c.Subscribe(telemetry.Topic(unit, telemetry.KindCmd), 1, func(_ paho.Client, msg paho.Message) {
			if cmd, err := telemetry.DecodeCommand(msg.Payload()); err == nil {
				cmds <- cmd
			}
		}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return c, cmds
	}
	publish := func(c paho.Client, k telemetry.Kind, payload []byte, retained bool) {
		if tok := c.Publish(telemetry.Topic(unit, k), 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	c, _ := connect()
	publish(c, telemetry.KindGPS, telemetry.EncodeFixes(telemetry.Fix{Seq: 1, Time: time.Now().UTC(), Lat: seat.Lat(), Lon: seat.Lon()}), false)
	waitFor(t, 5*time.Second, unit+" moved through Mosquitto", func() bool { return getUnit(t, m, unit).Position != nil })
	publish(c, telemetry.KindOnline, []byte("offline"), true) // as its will would
	c.Disconnect(100)
	waitFor(t, 5*time.Second, unit+" offline", func() bool { return !getUnit(t, m, unit).Online })
	inc := m.call(t, seat, "stroke")
	a := m.assign(t, inc.ID, unit)

	c, cmds := connect()
	defer func() {
		publish(c, telemetry.KindOnline, []byte(""), true) // clear the retained message
		c.Disconnect(100)
	}()
	publish(c, telemetry.KindOnline, []byte("online"), true)
	select {
	case cmd := <-cmds:
		if cmd.Type != telemetry.CommandAssign || cmd.Assignment != a.ID {
			t.Fatalf("command %+v, want the assign for %s", cmd, a.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no assign after the terminal came online again")
	}
}
