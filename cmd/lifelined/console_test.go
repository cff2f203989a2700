package main

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// chromium starts a real headless Chromium. A missing browser fails the
// test: `make test` installs it (.ci/services.sh).
func chromium(tb testing.TB) context.Context {
	tb.Helper()
	path := os.Getenv("LIFELINE_CHROMIUM")
	if path == "" {
		p, err := exec.LookPath("chromium")
		if err != nil {
			tb.Fatal("chromium not found: run `make services` (installs Debian's chromium) or set LIFELINE_CHROMIUM")
		}
		path = p
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("start chromium %s: %v", path, err)
	}
	return ctx
}

// TestConsole opens the console of a demo server in headless Chromium:
// the map draws the units, they move, and a dispatcher can take a call,
// see the recommendations and assign the first one.
func TestConsole(t *testing.T) {
	m := startMain(t, func(c *Config) { c.Demo = true; c.DemoSpeedup = 20; c.DemoCalls = 0 })
	ctx := chromium(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(m.url("/")),
		chromedp.WaitVisible(css(`#login-form`)),
		chromedp.SetValue(css(`#login-username`), "admin"),
		chromedp.SetValue(css(`#login-password`), testAdminPassword),
		chromedp.Click(css(`#login-submit`)),
		chromedp.WaitVisible(css(`#conn.live`)),
	); err != nil {
		t.Fatalf("console did not go live: %v", err)
	}

	// Every demo unit reports and shows on the map.
	positions := func() map[string]string {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll('.unit[data-unit]')].map(e => [e.dataset.unit, e.dataset.lat + ',' + e.dataset.lon]))`))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	var first map[string]string
	waitFor(t, 30*time.Second, "18 units on the map", func() bool { first = positions(); return len(first) == 18 })
	waitFor(t, 30*time.Second, "units moving on the map", func() bool {
		moved := 0
		for id, p := range positions() {
			if first[id] != p {
				moved++
			}
		}
		return moved >= 3
	})

	if path := os.Getenv("LIFELINE_SCREENSHOT"); path != "" {
		_ = chromedp.Do(ctx, chromedp.Sleep(time.Second))
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}

	// Take a call in the county seat and assign the first recommendation.
	seat := [2]float64{29.1838, 104.9818}
	top := `#recs li[data-rec-unit][data-rank="1"]`
	if err := chromedp.Do(ctx,
		chromedp.SetValue(css(`#call-lat`), strconv.FormatFloat(seat[0], 'f', 6, 64)),
		chromedp.SetValue(css(`#call-lon`), strconv.FormatFloat(seat[1], 'f', 6, 64)),
		chromedp.SetValue(css(`#call-address`), "富世镇 console test"),
		chromedp.Click(css(`#call-submit`)),
		chromedp.WaitVisible(css(top+` button[data-assign]`)),
	); err != nil {
		t.Fatalf("take a call in the console: %v", err)
	}
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(css(top), "data-rec-unit"))
	if err != nil || !attr.Exists {
		t.Fatalf("first recommendation: %v", err)
	}
	unit := attr.Value
	if err := chromedp.Do(ctx,
		chromedp.Click(css(top+` button[data-assign]`)),
		chromedp.WaitVisible(css(`#assign-result`)),
	); err != nil {
		t.Fatalf("assign in the console: %v", err)
	}
	waitFor(t, 10*time.Second, "the assignment on the server", func() bool {
		u, err := m.Service.Unit(dispatch.System, unit)
		return err == nil && u.Status != "available"
	})
	result, _ := chromedp.Run(ctx, chromedp.Text(css(`#assign-result`)))
	t.Logf("assigned %s: %s", unit, result)
}
