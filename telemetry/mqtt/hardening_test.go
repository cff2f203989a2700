package mqtt_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/lifeline-ems/lifeline/telemetry"
	"github.com/lifeline-ems/lifeline/telemetry/mqtt"
)

// TestBrokerRefusedPublishLoop is the log flood of issue 7: a valid
// terminal publishing 250 KB at QoS 1 to another unit's topic and
// reconnecting, over and over. mochi logged each refusal at WARN with the
// whole packet, about 40 MB/s. Now no line carries the payload, refusals
// are logged a few times a minute, and the terminal is disconnected and
// then refused at CONNECT for a growing time.
func TestBrokerRefusedPublishLoop(t *testing.T) {
	checkLeaks(t)
	var logged syncBuffer
	s := startSecureLog(t, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo})))
	payload := []byte(strings.Repeat("PAYLOAD-OF-U1 ", 250_000/14))
	topic := telemetry.Topic("U2", telemetry.KindGPS)

	var connects, refused int
	var refusal error
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		var lost <-chan error
		c, err := dial(t, s.url, "U1", login("U1", "pw-U1"), func(o *paho.ClientOptions) { lost = onLost(o) })
		if err != nil {
			refused++
			refusal = err
			continue
		}
		connects++
		c.Publish(topic, 1, false, payload)
		select {
		case <-lost:
		case <-time.After(waitLong):
			t.Fatal("a refused QoS 1 publish did not end the MQTT 3.1.1 connection")
		}
		c.Disconnect(0)
	}
	t.Logf("%d connects, %d refused (%v), %d bytes of log", connects, refused, refusal, len(logged.String()))
	if refused == 0 || connects > 8 {
		t.Errorf("%d connects and %d refused in 3 s: want the client refused after a few", connects, refused)
	}
	if got := s.metrics.Denied(mqtt.DeniedPenalty); got == 0 {
		t.Error("lifeline_mqtt_denied_total{reason=penalty} = 0")
	}
	out := logged.String()
	if carries(out, "PAYLOAD-OF-U1") {
		t.Errorf("the log carries the payload (%d bytes of log)", len(out))
	}
	if len(out) > 16<<10 {
		t.Errorf("%d bytes of log for one client in 3 s:\n%.4000s", len(out), out)
	}
	// Another unit is not slowed.
	publish(t, s.unit(t, "U2"), topic, []byte(`{}`))
}

// carries reports whether log holds marker as text or as the bytes a
// logged []byte shows ("[80 65 89 ...").
func carries(log, marker string) bool {
	return strings.Contains(log, marker) || strings.Contains(log, strings.Trim(fmt.Sprint([]byte(marker)), "[]"))
}

// rawV5 is an MQTT 5 client made of mochi's packet codec, for what paho
// (MQTT 3.1.1) cannot say.
type rawV5 struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialV5(t *testing.T, addr, id, user, password string) (*rawV5, packets.Packet) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawV5{conn: conn, r: bufio.NewReader(conn)}
	c.send(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: id, Clean: true, Keepalive: 30,
			Username: []byte(user), UsernameFlag: true, Password: []byte(password), PasswordFlag: true}})
	return c, c.read(t)
}

func (c *rawV5) send(t *testing.T, pk packets.Packet) {
	t.Helper()
	pk.ProtocolVersion = 5
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	}
	if err == nil {
		_, err = c.conn.Write(buf.Bytes())
	}
	if err != nil {
		t.Fatalf("send %v: %v", pk.FixedHeader.Type, err)
	}
}

// read returns the next packet, or one of type 0 when the broker closed
// the connection.
func (c *rawV5) read(t *testing.T) packets.Packet {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var pk packets.Packet
	b, err := c.r.ReadByte()
	if errors.Is(err, io.EOF) {
		return pk
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		t.Fatal(err)
	}
	n, _, err := packets.DecodeLength(c.r)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatal(err)
	}
	pk.ProtocolVersion, pk.FixedHeader.Remaining = 5, n
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// TestBrokerSysPublish: a QoS 1 publish to $SYS was dropped without an
// answer, leaving the terminal waiting for its PUBACK for ever. An MQTT 5
// client now gets PUBACK "topic name invalid", an MQTT 3.1.1 one is
// disconnected, as for any publish it may not make.
func TestBrokerSysPublish(t *testing.T) {
	checkLeaks(t)
	s := startSecure(t)

	c, ack := dialV5(t, s.b.Addr().String(), "U1", "U1", "pw-U1")
	if ack.FixedHeader.Type != packets.Connack || ack.ReasonCode != 0 {
		t.Fatalf("MQTT 5 connect: %+v", ack)
	}
	c.send(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "$SYS/broker/x", PacketID: 9, Payload: []byte("x")})
	if got := c.read(t); got.FixedHeader.Type != packets.Puback || got.PacketID != 9 || got.ReasonCode != packets.ErrTopicNameInvalid.Code {
		t.Fatalf("MQTT 5 QoS 1 publish to $SYS: got %v id %d reason %#x, want PUBACK 9 %#x", got.FixedHeader.Type, got.PacketID, got.ReasonCode, packets.ErrTopicNameInvalid.Code)
	}
	// The connection goes on.
	c.send(t, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: telemetry.Topic("U1", telemetry.KindGPS), PacketID: 10, Payload: []byte("{}")})
	if got := c.read(t); got.FixedHeader.Type != packets.Puback || got.PacketID != 10 || got.ReasonCode != 0 {
		t.Fatalf("MQTT 5 publish after the refusal: got %v id %d reason %#x", got.FixedHeader.Type, got.PacketID, got.ReasonCode)
	}

	var lost <-chan error
	u2 := s.unit(t, "U2", func(o *paho.ClientOptions) { lost = onLost(o) })
	u2.Publish("$SYS/broker/x", 1, false, "x")
	select {
	case <-lost:
	case <-time.After(waitLong):
		t.Fatal("MQTT 3.1.1 QoS 1 publish to $SYS: neither answered nor disconnected")
	}
	if got := s.metrics.Denied(mqtt.DeniedTopic); got != 2 {
		t.Errorf("lifeline_mqtt_denied_total{reason=topic} = %v, want 2", got)
	}
}
