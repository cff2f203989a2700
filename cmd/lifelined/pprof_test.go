package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestPprofAddr(t *testing.T) {
	tests := []struct {
		flag, want string
		bad        bool
	}{
		{flag: ":6060", want: "127.0.0.1:6060"},
		{flag: ":0", want: "127.0.0.1:0"},
		{flag: "0.0.0.0:6060", want: "0.0.0.0:6060"},
		{flag: "[::1]:6060", want: "[::1]:6060"},
		{flag: "10.0.0.5:6060", want: "10.0.0.5:6060"},
		{flag: "6060", bad: true},
		{flag: "localhost:", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			got, err := pprofAddr(tt.flag)
			if (err != nil) != tt.bad || got != tt.want {
				t.Fatalf("pprofAddr(%q) = %q, %v; want %q, error %v", tt.flag, got, err, tt.want, tt.bad)
			}
		})
	}
	c := DefaultConfig()
	if err := c.Parse("lifelined", []string{"--pprof-listen", "6060"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--pprof-listen") {
		t.Fatalf("--pprof-listen 6060: %v, want an error naming the flag", err)
	}
}

// get returns the status and body of a GET.
func getBody(tb testing.TB, url string) (int, string) {
	tb.Helper()
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestPprof: profiles are served only when --pprof-listen names an
// address, on a listener of their own (loopback for a bare port), never
// on the API's.
func TestPprof(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		if DefaultConfig().PprofListen != "" {
			t.Fatal("profiling is on by default")
		}
		m := startMain(t, nil)
		if m.PprofAddr() != nil {
			t.Fatalf("a profiling endpoint at %s", m.PprofAddr())
		}
		if code, body := getBody(t, m.url("/debug/pprof/")); code == http.StatusOK && strings.Contains(body, "goroutine") {
			t.Fatal("the API port serves profiles")
		}
	})
	t.Run("on, loopback", func(t *testing.T) {
		m := startMain(t, func(c *Config) { c.PprofListen = ":0" })
		host, _, _ := net.SplitHostPort(m.PprofAddr().String())
		if host != "127.0.0.1" {
			t.Fatalf("profiles on %s, want loopback for a bare port", m.PprofAddr())
		}
		base := "http://" + m.PprofAddr().String()
		if code, body := getBody(t, base+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
			t.Fatalf("/debug/pprof/: %d %.200s", code, body)
		}
		if code, _ := getBody(t, base+"/debug/pprof/cmdline"); code != http.StatusOK {
			t.Fatalf("/debug/pprof/cmdline: %d", code)
		}
		if code, body := getBody(t, m.url("/debug/pprof/")); code == http.StatusOK && strings.Contains(body, "goroutine") {
			t.Fatal("the API port serves profiles too")
		}
	})
}
