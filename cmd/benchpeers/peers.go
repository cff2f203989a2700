package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// peer is a server the harness started: its process and where it listens.
type peer struct {
	p    *proc
	addr string // host:port
}

func (p *peer) stop() {
	if p != nil && p.p != nil {
		p.p.stop()
	}
}

// startPeer runs bin on a free loopback port, with the arguments args
// makes for that address, and waits until it accepts connections.
func startPeer(ctx context.Context, name, bin string, args func(addr string) ([]string, error), log io.Writer) (*peer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	a, err := args(addr)
	if err != nil {
		return nil, err
	}
	p, err := start(name, bin, a, nil, log)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, p, addr, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &peer{p: p, addr: addr}, nil
}

// startMosquitto runs mosquitto with a minimal configuration: anonymous,
// no persistence, and queues deep enough that neither side of a pair
// loses a message to a full queue.
func startMosquitto(ctx context.Context, bin, dir string, log io.Writer) (*peer, error) {
	return startPeer(ctx, "mosquitto", bin, func(addr string) ([]string, error) {
		conf := filepath.Join(dir, "mosquitto-"+port(addr)+".conf")
		body := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n"+
			"max_queued_messages 1000000\nmax_inflight_messages 1000\nlog_dest stderr\nlog_type error\n", port(addr))
		return []string{"-c", conf}, os.WriteFile(conf, []byte(body), 0o644)
	}, log)
}

// startTile38 runs tile38-server with its data directory under dir and no
// append-only file.
func startTile38(ctx context.Context, bin, dir string, log io.Writer) (*peer, error) {
	return startPeer(ctx, "tile38-server", bin, func(addr string) ([]string, error) {
		return []string{"-h", "127.0.0.1", "-p", port(addr), "-d", filepath.Join(dir, "tile38-"+port(addr)), "--appendonly", "no", "-q"}, nil
	}, log)
}

// startRedis runs redis-server without persistence.
func startRedis(ctx context.Context, bin, dir string, log io.Writer) (*peer, error) {
	return startPeer(ctx, "redis-server", bin, func(addr string) ([]string, error) {
		return []string{"--port", port(addr), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning"}, nil
	}, log)
}

// connect connects a paho client; empty user means anonymous.
func connect(broker, clientID, user, password string) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(30 * time.Second).SetKeepAlive(60 * time.Second)
	if user != "" {
		opts.SetUsername(user).SetPassword(password)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		return nil, fmt.Errorf("mqtt connect %s as %s: timed out", broker, clientID)
	}
	if err := tok.Error(); err != nil {
		return nil, fmt.Errorf("mqtt connect %s as %s: %w", broker, clientID, err)
	}
	return c, nil
}

// window publishes at QoS 1 with at most n messages unacknowledged, and
// counts the acknowledged ones.
type window struct {
	toks  chan paho.Token
	done  chan struct{}
	acked atomic.Int64
	onAck func() // called for each acknowledged message, if set

	mu  sync.Mutex
	err error
}

func newWindow(n int, onAck func()) *window {
	w := &window{toks: make(chan paho.Token, n), done: make(chan struct{}), onAck: onAck}
	go func() {
		defer close(w.done)
		for tok := range w.toks {
			var err error
			if !tok.WaitTimeout(60 * time.Second) {
				err = errors.New("no PUBACK within 60 s")
			} else {
				err = tok.Error()
			}
			if err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
				continue
			}
			w.acked.Add(1)
			if w.onAck != nil {
				w.onAck()
			}
		}
	}()
	return w
}

// publish sends one message, waiting while the window is full.
func (w *window) publish(c paho.Client, topic string, payload []byte) {
	w.toks <- c.Publish(topic, 1, false, payload)
}

// close waits for every acknowledgement and returns the first failure.
func (w *window) close() error {
	close(w.toks)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
