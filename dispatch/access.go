package dispatch

import (
	"context"
	"slices"
	"time"
)

// Role is what a person or system may do.
type Role string

// Roles (contract v1). A dispatcher works one county; a city user sees
// every county beneath the city; an integrator is a system using the API
// within its jurisdiction; an admin manages users and unit credentials.
const (
	RoleDispatcher Role = "dispatcher"
	RoleCity       Role = "city"
	RoleIntegrator Role = "integrator"
	RoleAdmin      Role = "admin"
)

var roles = []Role{RoleDispatcher, RoleCity, RoleIntegrator, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(roles, r) }

// User is a person or a system that signs in over HTTP.
type User struct {
	Username     string    `json:"username"`
	Role         Role      `json:"role"`
	Jurisdiction string    `json:"jurisdiction,omitempty"` // scope; "" only for admin
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Principal is who is acting: a signed-in user, a terminal, or the system.
type Principal struct {
	Name         string
	Role         Role
	Jurisdiction string
}

// System is the principal of Lifeline's own actions.
var System = Principal{Name: "system", Role: RoleAdmin}

// Sees reports whether p may see and act on things of jurisdiction jur.
func (p Principal) Sees(a *Area, jur string) bool {
	if p.Role == RoleAdmin && p.Jurisdiction == "" {
		return true
	}
	return p.Jurisdiction != "" && a.Within(jur, p.Jurisdiction)
}

// UnitCredential is the hashed broker password of one unit's terminal.
type UnitCredential struct {
	Unit         string
	PasswordHash string
	RotatedAt    time.Time
}

// Session is a signed-in user's bearer token, stored only as a hash.
type Session struct {
	TokenHash string
	Username  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Users is the record of people, systems, unit credentials and sessions.
type Users interface {
	CreateUser(ctx context.Context, u *User) error // conflict when the username exists
	User(ctx context.Context, username string) (*User, error)
	UpdateUser(ctx context.Context, u *User) error
	ListUsers(ctx context.Context) ([]*User, error)

	SetUnitCredential(ctx context.Context, c UnitCredential) error // insert or replace
	UnitCredential(ctx context.Context, unit string) (*UnitCredential, error)

	CreateSession(ctx context.Context, s Session) error
	Session(ctx context.Context, tokenHash string) (*Session, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteSessions removes every session of username and says how
	// many: a reset password, a disabled user or a changed role ends
	// them all. An unknown user has none.
	DeleteSessions(ctx context.Context, username string) (int, error)
	// DeleteExpiredSessions removes the sessions that expired before t and
	// says how many; sign-ins would otherwise accumulate for ever.
	DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error)
}
