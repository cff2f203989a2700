package dispatch

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password rules: bcrypt reads at most 72 bytes, so a longer password is
// refused rather than silently cut.
const (
	MinPassword = 12
	MaxPassword = 72
)

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

// SetRole changes a user's role and jurisdiction (admin only) and ends
// the user's sessions: the user signs in again under the new role. The
// last administrator with the whole area cannot be demoted.
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
	n, err := a.endSessions(ctx, username)
	a.Audit(ctx, by.Name, AuditRoleChange, username, map[string]any{"from": from, "role": role, "jurisdiction": jurisdiction, "sessions_ended": n})
	if err != nil {
		return nil, fmt.Errorf("the role of %s changed but its sessions did not end, change it again: %w", username, err)
	}
	return u, nil
}

// SetDisabled disables or re-enables a user (a dispatcher who has left, a
// retired integration). Either way the user's sessions end, with their
// live feeds: a re-enabled user signs in again, no old token comes back.
// Only an admin may, within its scope, and the last administrator of the
// whole area cannot be disabled.
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
		if disabled { // again, in case sessions did not end the first time
			if _, err := a.endSessions(ctx, username); err != nil {
				return nil, err
			}
		}
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
	n, err := a.endSessions(ctx, username)
	a.Audit(ctx, by.Name, AuditUserDisabled, username, map[string]any{"disabled": disabled, "sessions_ended": n})
	if err != nil {
		return nil, fmt.Errorf("%s changed but its sessions did not end, do it again: %w", username, err)
	}
	return u, nil
}

// ResetPassword gives a user a new generated password, returned once, and
// ends every session of the user: whoever signed in with the old password
// is out. It is the operator's way back in when the administrator's
// one-time password is lost: `lifelined admin reset-password`, run where
// the database is. Only an admin may.
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
	n, err := a.endSessions(ctx, username)
	a.Audit(ctx, by.Name, AuditPasswordReset, username, map[string]any{"sessions_ended": n})
	if err != nil {
		return "", fmt.Errorf("the password of %s changed but its sessions did not end, reset it again: %w", username, err)
	}
	return pw, nil
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
