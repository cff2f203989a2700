package dispatch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// AdminUsername is the first administrator, created by Bootstrap.
const AdminUsername = "admin"

// generatedPwBytes is the size of a generated password: 24 characters of base64url.
const generatedPwBytes = 18

// AccessConfig holds what an Access is made of. Users, Auditor and Area
// are required.
type AccessConfig struct {
	Users   Users
	Auditor Auditor
	Area    *Area
	// SessionTTL is how long a sign-in lasts; default 12 h (a shift).
	SessionTTL time.Duration
	// SessionCache is how long a session found valid is trusted from
	// memory before the record is read again; default 5 s, negative
	// reads the record on every call. Sign-outs and the changes that end
	// sessions forget it at once (see Access.Watch for other servers).
	SessionCache time.Duration
	// Cost is the bcrypt cost of new password hashes; default
	// bcrypt.DefaultCost. Tests lower it to bcrypt.MinCost.
	Cost int
	// Events, when set, is told when sessions end, so that live feeds on
	// this server (and, through a shared bus, on others) close at once.
	Events Publisher
	// Registry is where the sign-in throttle's metric goes; may be nil.
	Registry prometheus.Registerer
	Now      func() time.Time
	Logger   *slog.Logger
}

// Access signs people and systems in and out, manages users and unit
// credentials, and checks the passwords of vehicle terminals. Passwords and
// tokens are stored only as hashes; every sign-in, failed sign-in and
// change of a user or credential is appended to the audit log.
//
// Its methods are grouped by idea: signing in and its throttle in
// login.go, sessions in session.go, users in users.go, terminal
// credentials in credentials.go, the audit trail in audit.go.
type Access struct {
	users    Users
	events   Publisher // may be nil
	area     *Area
	ttl      time.Duration
	cost     int
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error // a sign-in's wait; tests record it
	log      *slog.Logger
	audit    auditLog
	dummy    []byte // a hash to compare against for unknown users, for equal timing
	throttle *throttle
	cache    *principals // sessions found valid a moment ago
}

// NewAccess returns an Access on cfg.
func NewAccess(cfg AccessConfig) (*Access, error) {
	if cfg.Users == nil || cfg.Auditor == nil || cfg.Area == nil {
		return nil, fmt.Errorf("access: Users, Auditor and Area are required")
	}
	a := &Access{
		users: cfg.Users, events: cfg.Events, area: cfg.Area, ttl: cfg.SessionTTL, cost: cfg.Cost, now: cfg.Now, log: cfg.Logger,
		sleep: sleepCtx,
	}
	if a.ttl <= 0 {
		a.ttl = defaultTTL
	}
	if a.cost == 0 {
		a.cost = bcrypt.DefaultCost
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "access")
	a.throttle = newThrottle(a.log, cfg.Registry)
	a.cache = newPrincipals(cmp.Or(cfg.SessionCache, defaultSessionCacheTTL), cfg.Users)
	a.audit = auditLog{to: cfg.Auditor, log: a.log, now: a.now}
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomSecret(generatedPwBytes)), a.cost)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	a.dummy = dummy
	return a, nil
}

// Bootstrap makes sure the first administrator exists. When user admin is
// missing it is created with adminPassword or, when that is empty, with a
// generated password that is returned for the caller to print once. When
// admin exists nothing changes and oneTime is "".
func (a *Access) Bootstrap(ctx context.Context, adminPassword string) (oneTime string, err error) {
	_, err = a.users.User(ctx, AdminUsername)
	switch {
	case err == nil:
		if adminPassword != "" {
			a.log.Info("administrator exists: LIFELINE_ADMIN_PASSWORD is not applied again", "user", AdminUsername)
		}
		return "", nil
	case !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	pw := adminPassword
	if pw == "" {
		pw = randomSecret(generatedPwBytes)
	}
	if err := checkPassword(pw); err != nil {
		return "", fmt.Errorf("bootstrap: the administrator password (LIFELINE_ADMIN_PASSWORD): %w", err)
	}
	u, err := a.newUser(AdminUsername, pw, RoleAdmin, "")
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	if err := a.users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrConflict) { // another server bootstrapped first
			return "", nil
		}
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	a.Audit(ctx, System.Name, AuditUserCreate, AdminUsername, map[string]any{"role": RoleAdmin, "bootstrap": true, "generated": adminPassword == ""})
	if adminPassword == "" {
		return pw, nil
	}
	return "", nil
}

func (a *Access) adminOnly(ctx context.Context, by Principal, what, subject string) error {
	if by.Role == RoleAdmin {
		return nil
	}
	a.Audit(ctx, auditName(by.Name), AuditACLDenied, subject, map[string]string{"action": what, "role": string(by.Role)})
	return Errorf(CodeForbidden, "only an administrator may %s", what)
}

func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "?")
}

// randomSecret returns n random bytes in base64url without padding.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
