package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch/geojson"
	"github.com/lifeline-ems/lifeline/dispatch/simarea"
	"github.com/lifeline-ems/lifeline/telemetry/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

// run runs the simulator with the command-line arguments args until ctx is
// done or --duration has passed, then prints the fleet's stats on stdout.
// Logs go to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url        = fs.String("mqtt-url", "tcp://127.0.0.1:1883", "MQTT broker the terminals connect to")
		areaPath   = fs.String("area", "", "area file (docs/AREA.md); empty for the built-in demo area")
		units      = fs.Int("units", 0, "simulate the first `N` units of the area; 0 for all")
		interval   = fs.Duration("interval", 5*time.Second, "GPS fix interval")
		speedup    = fs.Float64("speedup", 1, "time compression of drives, time on scene and at hospital")
		batch      = fs.Int("batch", 1, "fixes per gps message; more than 1 simulates store-and-forward")
		videoEvery = fs.Duration("video-every", 30*time.Second, "video status interval")
		wander     = fs.Bool("wander", true, "idle units make short repositioning drives")
		seed       = fs.Uint64("seed", 0, "random seed; 0 picks one from the clock")
		duration   = fs.Duration("duration", 0, "stop after this long; 0 runs until interrupted")
		prefix     = fs.String("client-prefix", "", "MQTT client id prefix (client id = prefix + unit id; a secured broker wants none)")
		logLevel   = fs.String("log-level", "info", "debug, info, warn or error")
		credsFile  = fs.String("credentials", "", "JSON file of unit passwords, {\"FS-01\":\"...\"}, for a broker that checks them")
		provision  = fs.String("provision", "", "lifelined URL (e.g. http://localhost:8080): sign in as --admin-user with LIFELINE_ADMIN_PASSWORD and issue each simulated unit new credentials (this ROTATES them: for test systems)")
		adminUser  = fs.String("admin-user", "admin", "who signs in for --provision")
	)
	if err := parse(fs, args, os.LookupEnv); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	switch {
	case *units < 0:
		return fmt.Errorf("--units %d: want 0 (all) or more", *units)
	case *interval <= 0 || *videoEvery <= 0:
		return errors.New("--interval and --video-every must be positive")
	case !(*speedup > 0):
		return fmt.Errorf("--speedup %v: want more than 0", *speedup)
	case *batch < 1:
		return fmt.Errorf("--batch %d: want 1 or more", *batch)
	case *duration < 0:
		return fmt.Errorf("--duration %v: want 0 (until interrupted) or more", *duration)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	area := geojson.Demo()
	if *areaPath != "" {
		var err error
		if area, err = geojson.LoadFile(*areaPath); err != nil {
			return err
		}
	}
	w, err := simarea.World(area, *units)
	if err != nil {
		return fmt.Errorf("--units %d: %w", *units, err)
	}
	creds, err := credentials(ctx, *credsFile, *provision, *adminUser, w)
	if err != nil {
		return err
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	logger.Info("fleetsim", "area", area.Name, "units", len(w.Units), "seed", *seed)
	fleet := sim.New(w, sim.Config{
		URL: *url, Interval: *interval, Speedup: *speedup, Batch: *batch, VideoEvery: *videoEvery,
		Wander: *wander, Seed: *seed, ClientPrefix: *prefix, Credentials: creds,
	}, logger)
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	err = fleet.Run(ctx)
	fmt.Fprintln(stdout, fleet.Stats())
	return err
}

// parse parses args into fs, then sets every flag not given there from
// its environment variable, if set (see envName).
func parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookup(envName(f.Name)); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// envName returns the environment variable of a flag: LIFELINE_ and the
// name in upper snake case.
func envName(flag string) string {
	return "LIFELINE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
