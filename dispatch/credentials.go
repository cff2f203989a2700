package dispatch

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// unitSecretBytes is the size of a terminal's secret: 43 characters of
// base64url, 256 bits.
const unitSecretBytes = 32

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

func (a *Access) unitOf(id string) (Unit, bool) {
	for _, u := range a.area.Units {
		if u.ID == id {
			return u, true
		}
	}
	return Unit{}, false
}
