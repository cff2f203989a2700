package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/lifeline-ems/lifeline/dispatch"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// startHub runs the baseline hub (this program, "hub") as a child process
// subscribed to broker. With decodeOnly it is the baseline of the ingest
// pairs instead: one subscriber that decodes every fix and nothing more.
func startHub(ctx context.Context, broker string, decodeOnly bool, log io.Writer) (*peer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startPeer(ctx, "benchpeers hub", exe, func(addr string) ([]string, error) {
		args := []string{"hub", "-mqtt", broker, "-listen", addr}
		if decodeOnly {
			args = append(args, "-decode-only")
		}
		return args, nil
	}, log)
}

// baseHub is the baseline websocket hub: every fix from the broker becomes
// one message, encoded once and queued to every console; a console whose
// queue of 1,024 is full is dropped.
type baseHub struct {
	decoded atomic.Int64 // fixes decoded, served on /count

	mu      sync.Mutex
	clients map[*websocket.Conn]chan *websocket.PreparedMessage
}

// hubCount reads how many fixes the hub at addr has decoded.
func hubCount(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int64
	_, err = fmt.Fscan(resp.Body, &n)
	return n, err
}

func (h *baseHub) broadcast(pm *websocket.PreparedMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, q := range h.clients {
		select {
		case q <- pm:
		default:
			delete(h.clients, c)
			close(q)
		}
	}
}

func (h *baseHub) serve(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	q := make(chan *websocket.PreparedMessage, 1024)
	h.mu.Lock()
	h.clients[c] = q
	h.mu.Unlock()
	go func() { // read to see the close
		defer func() {
			h.mu.Lock()
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(q)
			}
			h.mu.Unlock()
		}()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"snapshot","units":[]}`)); err != nil {
		return
	}
	for pm := range q {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WritePreparedMessage(pm); err != nil {
			return
		}
	}
}

// runHub is "benchpeers hub -mqtt URL -listen ADDR": the baseline hub,
// until SIGTERM.
func runHub(args []string) error {
	fs := flag.NewFlagSet("benchpeers hub", flag.ContinueOnError)
	broker := fs.String("mqtt", "", "MQTT broker to subscribe to")
	listen := fs.String("listen", "127.0.0.1:0", "websocket listen address")
	decodeOnly := fs.Bool("decode-only", false, "decode the fixes and count them, no websocket messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	h := &baseHub{clients: map[*websocket.Conn]chan *websocket.PreparedMessage{}}
	c, err := connect(*broker, "benchpeers-hub-"+randomHex(3), "", "")
	if err != nil {
		return err
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(telemetry.Prefix+"+/"+string(telemetry.KindGPS), 1, func(_ paho.Client, m paho.Message) {
		unit := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), telemetry.Prefix), "/"+string(telemetry.KindGPS))
		now := time.Now()
		fs, err := telemetry.DecodeFixes(unit, m.Payload(), now)
		if err != nil || len(fs) == 0 {
			return
		}
		h.decoded.Add(int64(len(fs)))
		if *decodeOnly {
			return
		}
		f := fs[len(fs)-1]
		// The update Lifeline sends, in Lifeline's own types.
		e := dispatch.Event{Type: dispatch.EventUnit, Unit: &dispatch.UnitState{
			Unit:   dispatch.Unit{ID: unit, Callsign: "B-" + strings.TrimPrefix(unit, "U"), Jurisdiction: countyID, Capabilities: []string{"bls"}},
			Status: dispatch.Available, Online: true, LastSeen: now.UTC(),
			Position: &dispatch.Position{Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, Heading: f.Heading, HDOP: f.HDOP, Seq: f.Seq, Time: f.Time},
		}}
		b, err := json.Marshal(e)
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
		if err != nil {
			return
		}
		h.broadcast(pm)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/live", h.serve)
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, h.decoded.Load()) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
