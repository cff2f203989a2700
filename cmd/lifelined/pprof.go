package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves Go's profiles (/debug/pprof/) on a listener of its
// own, never on the API's: it is off unless --pprof-listen names an
// address, and that address is loopback unless it names a host.
type pprofServer struct {
	ln  net.Listener
	srv *http.Server
}

// pprofAddr is the address --pprof-listen binds: a bare port (":6060")
// is on loopback; a host given explicitly ("0.0.0.0:6060", "[::1]:6060")
// is kept.
func pprofAddr(flag string) (string, error) {
	host, port, err := net.SplitHostPort(flag)
	if err != nil || port == "" {
		return "", fmt.Errorf("--pprof-listen %q: want [host]:port, e.g. :6060 (loopback) or 10.0.0.5:6060", flag)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

func newPprof(flag string, log *slog.Logger) (*pprofServer, error) {
	addr, err := pprofAddr(flag)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("profiling endpoint on: anyone who reaches it can read the server's memory profile and stall it with traces", "addr", ln.Addr().String())
	return &pprofServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}, nil
}

// Addr is the address the profiles are served on.
func (p *pprofServer) Addr() net.Addr { return p.ln.Addr() }

// Run serves until ctx is done. A profile being taken is cut short.
func (p *pprofServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(p.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("pprof: %w", err)
	case <-ctx.Done():
	}
	err := p.srv.Close()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return err
}

// Close releases the listener of a server that never ran.
func (p *pprofServer) Close() error { return p.ln.Close() }
