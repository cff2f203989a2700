package memory

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// Audit is an in-memory dispatch.Auditor.
type Audit struct {
	mu      sync.Mutex
	entries []dispatch.AuditEntry
}

var _ dispatch.Auditor = (*Audit)(nil)

// NewAudit returns an empty audit log.
func NewAudit() *Audit { return &Audit{} }

// AppendAudit implements dispatch.Auditor. A Detail that is not JSON is
// invalid (it could not be served back); an empty one is stored as none.
func (a *Audit) AppendAudit(ctx context.Context, e dispatch.AuditEntry) (dispatch.AuditEntry, error) {
	if err := e.Validate(); err != nil {
		return dispatch.AuditEntry{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var prev *dispatch.AuditEntry
	if n := len(a.entries); n > 0 {
		prev = &a.entries[n-1]
	}
	e.Detail = cloneDetail(e.Detail)
	e.Seal(prev)
	a.entries = append(a.entries, e)
	return e, nil
}

// AuditLog implements dispatch.Auditor.
func (a *Audit) AuditLog(ctx context.Context, after int64, limit int) ([]dispatch.AuditEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []dispatch.AuditEntry
	for _, e := range a.entries {
		if e.Seq <= after {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		e.Detail = cloneDetail(e.Detail)
		out = append(out, e)
	}
	return out, nil
}

func cloneDetail(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return nil
	}
	return slices.Clone(d)
}
