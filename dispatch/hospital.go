package dispatch

import (
	"context"
	"fmt"
	"time"
)

// HospitalState is what changes about a hospital, as the record keeps it:
// whether it diverts ambulances (its stroke unit's CT is down, its
// emergency department is full), until when, why and on whose word.
type HospitalState struct {
	Hospital  string
	Diversion bool
	// Until is when the diversion ends by itself; zero: until lifted.
	Until     time.Time
	Reason    string
	By        string
	UpdatedAt time.Time
}

// Diverting reports whether the hospital diverts ambulances at now.
func (h HospitalState) Diverting(now time.Time) bool {
	return h.Diversion && (h.Until.IsZero() || now.Before(h.Until))
}

// HospitalStates is the record of hospitals' states.
type HospitalStates interface {
	// HospitalStates returns every stored hospital state, by hospital.
	HospitalStates(ctx context.Context) ([]HospitalState, error)
	// SetHospitalState stores st as its hospital's state, replacing the
	// one before.
	SetHospitalState(ctx context.Context, st HospitalState) error
}

// maxDiversion bounds how far ahead a diversion may be set to end.
const maxDiversion = 7 * 24 * time.Hour

// HospitalStatus is a hospital as consoles see it: the area's facts and
// its diversion state now.
type HospitalStatus struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Jurisdiction string   `json:"jurisdiction"`
	Level        string   `json:"level"`
	Location     LatLon   `json:"location"`
	Centres      []Centre `json:"centres"`
	Illustrative bool     `json:"illustrative,omitempty"`
	// Diversion is whether the hospital diverts ambulances now; the
	// fields after it say until when, why and who set it.
	Diversion       bool      `json:"diversion"`
	DiversionUntil  time.Time `json:"diversion_until,omitzero"`
	DiversionReason string    `json:"diversion_reason,omitempty"`
	DiversionBy     string    `json:"diversion_by,omitempty"`
}

// Diversion is a change of a hospital's diversion state: on (until a
// time, or until lifted) or off.
type Diversion struct {
	Diversion bool
	Until     time.Time
	Reason    string
}

// Hospitals lists the destinations of the whole area with their
// diversion state (a crew may take a patient across a county line),
// narrowed to scope when it is set.
func (s *Service) Hospitals(ctx context.Context, scope string) ([]HospitalStatus, error) {
	if _, ok := s.area.Jurisdiction(scope); scope != "" && !ok {
		return nil, Errorf(CodeInvalid, "jurisdiction %q is not in the area", scope)
	}
	states, err := s.hospitalStates(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []HospitalStatus{}
	for _, h := range s.area.Hospitals {
		if scope != "" && !s.area.Within(h.Jurisdiction, scope) {
			continue
		}
		out = append(out, hospitalStatus(h, states[h.ID], now))
	}
	return out, nil
}

// SetDiversion puts a hospital on diversion, or lifts it, on behalf of
// by: a dispatcher, city user or administrator of the hospital's county
// or above. A diversion ends by itself at its Until (at most a week
// ahead); every change is audited.
func (s *Service) SetDiversion(ctx context.Context, by Principal, id string, d Diversion) (HospitalStatus, error) {
	if err := s.allowed(by); err != nil {
		return HospitalStatus{}, err
	}
	if by.Role == RoleIntegrator {
		return HospitalStatus{}, Errorf(CodeForbidden, "an integrator may not set a hospital's diversion: a dispatcher does")
	}
	h, ok := s.hospital(id)
	if !ok {
		return HospitalStatus{}, Errorf(CodeNotFound, "hospital %q not found", id)
	}
	if !by.Sees(s.area, h.Jurisdiction) {
		return HospitalStatus{}, Errorf(CodeForbidden, "hospital %s is outside your jurisdiction", id)
	}
	if err := checkText("reason", d.Reason, 500); err != nil {
		return HospitalStatus{}, err
	}
	now := s.now().UTC()
	switch {
	case !d.Diversion && !d.Until.IsZero():
		return HospitalStatus{}, Errorf(CodeInvalid, "until: only with diversion true")
	case d.Diversion && !d.Until.IsZero() && !d.Until.After(now):
		return HospitalStatus{}, Errorf(CodeInvalid, "until %s is not in the future", d.Until.UTC().Format(time.RFC3339))
	case d.Diversion && d.Until.Sub(now) > maxDiversion:
		return HospitalStatus{}, Errorf(CodeInvalid, "until %s: a diversion is set for at most %s ahead", d.Until.UTC().Format(time.RFC3339), maxDiversion)
	}
	st := HospitalState{Hospital: h.ID, Diversion: d.Diversion, Until: d.Until.UTC(), Reason: d.Reason, By: by.Name, UpdatedAt: now}
	if err := s.store.SetHospitalState(ctx, st); err != nil {
		return HospitalStatus{}, fmt.Errorf("hospital %s: %w", id, err)
	}
	detail := map[string]any{"diversion": d.Diversion, "reason": d.Reason}
	if !st.Until.IsZero() {
		detail["until"] = st.Until
	}
	s.audit.append(ctx, by.Name, AuditDiversion, h.ID, detail)
	return hospitalStatus(h, st, now), nil
}

// AuditDiversion is the audit action of a hospital's diversion set or lifted.
const AuditDiversion = "hospital_diversion"

// hospital returns the area's hospital with id.
func (s *Service) hospital(id string) (Hospital, bool) {
	for _, h := range s.area.Hospitals {
		if h.ID == id {
			return h, true
		}
	}
	return Hospital{}, false
}

// hospitalStates returns the stored states by hospital.
func (s *Service) hospitalStates(ctx context.Context) (map[string]HospitalState, error) {
	list, err := s.store.HospitalStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("hospital states: %w", err)
	}
	out := make(map[string]HospitalState, len(list))
	for _, st := range list {
		out[st.Hospital] = st
	}
	return out, nil
}

// hospitalStatus is h with its state st as it stands at now.
func hospitalStatus(h Hospital, st HospitalState, now time.Time) HospitalStatus {
	v := HospitalStatus{
		ID: h.ID, Name: h.Name, Jurisdiction: h.Jurisdiction, Level: h.Level,
		Location: LatLon{Lat: h.Location.Lat(), Lon: h.Location.Lon()}, Centres: h.Centres, Illustrative: h.Illustrative,
	}
	if st.Diverting(now) {
		v.Diversion, v.DiversionUntil, v.DiversionReason, v.DiversionBy = true, st.Until, st.Reason, st.By
	}
	return v
}
