package dispatch

// Scope resolves the jurisdiction a request of by works in: want narrows
// by's own jurisdiction ("" keeps it, and is the whole area for an
// administrator of the whole area). A want outside by's jurisdiction is
// forbidden, one not in the area invalid.
func (s *Service) Scope(by Principal, want string) (string, error) {
	if err := s.allowed(by); err != nil {
		return "", err
	}
	if want == "" {
		return by.Jurisdiction, nil
	}
	if _, ok := s.area.Jurisdiction(want); !ok {
		return "", Errorf(CodeInvalid, "jurisdiction %q is not in the area", want)
	}
	if !by.Sees(s.area, want) {
		return "", Errorf(CodeForbidden, "jurisdiction %s is outside yours", want)
	}
	return want, nil
}

// allowed refuses principals that can see nothing: an unknown role, or
// no jurisdiction for anyone but an administrator (deny by default).
func (s *Service) allowed(by Principal) error {
	if !by.Role.Valid() || (by.Jurisdiction == "" && by.Role != RoleAdmin) {
		return Errorf(CodeForbidden, "no access: unknown role or no jurisdiction")
	}
	return nil
}

// inScope reports whether jurisdiction jur lies in scope ("" is everything).
func (s *Service) inScope(jur, scope string) bool {
	return scope == "" || s.area.Within(jur, scope)
}
