package mqtt_test

import (
	"bytes"
	"context"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// TestMosquittoConfig runs the real Mosquitto on deploy/mosquitto.conf and
// deploy/mosquitto-acl and checks that they enforce the rules the embedded
// broker's Auth does: deny by default, each unit its own topics, no session
// takeover, only lifelined reads the uplink.
func TestMosquittoConfig(t *testing.T) {
	checkLeaks(t)
	url := startMosquitto(t, map[string]string{
		"U1": "pw-U1", "U2": "pw-U2", serverUser: serverPassword,
	})

	// lifelined reads the uplink through a shared subscription, as several
	// instances would (the plain filter is the same ACL check).
	uplink := make(chan message, 64)
	server := connect(t, url, serverUser, login(serverUser, serverPassword))
	shared := "$share/lifelined/" + telemetry.UplinkFilter
	tok := server.Subscribe(shared, 1, func(_ paho.Client, m paho.Message) {
		uplink <- message{m.Topic(), string(m.Payload())}
	})
	if !tok.WaitTimeout(waitLong) || tok.Error() != nil || subackCode(t, tok, shared) != 1 {
		t.Fatalf("lifelined subscribe %s: %v", shared, tok.Error())
	}
	// expectUplink checks what lifelined receives next: exactly want. The
	// uplink filter matches cmd topics too: those are skipped.
	expectUplink := func(t *testing.T, want ...message) {
		t.Helper()
		var got []message
		for {
			select {
			case m := <-uplink:
				if !strings.HasSuffix(m.Topic, "/cmd") {
					got = append(got, m)
				}
				continue
			case <-time.After(300 * time.Millisecond):
			}
			break
		}
		if !slices.Equal(got, want) {
			t.Errorf("lifelined received %v, want %v", got, want)
		}
	}

	var u2Lost <-chan error
	commands := make(chan message, 16)
	u2 := connect(t, url, "U2", login("U2", "pw-U2"), func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetWill(telemetry.Topic("U2", telemetry.KindOnline), `"offline"`, 1, true)
		u2Lost = onLost(o)
	})
	cmdTopic := telemetry.Topic("U2", telemetry.KindCmd)
	if tok := u2.Subscribe(cmdTopic, 1, func(_ paho.Client, m paho.Message) {
		commands <- message{m.Topic(), string(m.Payload())}
	}); !tok.WaitTimeout(waitLong) || tok.Error() != nil || subackCode(t, tok, cmdTopic) != 1 {
		t.Fatalf("unit subscribe to its cmd: %v", tok.Error())
	}

	t.Run("unit reports", func(t *testing.T) {
		gps := message{telemetry.Topic("U2", telemetry.KindGPS), `{"seq":1}`}
		publish(t, u2, gps.Topic, []byte(gps.Payload))
		expectUplink(t, gps)
	})
	t.Run("lifelined commands", func(t *testing.T) {
		publish(t, server, cmdTopic, []byte(`{"type":"cancel","assignment":"ASG-1"}`))
		select {
		case <-commands:
		case <-time.After(waitLong):
			t.Fatal("the unit received no command")
		}
	})

	refused := []struct {
		name string
		id   string
		opts func(*paho.ClientOptions)
	}{
		{"anonymous", "U1", func(*paho.ClientOptions) {}},
		{"wrong password", "U1", login("U1", "guess")},
		{"unknown unit", "U9", login("U9", "pw-U9")},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			if _, err := dial(t, url, tt.id, tt.opts); err == nil {
				t.Error("connected")
			}
		})
	}

	// Mosquitto 2.0 accepts any will at CONNECT and checks it against the
	// ACL when it would publish it.
	t.Run("wills", func(t *testing.T) {
		for _, tt := range []struct {
			unit      string
			published bool
		}{{"U1", true}, {"U2", false}} {
			will := message{telemetry.Topic(tt.unit, telemetry.KindOnline), `"offline"`}
			var conn atomic.Pointer[net.Conn]
			connect(t, url, "U1", login("U1", "pw-U1"), func(o *paho.ClientOptions) {
				o.SetWill(will.Topic, will.Payload, 1, false).
					SetCustomOpenConnectionFn(func(u *neturl.URL, _ paho.ClientOptions) (net.Conn, error) {
						c, err := net.Dial("tcp", u.Host)
						if err == nil {
							conn.Store(&c)
						}
						return c, err
					})
			})
			(*conn.Load()).Close() // the link drops: the will is due
			if tt.published {
				expectUplink(t, will)
			} else {
				expectUplink(t)
			}
		}
	})

	t.Run("no session takeover", func(t *testing.T) {
		// Connecting with U2's client id and U1's credentials is allowed,
		// but as client U1: U2 keeps its connection.
		if _, err := dial(t, url, "U2", login("U1", "pw-U1")); err != nil {
			t.Fatalf("U1 refused: %v", err)
		}
		if _, err := dial(t, url, "U2", func(*paho.ClientOptions) {}); err == nil {
			t.Error("connected as U2 with no credentials")
		}
		select {
		case err := <-u2Lost:
			t.Fatalf("U2 lost its connection: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
	})

	t.Run("unit publishes as another", func(t *testing.T) {
		u1 := connect(t, url, "U1", login("U1", "pw-U1"))
		for _, topic := range []string{
			telemetry.Topic("U2", telemetry.KindGPS),
			telemetry.Topic("U2", telemetry.KindStatus),
			telemetry.Topic("U1", telemetry.KindCmd),
			telemetry.Topic("U2", telemetry.KindCmd),
		} {
			// Mosquitto acknowledges a denied MQTT 3.1.1 publish and drops it.
			u1.Publish(topic, 1, false, `{"seq":666}`).WaitTimeout(waitLong)
		}
		expectUplink(t)
		select {
		case m := <-commands:
			t.Errorf("U2 received a command from U1: %v", m)
		default:
		}
	})

	t.Run("lifelined publishes a unit's report", func(t *testing.T) {
		server.Publish(telemetry.Topic("U2", telemetry.KindGPS), 1, false, `{"seq":667}`).WaitTimeout(waitLong)
		expectUplink(t)
	})

	// Mosquitto 2.0 grants these subscriptions (SUBACK QoS 1) and filters
	// every delivery by the read ACL instead: nothing arrives.
	t.Run("unit subscribes beyond its cmd", func(t *testing.T) {
		u1 := connect(t, url, "U1", login("U1", "pw-U1"))
		received := make(chan message, 16)
		for _, f := range []string{
			"#", telemetry.Prefix + "+/gps", telemetry.UplinkFilter, telemetry.Topic("U2", telemetry.KindCmd),
			telemetry.Topic("U2", telemetry.KindGPS), "$SYS/#", "$share/g/" + telemetry.UplinkFilter,
		} {
			tok := u1.Subscribe(f, 1, func(_ paho.Client, m paho.Message) {
				received <- message{m.Topic(), string(m.Payload())}
			})
			if !tok.WaitTimeout(waitLong) || tok.Error() != nil {
				t.Fatalf("subscribe %s: %v", f, tok.Error())
			}
		}
		publish(t, u2, telemetry.Topic("U2", telemetry.KindGPS), []byte(`{"seq":2}`))
		publish(t, server, telemetry.Topic("U2", telemetry.KindCmd), []byte(`{"type":"cancel","assignment":"ASG-2"}`))
		select {
		case m := <-received:
			t.Errorf("U1 received %v", m)
		case <-time.After(300 * time.Millisecond):
		}
		<-commands
		expectUplink(t, message{telemetry.Topic("U2", telemetry.KindGPS), `{"seq":2}`})
	})
}

// startMosquitto runs mosquitto on deploy/mosquitto.conf and
// deploy/mosquitto-acl, with the given users, on a free loopback port, until
// the test ends. Like the other external-broker tests it fails, rather than
// skips, when Mosquitto is not installed.
func startMosquitto(t *testing.T, users map[string]string) (url string) {
	t.Helper()
	bin, passwd := lookMosquitto(t, "mosquitto"), lookMosquitto(t, "mosquitto_passwd")
	dir := t.TempDir()
	pwFile, aclFile := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	if err := os.WriteFile(pwFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for u, p := range users {
		if out, err := exec.Command(passwd, "-b", pwFile, u, p).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl, err := os.ReadFile("../../deploy/mosquitto-acl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(aclFile, acl, 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../../deploy/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"/etc/mosquitto/lifeline.passwd", pwFile,
		"/etc/mosquitto/lifeline.acl", aclFile,
		"/var/lib/mosquitto/", dir+"/",
		"\nlistener 1883\n", "\nlistener "+port+" "+host+"\n",
	).Replace(string(conf))
	for _, want := range []string{pwFile, aclFile, "listener " + port} {
		if !strings.Contains(text, want) {
			t.Fatalf("deploy/mosquitto.conf changed shape: no %q after rewriting", want)
		}
	}
	text += "\nuser " + me.Username + "\nlog_dest stderr\n"
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	cmd := exec.CommandContext(ctx, bin, "-c", confFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("mosquitto's log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(waitLong)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "tcp://" + addr
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("mosquitto exited (%v):\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s:\n%s", addr, logs.String())
		}
	}
}

func lookMosquitto(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s is not installed: this test runs the real Mosquitto on deploy/mosquitto.conf (make services installs it)", name)
	return ""
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
