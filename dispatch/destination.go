package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// Destination is one hospital a patient could be taken to, as the
// advisor ranks it for a call.
type Destination struct {
	Rank      int      `json:"rank"`
	Hospital  string   `json:"hospital"`
	Name      string   `json:"name"`
	Level     string   `json:"level,omitempty"`
	Location  LatLon   `json:"location"`
	Centres   []Centre `json:"centres"`
	DistanceM float64  `json:"distance_m"`
	ETAS      float64  `json:"eta_s"`
	// Capable is whether the hospital holds the centre the call needs
	// (always, for a call that needs none).
	Capable        bool      `json:"capable"`
	Diversion      bool      `json:"diversion"`
	DiversionUntil time.Time `json:"diversion_until,omitzero"`
	Reasons        []string  `json:"reasons"`
}

// Destinations is the destination advice for a call: the hospital to
// take the patient to, and the others ranked after it, with why.
type Destinations struct {
	Incident string   `json:"incident"`
	Category Category `json:"category"`
	// Centre is the five-centre capability the call's category needs;
	// empty when any emergency department will do.
	Centre Centre `json:"centre,omitempty"`
	// Advice is the hospital to go to: the capable one not on diversion
	// with the best ETA, or a fallback that says why. Nil only when the
	// area has no hospital.
	Advice *Destination `json:"advice"`
	// Hospitals are the capable hospitals not on diversion by ETA, then
	// the others (lacking the centre, then diverting) by ETA, at most
	// maxDestinations of them.
	Hospitals   []Destination `json:"hospitals"`
	GeneratedAt time.Time     `json:"generated_at"`
}

// maxDestinations bounds the hospitals an advice lists.
const maxDestinations = 10

// Destinations advises where to take the patient of an incident by may
// see: capable hospitals not on diversion, ranked by ETA from the scene.
func (s *Service) Destinations(ctx context.Context, by Principal, id string) (Destinations, error) {
	inc, err := s.Incident(ctx, by, id)
	if err != nil {
		return Destinations{}, err
	}
	return s.advise(ctx, inc, orbPoint(inc.Location), s.now()), nil
}

// advise ranks the area's hospitals for inc, by ETA from from at now.
//
// For a call whose category needs a centre (a stroke needs a stroke
// centre), the advice is the capable hospital not on diversion with the
// best ETA. When every capable one diverts, or none holds the centre, it
// falls back to the nearest hospital not on diversion; when every
// hospital diverts, to the nearest capable one (else nearest) despite its
// diversion. The advice's reasons say which.
func (s *Service) advise(ctx context.Context, inc *Incident, from orb.Point, now time.Time) Destinations {
	centre, needs := inc.Category.Centre()
	out := Destinations{Incident: inc.ID, Category: inc.Category, Centre: centre, Hospitals: []Destination{}, GeneratedAt: now.UTC()}
	states, err := s.hospitalStates(ctx)
	if err != nil {
		s.log.Warn("destination advice without diversion states", "incident", inc.ID, "err", err)
	}
	all := make([]Destination, 0, len(s.area.Hospitals))
	for _, h := range s.area.Hospitals {
		route := s.eta.Estimate(from, h.Location, inc.Zone, inc.Zone)
		d := Destination{
			Hospital: h.ID, Name: h.Name, Level: h.Level, Location: LatLon{Lat: h.Location.Lat(), Lon: h.Location.Lon()},
			Centres: h.Centres, DistanceM: geo.Distance(from, h.Location), ETAS: route.Duration.Seconds(),
			Capable: !needs || h.Has(centre),
		}
		if st := states[h.ID]; st.Diverting(now) {
			d.Diversion, d.DiversionUntil = true, st.Until
			d.Reasons = append(d.Reasons, diversionReason(st))
		}
		if !d.Capable {
			d.Reasons = append(d.Reasons, fmt.Sprintf("no %s centre", centre))
		}
		all = append(all, d)
	}
	if len(all) == 0 {
		return out
	}
	// Capable and open first, then open, then diverting; by ETA within each.
	tier := func(d Destination) int {
		switch {
		case d.Diversion:
			return 2
		case !d.Capable:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(all, func(a, b Destination) int {
		return cmp.Or(cmp.Compare(tier(a), tier(b)), cmp.Compare(a.ETAS, b.ETAS), cmp.Compare(a.Hospital, b.Hospital))
	})
	advice, why := 0, ""
	capable := slices.ContainsFunc(all, func(d Destination) bool { return d.Capable })
	switch {
	case tier(all[0]) == 0:
		why = fmt.Sprintf("nearest hospital not on diversion: %s", drive(all[0]))
		if needs {
			why = fmt.Sprintf("nearest %s centre not on diversion: %s", centre, drive(all[0]))
		}
	case tier(all[0]) == 1 && capable:
		why = fmt.Sprintf("every %s centre is on diversion: nearest hospital not on diversion, %s", centre, drive(all[0]))
	case tier(all[0]) == 1:
		why = fmt.Sprintf("no %s centre in the area: nearest hospital, %s", centre, drive(all[0]))
	default: // every hospital diverts
		if i := slices.IndexFunc(all, func(d Destination) bool { return d.Capable }); i >= 0 {
			advice = i
		}
		why = fmt.Sprintf("every hospital is on diversion: nearest %s despite its diversion, %s", orCentre(needs, centre), drive(all[advice]))
	}
	all[advice].Reasons = append([]string{why}, all[advice].Reasons...)
	if advice != 0 {
		a := all[advice]
		all = slices.Insert(slices.Delete(all, advice, advice+1), 0, a)
	}
	for i := range all {
		all[i].Rank = i + 1
		if i > 0 && len(all[i].Reasons) == 0 {
			all[i].Reasons = []string{drive(all[i])}
		}
	}
	out.Hospitals = all[:min(len(all), maxDestinations)]
	out.Advice = &out.Hospitals[0]
	return out
}

// drive says how far and how long the drive to d is.
func drive(d Destination) string {
	return fmt.Sprintf("%.1f km, about %.0f min", d.DistanceM/1000, d.ETAS/60)
}

// orCentre names what the fallback goes to: a centre, or a hospital.
func orCentre(needs bool, c Centre) string {
	if needs {
		return string(c) + " centre"
	}
	return "hospital"
}

// diversionReason says why a hospital is skipped.
func diversionReason(st HospitalState) string {
	r := "on diversion"
	if !st.Until.IsZero() {
		r += " until " + st.Until.UTC().Format(time.RFC3339)
	}
	if st.Reason != "" {
		r += ": " + st.Reason
	}
	return r
}

// Prearrival tells the receiving hospital what is coming: the patient's
// call category and priority, and when the unit will arrive.
type Prearrival struct {
	Incident string    `json:"incident"`
	Unit     string    `json:"unit"`
	Hospital string    `json:"hospital"`
	Category Category  `json:"category"`
	Priority Priority  `json:"priority"`
	ETAS     float64   `json:"eta_s"`
	At       time.Time `json:"at"`
}

// prearrival publishes the prearrival event of unit, which has just
// started transporting the patient of inc: the advised hospital and the
// ETA from where the unit is (from the scene when its position is not
// known).
func (s *Service) prearrival(ctx context.Context, unit string, inc *Incident) {
	now := s.now()
	from := orbPoint(inc.Location)
	if st, ok := s.pic.Unit(unit); ok && st.Position != nil && now.Sub(st.Position.Time) <= s.stale {
		from = orb.Point{st.Position.Lon, st.Position.Lat}
	}
	d := s.advise(ctx, inc, from, now)
	if d.Advice == nil {
		s.log.Warn("prearrival: no hospital in the area", "incident", inc.ID, "unit", unit)
		return
	}
	p := &Prearrival{Incident: inc.ID, Unit: unit, Hospital: d.Advice.Hospital, Category: inc.Category, Priority: inc.Priority, ETAS: d.Advice.ETAS, At: now.UTC()}
	s.events.Publish(Event{Type: EventPrearrival, Prearrival: p, Jurisdiction: inc.Jurisdiction})
}
