package dispatch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// AuditLogout is recorded when a user signs out.
const AuditLogout = "logout"

// AdminUsername is the first administrator, created by Bootstrap.
const AdminUsername = "admin"

// Password rules: bcrypt reads at most 72 bytes, so a longer password is
// refused rather than silently cut.
const (
	MinPassword = 12
	MaxPassword = 72
)

// Failed sign-ins allowed before a username or a remote address is slowed
// down to one attempt per refill period: enough for a person mistyping,
// far too few for guessing.
const (
	userFailBurst    = 5
	userFailEvery    = 30 * time.Second
	remoteFailBurst  = 20
	remoteFailEvery  = 10 * time.Second
	maxLimiters      = 10000 // keys tracked; full (idle) limiters are evicted first
	maxUnitCache     = 4096
	loginWarnEvery   = time.Minute
	defaultTTL       = 12 * time.Hour // a shift
	tokenBytes       = 32
	generatedPwBytes = 18 // 24 characters of base64url
	unitSecretBytes  = 32 // 43 characters of base64url: a 256-bit terminal secret
)

// AccessConfig holds what an Access is made of. Users, Auditor and Area
// are required.
type AccessConfig struct {
	Users   Users
	Auditor Auditor
	Area    *Area
	// SessionTTL is how long a sign-in lasts; default 12 h (a shift).
	SessionTTL time.Duration
	// Cost is the bcrypt cost of new password hashes; default
	// bcrypt.DefaultCost. Tests lower it to bcrypt.MinCost.
	Cost   int
	Now    func() time.Time
	Logger *slog.Logger
}

// Access signs people and systems in and out, manages users and unit
// credentials, and checks the passwords of vehicle terminals. Passwords and
// tokens are stored only as hashes; every sign-in, failed sign-in and
// change of a user or credential is appended to the audit log.
type Access struct {
	users Users
	area  *Area
	ttl   time.Duration
	cost  int
	now   func() time.Time
	log   *slog.Logger
	audit auditLog
	dummy []byte // a hash to compare against for unknown users, for equal timing

	mu     sync.Mutex
	byUser limiters
	byAddr limiters
}

// NewAccess returns an Access on cfg.
func NewAccess(cfg AccessConfig) (*Access, error) {
	if cfg.Users == nil || cfg.Auditor == nil || cfg.Area == nil {
		return nil, fmt.Errorf("access: Users, Auditor and Area are required")
	}
	a := &Access{
		users: cfg.Users, area: cfg.Area, ttl: cfg.SessionTTL, cost: cfg.Cost, now: cfg.Now, log: cfg.Logger,
		byUser: limiters{m: map[string]*limiter{}, every: userFailEvery, burst: userFailBurst},
		byAddr: limiters{m: map[string]*limiter{}, every: remoteFailEvery, burst: remoteFailBurst},
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

// ResetPassword gives a user a new generated password, returned once, and
// ends none of its sessions' validity checks but its own (sessions are
// re-checked against the user on every request). It is the operator's way
// back in when the administrator's one-time password is lost: `lifelined
// admin reset-password`, run where the database is. Only an admin may.
func (a *Access) ResetPassword(ctx context.Context, by Principal, username string) (string, error) {
	if err := a.adminOnly(ctx, by, "reset a password", username); err != nil {
		return "", err
	}
	u, err := a.users.User(ctx, username)
	if err != nil {
		return "", err
	}
	pw := randomSecret(generatedPwBytes)
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), a.cost)
	if err != nil {
		return "", fmt.Errorf("reset password of %s: %w", username, err)
	}
	u.PasswordHash, u.UpdatedAt = string(hash), a.now().UTC()
	if err := a.users.UpdateUser(ctx, u); err != nil {
		return "", fmt.Errorf("reset password of %s: %w", username, err)
	}
	a.Audit(ctx, by.Name, AuditPasswordReset, username, nil)
	return pw, nil
}

// SetDisabled disables or re-enables a user (a dispatcher who has left, a
// retired integration). A disabled user's sessions stop working at once:
// every request re-checks the user. Only an admin may, within its scope,
// and the last administrator of the whole area cannot be disabled.
func (a *Access) SetDisabled(ctx context.Context, by Principal, username string, disabled bool) (*User, error) {
	if err := a.adminOnly(ctx, by, "disable a user", username); err != nil {
		return nil, err
	}
	u, err := a.users.User(ctx, username)
	if err != nil {
		return nil, fmt.Errorf("disable %s: %w", username, err)
	}
	if !by.Sees(a.area, u.Jurisdiction) {
		return nil, Errorf(CodeForbidden, "user %s is outside your jurisdiction", username)
	}
	if u.Disabled == disabled {
		return u, nil
	}
	if disabled && u.Role == RoleAdmin && u.Jurisdiction == "" {
		all, err := a.users.ListUsers(ctx)
		if err != nil {
			return nil, fmt.Errorf("disable %s: %w", username, err)
		}
		others := 0
		for _, o := range all {
			if o.Username != u.Username && o.Role == RoleAdmin && o.Jurisdiction == "" && !o.Disabled {
				others++
			}
		}
		if others == 0 {
			return nil, Errorf(CodeConflict, "%s is the last administrator of the whole area: create another first", username)
		}
	}
	u.Disabled, u.UpdatedAt = disabled, a.now().UTC()
	if err := a.users.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("disable %s: %w", username, err)
	}
	a.Audit(ctx, by.Name, AuditUserDisabled, username, map[string]any{"disabled": disabled})
	return u, nil
}

// AuditLog returns audit entries after seq after, oldest first, at most
// limit (at most 1000 a call; page with after). Only a whole-area admin
// may read the log: it names every user and call.
func (a *Access) AuditLog(ctx context.Context, by Principal, after int64, limit int) ([]AuditEntry, error) {
	if by.Role != RoleAdmin || by.Jurisdiction != "" {
		return nil, Errorf(CodeForbidden, "only an administrator of the whole area may read the audit log")
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return a.audit.to.AuditLog(ctx, after, limit)
}

// SweepSessions deletes the sessions that have expired; the server runs it
// daily. It returns how many went.
func (a *Access) SweepSessions(ctx context.Context) (int, error) {
	return a.users.DeleteExpiredSessions(ctx, a.now())
}

// errBadLogin is the one answer to a wrong username, a wrong password and
// a disabled account alike.
var errBadLogin = Errorf(CodeUnauthorized, "wrong username or password")

// Login checks a username and password and opens a session. remote is the
// client's address, for the audit log and the rate limit on failures. The
// token is returned once; only its SHA-256 is stored.
func (a *Access) Login(ctx context.Context, username, password, remote string) (token string, s Session, err error) {
	now := a.now()
	done, ok := a.admit(username, remote, now)
	if !ok {
		return "", Session{}, Errorf(CodeUnauthorized, "too many failed sign-ins: wait a minute and try again")
	}
	u, err := a.users.User(ctx, username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		done(true) // not the caller's failure
		return "", Session{}, fmt.Errorf("login: %w", err)
	}
	hash := a.dummy
	if u != nil {
		hash = []byte(u.PasswordHash)
	}
	// Compare even for an unknown user, so that timing tells nothing.
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	reason := ""
	switch {
	case u == nil:
		reason = "unknown user"
	case !match || len(password) > MaxPassword:
		reason = "wrong password"
	case u.Disabled:
		reason = "disabled"
	}
	done(reason == "")
	if reason != "" {
		a.Audit(ctx, auditName(username), AuditLoginFailed, auditName(username), map[string]string{"remote": remote, "reason": reason})
		return "", Session{}, errBadLogin
	}
	token = randomSecret(tokenBytes)
	s = Session{TokenHash: TokenHash(token), Username: u.Username, CreatedAt: now.UTC(), ExpiresAt: now.Add(a.ttl).UTC()}
	if err := a.users.CreateSession(ctx, s); err != nil {
		return "", Session{}, fmt.Errorf("login: %w", err)
	}
	a.Audit(ctx, u.Username, AuditLogin, u.Username, map[string]string{"remote": remote})
	return token, s, nil
}

// Authenticate returns who holds token: the session must exist, be
// unexpired and belong to a user who is not disabled.
func (a *Access) Authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" || len(token) > 256 {
		return Principal{}, Errorf(CodeUnauthorized, "invalid session token")
	}
	h := TokenHash(token)
	s, err := a.users.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, Errorf(CodeUnauthorized, "invalid or ended session: sign in again")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !a.now().Before(s.ExpiresAt) {
		if err := a.users.DeleteSession(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
			a.log.Warn("delete expired session", "user", s.Username, "err", err)
		}
		return Principal{}, Errorf(CodeUnauthorized, "session expired: sign in again")
	}
	u, err := a.users.User(ctx, s.Username)
	if errors.Is(err, ErrNotFound) || (err == nil && u.Disabled) {
		return Principal{}, Errorf(CodeUnauthorized, "account disabled or removed")
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return Principal{Name: u.Username, Role: u.Role, Jurisdiction: u.Jurisdiction}, nil
}

// Logout ends the session of token. Ending an unknown session is not an error.
func (a *Access) Logout(ctx context.Context, token string) error {
	h := TokenHash(token)
	s, err := a.users.Session(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if err := a.users.DeleteSession(ctx, h); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	a.Audit(ctx, s.Username, AuditLogout, s.Username, nil)
	return nil
}

// CreateUser creates a person or a system (admin only).
func (a *Access) CreateUser(ctx context.Context, by Principal, username, password string, role Role, jurisdiction string) (*User, error) {
	if err := a.adminOnly(ctx, by, "create user", username); err != nil {
		return nil, err
	}
	if err := checkUsername(username); err != nil {
		return nil, err
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	if err := a.checkGrant(by, role, jurisdiction); err != nil {
		return nil, err
	}
	u, err := a.newUser(username, password, role, jurisdiction)
	if err != nil {
		return nil, err
	}
	if err := a.users.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user %s: %w", username, err)
	}
	a.Audit(ctx, by.Name, AuditUserCreate, username, map[string]any{"role": role, "jurisdiction": jurisdiction})
	return u, nil
}

// Users lists the users by may manage (admin only): every user for an
// administrator of the whole area, those within its jurisdiction otherwise.
func (a *Access) Users(ctx context.Context, by Principal) ([]*User, error) {
	if err := a.adminOnly(ctx, by, "list users", "users"); err != nil {
		return nil, err
	}
	all, err := a.users.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	if by.Jurisdiction == "" {
		return all, nil
	}
	return slices.DeleteFunc(all, func(u *User) bool { return u.Jurisdiction == "" || !by.Sees(a.area, u.Jurisdiction) }), nil
}

// SetRole changes a user's role and jurisdiction (admin only). The last
// administrator with the whole area cannot be demoted.
func (a *Access) SetRole(ctx context.Context, by Principal, username string, role Role, jurisdiction string) (*User, error) {
	if err := a.adminOnly(ctx, by, "change role", username); err != nil {
		return nil, err
	}
	if err := a.checkGrant(by, role, jurisdiction); err != nil {
		return nil, err
	}
	u, err := a.users.User(ctx, username)
	if err != nil {
		return nil, fmt.Errorf("change role of %s: %w", username, err)
	}
	if !by.Sees(a.area, u.Jurisdiction) {
		return nil, Errorf(CodeForbidden, "user %s is outside your jurisdiction", username)
	}
	superAdmin := func(u *User) bool { return u.Role == RoleAdmin && u.Jurisdiction == "" && !u.Disabled }
	if superAdmin(u) && (role != RoleAdmin || jurisdiction != "") {
		all, err := a.users.ListUsers(ctx)
		if err != nil {
			return nil, fmt.Errorf("change role of %s: %w", username, err)
		}
		others := 0
		for _, o := range all {
			if o.Username != u.Username && superAdmin(o) {
				others++
			}
		}
		if others == 0 {
			return nil, Errorf(CodeConflict, "%s is the last administrator of the whole area: create another first", username)
		}
	}
	from := map[string]any{"role": u.Role, "jurisdiction": u.Jurisdiction}
	u.Role, u.Jurisdiction, u.UpdatedAt = role, jurisdiction, a.now().UTC()
	if err := a.users.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("change role of %s: %w", username, err)
	}
	a.Audit(ctx, by.Name, AuditRoleChange, username, map[string]any{"from": from, "role": role, "jurisdiction": jurisdiction})
	return u, nil
}

// RotateUnitCredentials gives the terminal of unit a new random broker
// password (admin only) and returns it; it is not kept anywhere in clear.
// The old password stops working at once.
func (a *Access) RotateUnitCredentials(ctx context.Context, by Principal, unit string) (password string, err error) {
	if err := a.adminOnly(ctx, by, "rotate unit credentials", "unit:"+unit); err != nil {
		return "", err
	}
	u, ok := a.unitOf(unit)
	if !ok {
		return "", Errorf(CodeNotFound, "unit %q not found", unit)
	}
	if !by.Sees(a.area, u.Jurisdiction) {
		return "", Errorf(CodeForbidden, "unit %s is outside your jurisdiction", unit)
	}
	password = randomSecret(unitSecretBytes)
	c := UnitCredential{Unit: unit, PasswordHash: unitDigest(password), RotatedAt: a.now().UTC()}
	if err := a.users.SetUnitCredential(ctx, c); err != nil {
		return "", fmt.Errorf("rotate credentials of %s: %w", unit, err)
	}
	a.Audit(ctx, by.Name, AuditCredentials, "unit:"+unit, map[string]any{"rotated_at": c.RotatedAt})
	return password, nil
}

// AuthenticateUnit checks the broker password of unit's terminal. It is
// called for every terminal CONNECT: a password that passed before is
// remembered (as a hash, tied to the credential's rotation time) so that a
// reconnect storm after a broker restart does not run bcrypt for each.
func (a *Access) AuthenticateUnit(ctx context.Context, unit, password string) bool {
	if unit == "" || password == "" || len(password) > MaxPassword {
		return false
	}
	c, err := a.users.UnitCredential(ctx, unit)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			a.log.Error("unit credential lookup", "unit", unit, "err", err)
		}
		return false
	}
	return subtle.ConstantTimeCompare([]byte(unitDigest(password)), []byte(c.PasswordHash)) == 1
}

// unitDigest is how a terminal's password is stored. Unit passwords are
// random 256-bit secrets issued by Lifeline, not chosen by people, so no
// dictionary can guess them and a slow password hash (bcrypt, used for
// people) would only cost CPU on every CONNECT: a fleet reconnecting after
// a broker restart would queue behind it. A SHA-256 digest, compared in
// constant time, is the usual storage for such machine secrets (API keys).
func unitDigest(password string) string {
	sum := sha256.Sum256([]byte(password))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Audit appends an entry to the audit log and logs it. detail is encoded
// as JSON (nil for none). A failure to append is logged as an error, never
// dropped silently; it does not undo the caller's operation.
func (a *Access) Audit(ctx context.Context, actor, action, subject string, detail any) {
	a.audit.append(ctx, actor, action, subject, detail)
}

// TokenHash is what is stored of a session token: its SHA-256, in hex.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (a *Access) adminOnly(ctx context.Context, by Principal, what, subject string) error {
	if by.Role == RoleAdmin {
		return nil
	}
	a.Audit(ctx, auditName(by.Name), AuditACLDenied, subject, map[string]string{"action": what, "role": string(by.Role)})
	return Errorf(CodeForbidden, "only an administrator may %s", what)
}

// checkGrant checks that by may give role over jurisdiction and that the
// jurisdiction fits the role: a dispatcher works one county, a city user a
// city (a jurisdiction with counties beneath it, or a top level one), an
// integrator any jurisdiction; only an admin may have none (the whole area).
func (a *Access) checkGrant(by Principal, role Role, jur string) error {
	if !role.Valid() {
		return Errorf(CodeInvalid, "role %q: want dispatcher, city, integrator or admin", role)
	}
	if jur == "" {
		if role != RoleAdmin {
			return Errorf(CodeInvalid, "a %s needs a jurisdiction", role)
		}
		if by.Jurisdiction != "" {
			return Errorf(CodeForbidden, "only an administrator of the whole area may create another")
		}
		return nil
	}
	j, ok := a.area.Jurisdiction(jur)
	if !ok {
		return Errorf(CodeInvalid, "jurisdiction %q is not in the area", jur)
	}
	children := a.hasChildren(jur)
	switch {
	case role == RoleDispatcher && children:
		return Errorf(CodeInvalid, "a dispatcher works one county: %s (%s) is a city; name one of its counties", j.ID, j.Name)
	case role == RoleCity && !children && j.Parent != "":
		return Errorf(CodeInvalid, "a city user's jurisdiction must be a city: %s (%s) is a county of %s", j.ID, j.Name, j.Parent)
	}
	if !by.Sees(a.area, jur) {
		return Errorf(CodeForbidden, "jurisdiction %s is outside yours", jur)
	}
	return nil
}

func (a *Access) hasChildren(id string) bool {
	for _, j := range a.area.Jurisdictions {
		if j.Parent == id {
			return true
		}
	}
	return false
}

func (a *Access) unitOf(id string) (Unit, bool) {
	for _, u := range a.area.Units {
		if u.ID == id {
			return u, true
		}
	}
	return Unit{}, false
}

func (a *Access) newUser(username, password string, role Role, jur string) (*User, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	now := a.now().UTC()
	return &User{Username: username, Role: role, Jurisdiction: jur, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}, nil
}

// checkUsername allows 1-64 lower-case letters, digits, '.', '_' and '-',
// starting with a letter or digit, so that names in the audit log are plain.
func checkUsername(s string) error {
	ok := len(s) >= 1 && len(s) <= 64
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			ok = false
		}
	}
	if !ok {
		return Errorf(CodeInvalid, "username %q: want 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", truncate(s, 64))
	}
	return nil
}

func checkPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPassword:
		return Errorf(CodeInvalid, "password too short: at least %d characters", MinPassword)
	case len(pw) > MaxPassword:
		return Errorf(CodeInvalid, "password too long: at most %d bytes", MaxPassword)
	}
	return nil
}

// auditName is a name someone typed, fit for the audit log.
func auditName(s string) string {
	if s == "" {
		return "(none)"
	}
	return truncate(s, 64)
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

// admit takes one failed attempt of username and of remote before the
// password is checked (so that parallel guesses are counted too); ok is
// false when either has none left. done(true) gives the attempt back.
func (a *Access) admit(username, remote string, now time.Time) (done func(success bool), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ru, rr := a.byUser.reserve(username, now), a.byAddr.reserve(remote, now)
	u, r := ru.DelayFrom(now) > 0, rr.DelayFrom(now) > 0
	if u || r {
		ru.CancelAt(now)
		rr.CancelAt(now)
		if a.byUser.warn(username, now) || a.byAddr.warn(remote, now) {
			a.log.Warn("sign-in refused: too many failed attempts", "user", auditName(username), "remote", remote, "by_user", u, "by_remote", r)
		}
		return nil, false
	}
	return func(success bool) {
		if success {
			ru.CancelAt(now)
			rr.CancelAt(now)
		}
	}, true
}

// limiters are token buckets of failed attempts per key. The caller holds Access.mu.
type limiters struct {
	m     map[string]*limiter
	every time.Duration
	burst int
}

type limiter struct {
	lim    *rate.Limiter
	warned time.Time
}

// reserve takes one attempt of key; its delay is positive when key has none left.
func (l *limiters) reserve(key string, now time.Time) *rate.Reservation {
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= maxLimiters {
			l.evict(now)
		}
		e = &limiter{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.m[key] = e
	}
	return e.lim.ReserveN(now, 1)
}

// warn reports whether a refusal for key should be logged (once a minute).
func (l *limiters) warn(key string, now time.Time) bool {
	e, ok := l.m[key]
	if !ok || now.Sub(e.warned) < loginWarnEvery {
		return false
	}
	e.warned = now
	return true
}

// evict drops the limiters that have refilled (they hold no information);
// when none has, one at random.
func (l *limiters) evict(now time.Time) {
	for k, e := range l.m {
		if e.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	if len(l.m) < maxLimiters {
		return
	}
	for k := range l.m {
		delete(l.m, k)
		return
	}
}

// auditLog appends to an Auditor and logs each entry; with no Auditor it
// only logs.
type auditLog struct {
	to  Auditor
	log *slog.Logger
	now func() time.Time
}

func (l auditLog) append(ctx context.Context, actor, action, subject string, detail any) {
	var raw json.RawMessage
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			l.log.Error("audit detail not encodable", "action", action, "actor", actor, "subject", subject, "err", err)
		} else {
			raw = b
		}
	}
	l.log.Info("audit", "action", action, "actor", actor, "subject", subject, "detail", string(raw))
	if l.to == nil {
		return
	}
	// The entry is appended even when the request that caused it is gone.
	if _, err := l.to.AppendAudit(context.WithoutCancel(ctx), AuditEntry{At: l.now(), Actor: actor, Action: action, Subject: subject, Detail: raw}); err != nil {
		l.log.Error("audit entry not recorded", "action", action, "actor", actor, "subject", subject, "err", err)
	}
}
