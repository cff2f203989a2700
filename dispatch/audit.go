package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// AuditEntry is one line of the append-only audit log: who did what to
// what, when. Entries form a hash chain: each Hash covers the entry and
// the previous entry's Hash, so an edited, inserted or deleted row breaks
// the chain from that point on.
type AuditEntry struct {
	Seq     int64           `json:"seq"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`   // user name, unit:<id>, system
	Action  string          `json:"action"`  // e.g. login, login_failed, assign, acl_denied
	Subject string          `json:"subject"` // what it acted on: an incident, a unit, a user
	Detail  json.RawMessage `json:"detail,omitempty"`
	Prev    string          `json:"prev"`
	Hash    string          `json:"hash"`
}

// Audit actions recorded by Lifeline.
const (
	AuditLogin         = "login"
	AuditLoginFailed   = "login_failed"
	AuditACLDenied     = "acl_denied"
	AuditAssign        = "assign"
	AuditReassign      = "reassign"
	AuditConsent       = "consent"
	AuditConsentPolicy = "consent_policy"
	AuditRoleChange    = "role_change"
	AuditUserCreate    = "user_create"
	AuditCredentials   = "unit_credentials"
	AuditIncident      = "incident_create"
	AuditStatusChange  = "status_change"
	AuditPasswordReset = "password_reset"
	AuditUserDisabled  = "user_disabled"
	AuditIncidentEnd   = "incident_end"
	AuditStandDown     = "stand_down"
	AuditLogout        = "logout"
)

// GenesisHash is the Prev of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ChainHash returns the hash of e chained to prev: SHA-256 over a
// canonical JSON encoding of every field but Hash, with Prev set to prev.
// Times are encoded in UTC with nanoseconds so every store gives the same bytes.
func (e AuditEntry) ChainHash(prev string) string {
	canon := struct {
		Seq     int64           `json:"seq"`
		At      string          `json:"at"`
		Actor   string          `json:"actor"`
		Action  string          `json:"action"`
		Subject string          `json:"subject"`
		Detail  json.RawMessage `json:"detail"`
		Prev    string          `json:"prev"`
	}{e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Subject, canonicalJSON(e.Detail), prev}
	b, _ := json.Marshal(canon)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonicalJSON re-encodes raw so that whitespace and key order (as a
// database's JSON type may change them) do not change the hash.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return raw
	}
	b, _ := json.Marshal(v) // maps are encoded with sorted keys
	return b
}

// Validate checks what a store needs before appending e: a Detail that is
// not JSON could not be served back, nor hashed the same way twice.
func (e AuditEntry) Validate() error {
	if len(e.Detail) > 0 && !json.Valid(e.Detail) {
		return Errorf(CodeInvalid, "audit detail is not JSON")
	}
	return nil
}

// Seal fills in e's Seq, Prev and Hash as the entry after prev (nil for
// the first entry). Stores call it inside the transaction that appends.
func (e *AuditEntry) Seal(prev *AuditEntry) {
	e.Seq, e.Prev = 1, GenesisHash
	if prev != nil {
		e.Seq, e.Prev = prev.Seq+1, prev.Hash
	}
	e.At = e.At.UTC().Truncate(time.Microsecond) // what every store keeps
	e.Hash = e.ChainHash(e.Prev)
}

// VerifyAudit checks a whole log, oldest first: consecutive Seq from 1,
// each Prev the Hash before it, each Hash right. It names the first bad entry.
func VerifyAudit(entries []AuditEntry) error {
	prev := GenesisHash
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			return fmt.Errorf("audit: entry %d has seq %d: an entry was deleted or inserted", i+1, e.Seq)
		}
		if e.Prev != prev {
			return fmt.Errorf("audit: entry %d does not follow entry %d: the chain is broken", e.Seq, e.Seq-1)
		}
		if got := e.ChainHash(e.Prev); got != e.Hash {
			return fmt.Errorf("audit: entry %d was altered: its hash does not match its content", e.Seq)
		}
		prev = e.Hash
	}
	return nil
}

// Auditor appends to and reads the audit log.
type Auditor interface {
	// AppendAudit seals e after the last entry and stores it atomically
	// (several servers may append to one database at once).
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// AuditLog returns entries with Seq > after, oldest first, at most limit (0: all).
	AuditLog(ctx context.Context, after int64, limit int) ([]AuditEntry, error)
}

// Audit appends an entry to the audit log and logs it. detail is encoded
// as JSON (nil for none). A failure to append is logged as an error, never
// dropped silently; it does not undo the caller's operation.
func (a *Access) Audit(ctx context.Context, actor, action, subject string, detail any) {
	a.audit.append(ctx, actor, action, subject, detail)
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

// auditName is a name someone typed, fit for the audit log.
func auditName(s string) string {
	if s == "" {
		return "(none)"
	}
	return truncate(s, 64)
}
