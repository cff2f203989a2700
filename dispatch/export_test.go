package dispatch

import (
	"context"
	"time"
)

// SetSleep replaces how a slowed sign-in waits.
func SetSleep(a *Access, sleep func(ctx context.Context, d time.Duration) error) { a.sleep = sleep }
