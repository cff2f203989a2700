package writable

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLatch(t *testing.T) {
	ctx := context.Background()
	l := &Latch{Every: time.Hour}
	probes := 0
	probe := func(err error) func(context.Context) error {
		return func(context.Context) error { probes++; return err }
	}
	full := errors.New("disk full")
	if err := l.Check(ctx, probe(nil)); err != nil || probes != 0 {
		t.Fatalf("clear latch: %v after %d probes, want nil without one", err, probes)
	}
	l.Fail(full)
	if err := l.Check(ctx, probe(full)); !errors.Is(err, full) || probes != 1 {
		t.Fatalf("set latch: %v after %d probes, want the failure after one", err, probes)
	}
	if err := l.Check(ctx, probe(nil)); !errors.Is(err, full) || probes != 1 {
		t.Fatalf("within Every: %v after %d probes, want the failure, no new probe", err, probes)
	}
	l.Every = time.Nanosecond
	if err := l.Check(ctx, probe(nil)); err != nil || probes != 2 {
		t.Fatalf("probe succeeds: %v after %d probes, want nil after two", err, probes)
	}
	if err := l.Check(ctx, probe(full)); err != nil || probes != 2 {
		t.Fatalf("cleared: %v after %d probes", err, probes)
	}
}
