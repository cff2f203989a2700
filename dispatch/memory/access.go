package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Users is an in-memory dispatch.Users: people and systems, unit
// credentials and sessions.
type Users struct {
	mu       sync.Mutex
	users    map[string]*dispatch.User
	creds    map[string]dispatch.UnitCredential
	sessions map[string]dispatch.Session
}

var _ dispatch.Users = (*Users)(nil)

// NewUsers returns an empty record of users.
func NewUsers() *Users {
	return &Users{
		users:    map[string]*dispatch.User{},
		creds:    map[string]dispatch.UnitCredential{},
		sessions: map[string]dispatch.Session{},
	}
}

// CreateUser implements dispatch.Users.
func (s *Users) CreateUser(ctx context.Context, u *dispatch.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Username]; ok {
		return dispatch.Errorf(dispatch.CodeConflict, "user %q exists", u.Username)
	}
	s.users[u.Username] = clone(u)
	return nil
}

// User implements dispatch.Users.
func (s *Users) User(ctx context.Context, username string) (*dispatch.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", username)
	}
	return clone(u), nil
}

// UpdateUser implements dispatch.Users.
func (s *Users) UpdateUser(ctx context.Context, u *dispatch.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Username]; !ok {
		return dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", u.Username)
	}
	s.users[u.Username] = clone(u)
	return nil
}

// ListUsers implements dispatch.Users: every user, by username.
func (s *Users) ListUsers(ctx context.Context) ([]*dispatch.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*dispatch.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, clone(u))
	}
	slices.SortFunc(out, func(a, b *dispatch.User) int { return cmp.Compare(a.Username, b.Username) })
	return out, nil
}

// SetUnitCredential implements dispatch.Users.
func (s *Users) SetUnitCredential(ctx context.Context, c dispatch.UnitCredential) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[c.Unit] = c
	return nil
}

// UnitCredential implements dispatch.Users.
func (s *Users) UnitCredential(ctx context.Context, unit string) (*dispatch.UnitCredential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.creds[unit]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "no credential for unit %q", unit)
	}
	return &c, nil
}

// CreateSession implements dispatch.Users: the user must exist, and a
// token hash already in use is a conflict.
func (s *Users) CreateSession(ctx context.Context, sess dispatch.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[sess.Username]; !ok {
		return dispatch.Errorf(dispatch.CodeNotFound, "user %q not found", sess.Username)
	}
	if _, ok := s.sessions[sess.TokenHash]; ok {
		return dispatch.Errorf(dispatch.CodeConflict, "session exists")
	}
	s.sessions[sess.TokenHash] = sess
	return nil
}

// Session implements dispatch.Users. Expiry is the caller's to check.
func (s *Users) Session(ctx context.Context, tokenHash string) (*dispatch.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[tokenHash]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "session not found")
	}
	return &sess, nil
}

// DeleteSession implements dispatch.Users; deleting an unknown session is not found.
func (s *Users) DeleteSession(ctx context.Context, tokenHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[tokenHash]; !ok {
		return dispatch.Errorf(dispatch.CodeNotFound, "session not found")
	}
	delete(s.sessions, tokenHash)
	return nil
}

// DeleteSessions implements dispatch.Users.
func (s *Users) DeleteSessions(ctx context.Context, username string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, sess := range s.sessions {
		if sess.Username == username {
			delete(s.sessions, k)
			n++
		}
	}
	return n, nil
}

// DeleteExpiredSessions implements dispatch.Users.
func (s *Users) DeleteExpiredSessions(ctx context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, sess := range s.sessions {
		if sess.ExpiresAt.Before(t) {
			delete(s.sessions, k)
			n++
		}
	}
	return n, nil
}
