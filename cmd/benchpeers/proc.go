package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started: lifelined, a peer, or the
// harness's own baseline hub. Every proc is stopped by stopAll, whatever
// happens; the harness never signals a process it did not start.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
	log  *tail
}

var (
	procsMu sync.Mutex
	procs   []*proc
)

// start runs bin with args in its own process group, its output kept in a
// short tail for error messages (and copied to w when w is not nil).
func start(name, bin string, args []string, env []string, w io.Writer) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), log: &tail{max: 8 << 10}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	var out io.Writer = p.log
	if w != nil {
		out = io.MultiWriter(p.log, w)
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procsMu.Lock()
	procs = append(procs, p)
	procsMu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and an error saying how
// with the end of its output.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.log.String())
	default:
		return nil
	}
}

// stop ends the process: SIGTERM to its group, SIGKILL after a grace.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// stopAll stops every process the harness started, newest first.
func stopAll() {
	procsMu.Lock()
	ps := procs
	procs = nil
	procsMu.Unlock()
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// rssMB returns the resident set size of the process in MiB, or 0 when
// it cannot be read.
func (p *proc) rssMB() float64 {
	if p == nil || p.exited() != nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	return waitUntil(ctx, p, timeout, "a listener on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// waitHTTP waits until url answers 200 or p exits.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	return waitUntil(ctx, p, timeout, url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// waitUntil polls ok until it holds, p exits, ctx ends or timeout passes.
func waitUntil(ctx context.Context, p *proc, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			name := "condition"
			if p != nil {
				name = p.name
			}
			return fmt.Errorf("%s: no %s after %s", name, what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// findBinary returns the first of the candidates that is an executable
// file, each either a path or a name looked up on PATH.
func findBinary(candidates ...string) (string, error) {
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		tried = append(tried, c)
		if strings.ContainsRune(c, filepath.Separator) {
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return c, nil
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found (looked for %s)", strings.Join(tried, ", "))
}

// errSkip marks a pair that could not run because a peer is missing; the
// report says why and the other pairs go on.
var errSkip = errors.New("skipped")

// skipf returns an errSkip with a reason.
func skipf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSkip, fmt.Sprintf(format, args...))
}
