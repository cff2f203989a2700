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
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"hub", "-mqtt", broker, "-listen", addr}
	if decodeOnly {
		args = append(args, "-decode-only")
	}
	p, err := start("benchpeers hub", exe, args, nil, log)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, p, addr, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &peer{p: p, addr: addr}, nil
}

// hubUnit is the baseline's unit update: what a console needs of a fix,
// in the shape of Lifeline's unit message.
type hubUnit struct {
	Type string `json:"type"`
	Unit struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Online   bool   `json:"online"`
		Stale    bool   `json:"stale"`
		Position struct {
			Lat      float64   `json:"lat"`
			Lon      float64   `json:"lon"`
			SpeedKmh float64   `json:"speed_kmh"`
			Heading  float64   `json:"heading"`
			HDOP     float64   `json:"hdop,omitempty"`
			Seq      uint64    `json:"seq"`
			Time     time.Time `json:"ts"`
		} `json:"position"`
		LastSeen time.Time `json:"last_seen"`
	} `json:"unit"`
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
		var u hubUnit
		u.Type = "unit"
		u.Unit.ID, u.Unit.Status, u.Unit.Online, u.Unit.LastSeen = unit, "available", true, now.UTC()
		u.Unit.Position.Lat, u.Unit.Position.Lon, u.Unit.Position.SpeedKmh = f.Lat, f.Lon, f.SpeedKmh
		u.Unit.Position.Heading, u.Unit.Position.HDOP, u.Unit.Position.Seq, u.Unit.Position.Time = f.Heading, f.HDOP, f.Seq, f.Time
		b, err := json.Marshal(u)
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
