package memory

import (
	"cmp"
	"context"
	"slices"

	"github.com/lifeline-ems/lifeline/dispatch"
)

// consents are the consent requests and policies of a Store.
type consents struct {
	byID     map[string]*dispatch.Consent
	policies map[string]dispatch.PolicyRecord
}

var _ dispatch.Consents = (*Store)(nil)

// Consent implements dispatch.Consents.
func (s *Store) Consent(ctx context.Context, id string) (*dispatch.Consent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.consents.byID[id]
	if !ok {
		return nil, dispatch.Errorf(dispatch.CodeNotFound, "consent %q not found", id)
	}
	return clone(c), nil
}

// Consents implements dispatch.Consents: newest first.
func (s *Store) Consents(ctx context.Context, f dispatch.ConsentFilter) ([]*dispatch.Consent, error) {
	s.mu.Lock()
	var out []*dispatch.Consent
	for _, c := range s.consents.byID {
		if (f.Status == "" || c.Status == f.Status) && (f.Incident == "" || c.Incident == f.Incident) {
			out = append(out, clone(c))
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *dispatch.Consent) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// ConsentPolicies implements dispatch.Consents: by jurisdiction.
func (s *Store) ConsentPolicies(ctx context.Context) ([]dispatch.PolicyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dispatch.PolicyRecord, 0, len(s.consents.policies))
	for _, p := range s.consents.policies {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b dispatch.PolicyRecord) int { return cmp.Compare(a.Jurisdiction, b.Jurisdiction) })
	return out, nil
}

// SetConsentPolicy implements dispatch.Consents.
func (s *Store) SetConsentPolicy(ctx context.Context, p dispatch.PolicyRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.consents.policies == nil {
		s.consents.policies = map[string]dispatch.PolicyRecord{}
	}
	p.At = p.At.UTC()
	s.consents.policies[p.Jurisdiction] = p
	return nil
}

// checkConsents refuses cs for a missing row or call, a stale version or
// a unit that would have two pending requests. The caller holds s.mu.
func (s *Store) checkConsents(cs []*dispatch.Consent) error {
	if len(cs) == 0 {
		return nil
	}
	return checkRows(s, "consent", "already has a pending consent request", s.consents.byID, cs, func(c *dispatch.Consent) row {
		return row{c.ID, c.Incident, c.Unit, c.Version, c.Status == dispatch.ConsentPending}
	})
}

// applyConsents writes cs, checked. The caller holds s.mu.
func (s *Store) applyConsents(cs []*dispatch.Consent) {
	if s.consents.byID == nil {
		s.consents.byID = map[string]*dispatch.Consent{}
	}
	for _, c := range cs {
		c := clone(c)
		c.CreatedAt, c.ExpiresAt, c.DecidedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), c.DecidedAt.UTC()
		s.consents.byID[c.ID] = c
	}
}
