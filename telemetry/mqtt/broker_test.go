package mqtt_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

func TestNewBrokerPortInUse(t *testing.T) {
	checkLeaks(t)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	next := strconv.Itoa(held.Addr().(*net.TCPAddr).Port + 1)

	tests := []struct {
		name   string
		listen string
		want   string
	}{
		{
			name:   "same address",
			listen: "127.0.0.1:" + port,
			want: "mqtt broker: listen 127.0.0.1:" + port + ": address already in use — another MQTT broker (Mosquitto?) holds the port; " +
				"pass --mqtt-listen 127.0.0.1:" + next + " or use it with --mqtt-url tcp://127.0.0.1:" + port,
		},
		{
			name:   "all interfaces over a loopback listener",
			listen: ":" + port,
			want: "mqtt broker: listen :" + port + ": address already in use — another MQTT broker (Mosquitto?) holds the port; " +
				"pass --mqtt-listen :" + next + " or use it with --mqtt-url tcp://127.0.0.1:" + port,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: tt.listen}, testLogger(t))
			if err == nil {
				b.Close()
				t.Fatal("NewBroker succeeded on a port in use")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n%s\nwant\n%s", got, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error %q is not one line", err)
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("errors.Is(%v, EADDRINUSE) = false", err)
			}
		})
	}
}

func TestBrokerAddr(t *testing.T) {
	checkLeaks(t)
	b, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	addr, ok := b.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 || !addr.IP.IsLoopback() {
		t.Fatalf("Addr() = %v, want a loopback address with a real port", b.Addr())
	}
	// Listening starts in NewBroker: a connection is accepted by the kernel
	// before Run.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial before Run: %v", err)
	}
	c.Close()
}

func TestBrokerClose(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		run  func(t *testing.T, b *mqtt.Broker)
	}{
		{"without Run", func(t *testing.T, b *mqtt.Broker) {
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if err := b.Run(context.Background()); err == nil {
				t.Error("Run after Close succeeded")
			}
		}},
		{"ends Run", func(t *testing.T, b *mqtt.Broker) {
			done := make(chan error, 1)
			go func() { done <- b.Run(context.Background()) }()
			waitFor(t, "the broker to serve", func() bool {
				c, err := net.DialTimeout("tcp", b.Addr().String(), time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			// A client connected, one that never sends CONNECT, and Close.
			connect(t, "tcp://"+b.Addr().String(), "lc-1")
			idle, err := net.Dial("tcp", b.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			time.Sleep(50 * time.Millisecond)
			b.Close()
			b.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(waitLong):
				t.Fatal("Run did not return after Close")
			}
			if _, err := net.DialTimeout("tcp", b.Addr().String(), time.Second); err == nil {
				t.Error("still accepting after Close")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := mqtt.NewBroker(mqtt.BrokerConfig{Listen: "127.0.0.1:0"}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			tt.run(t, b)
		})
	}
}

func TestBrokerMaxPacketSize(t *testing.T) {
	checkLeaks(t)
	const limit = 1024
	b := startBroker(t, mqtt.BrokerConfig{MaxPacketSize: limit})
	rec := &recorder{}
	start(t, mqtt.ClientConfig{URL: brokerURL(b), ClientID: "li-size"}, rec)
	topic := telemetry.Topic("U1", telemetry.KindGPS)

	tests := []struct {
		name     string
		size     int
		accepted bool
	}{
		{"under the limit", limit - 100, true},
		{"over the limit", 2 * limit, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lost := make(chan error, 1)
			pub := connect(t, brokerURL(b), "lp-size-"+strconv.Itoa(i), func(o *paho.ClientOptions) {
				o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
			})
			before := len(rec.messages())
			payload := strings.Repeat("x", tt.size)
			tok := pub.Publish(topic, 1, false, payload)

			if tt.accepted {
				if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
				got := rec.waitMessages(t, before+1)
				if last := got[len(got)-1]; last.Payload != payload {
					t.Errorf("handled a %d-byte payload, want %d bytes", len(last.Payload), tt.size)
				}
				return
			}
			select {
			case <-lost:
			case <-time.After(waitLong):
				t.Fatal("the broker kept a client that sent an oversized packet")
			}
			// Whatever arrives after the refusal must not be it.
			marker := connect(t, brokerURL(b), "lp-marker")
			publish(t, marker, topic, []byte("marker"))
			got := rec.waitMessages(t, before+1)
			if want := []message{{topic, "marker"}}; !slices.Equal(got[before:], want) {
				t.Errorf("after the oversized packet handled %d messages, want only the marker", len(got[before:]))
			}
		})
	}
}

func TestBrokerMaxClients(t *testing.T) {
	checkLeaks(t)
	b := startBroker(t, mqtt.BrokerConfig{MaxClients: 1})
	connect(t, brokerURL(b), "lc-first")

	c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL(b)).SetClientID("lc-second").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(waitLong) {
		t.Fatal("connect did not complete")
	}
	if tok.Error() == nil {
		c.Disconnect(100)
		t.Fatal("a second client connected with MaxClients 1")
	}
}

// credentials is an auth hook of the kind security will add: it admits
// one user.
type credentials struct {
	mochi.HookBase
	user, password string
}

func (h *credentials) ID() string { return "test-credentials" }

func (h *credentials) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *credentials) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	return string(pk.Connect.Username) == h.user && string(pk.Connect.Password) == h.password
}

func (h *credentials) OnACLCheck(*mochi.Client, string, bool) bool { return true }

func TestBrokerHooks(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name           string
		hooks          []mochi.Hook
		user, password string
		wantConnect    bool
	}{
		{name: "no hooks admit anyone", wantConnect: true},
		{name: "an auth hook replaces admit-all", hooks: []mochi.Hook{&credentials{user: "U1", password: "secret"}}},
		{name: "an auth hook admits its user", hooks: []mochi.Hook{&credentials{user: "U1", password: "secret"}},
			user: "U1", password: "secret", wantConnect: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBroker(t, mqtt.BrokerConfig{Hooks: tt.hooks})
			c := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL(b)).SetClientID("lh-" + strconv.Itoa(i)).
				SetUsername(tt.user).SetPassword(tt.password).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
			tok := c.Connect()
			if !tok.WaitTimeout(waitLong) {
				t.Fatal("connect did not complete")
			}
			if got := tok.Error() == nil; got != tt.wantConnect {
				t.Errorf("connected = %v (%v), want %v", got, tok.Error(), tt.wantConnect)
			}
			if tok.Error() == nil {
				c.Disconnect(100)
			}
		})
	}
}
