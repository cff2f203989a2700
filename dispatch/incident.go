package dispatch

import (
	"slices"
	"time"

	"github.com/lifeline-ems/lifeline/geo"
	"github.com/lifeline-ems/lifeline/telemetry"
)

// Category is what the call is about; it selects the destination centre.
type Category string

// Call categories (contract v1).
const (
	CatChestPain Category = "chest_pain"
	CatStroke    Category = "stroke"
	CatTrauma    Category = "trauma"
	CatMaternal  Category = "maternal"
	CatNeonatal  Category = "neonatal"
	CatOther     Category = "other"
)

var categories = []Category{CatChestPain, CatStroke, CatTrauma, CatMaternal, CatNeonatal, CatOther}

// Valid reports whether c is a known category.
func (c Category) Valid() bool { return slices.Contains(categories, c) }

// Centre returns the five-centre capability a destination needs for c.
func (c Category) Centre() (Centre, bool) {
	if c == CatOther || !c.Valid() {
		return "", false
	}
	return Centre(c), true
}

// Priority orders calls: 1 is the most urgent (life-threatening), 4 the least.
type Priority int

// Valid reports whether p is between 1 and 4.
func (p Priority) Valid() bool { return p >= 1 && p <= 4 }

// IncidentStatus is where a call is.
type IncidentStatus string

// Incident statuses: open (no unit committed), assigned (a unit is working
// it), closed (the last unit cleared), cancelled.
const (
	IncidentOpen      IncidentStatus = "open"
	IncidentAssigned  IncidentStatus = "assigned"
	IncidentClosed    IncidentStatus = "closed"
	IncidentCancelled IncidentStatus = "cancelled"
)

// LatLon is a WGS-84 location on the wire.
type LatLon struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// NewIncident is a call as a dispatcher or an integrating system reports it.
type NewIncident struct {
	Location   LatLon   `json:"location"`
	Address    string   `json:"address"`
	Priority   Priority `json:"priority"`
	Category   Category `json:"category"`
	ExternalID string   `json:"external_id"`
	Source     string   `json:"source"`
}

// Validate checks a new call before anything is stored. The address is
// free text, external_id and source are identifiers (telemetry.CheckText:
// no NUL or other control character).
func (n NewIncident) Validate() error {
	if !geo.ValidLatLon(n.Location.Lat, n.Location.Lon) || (n.Location.Lat == 0 && n.Location.Lon == 0) {
		return Errorf(CodeInvalid, "location %v,%v is not a WGS-84 coordinate", n.Location.Lat, n.Location.Lon)
	}
	if !n.Priority.Valid() {
		return Errorf(CodeInvalid, "priority %d: want 1 (most urgent) to 4", n.Priority)
	}
	if !n.Category.Valid() {
		return Errorf(CodeInvalid, "category %q: want one of %v", n.Category, categories)
	}
	if len(n.Address) > 500 || len(n.ExternalID) > 128 || len(n.Source) > 64 {
		return Errorf(CodeInvalid, "address, external_id or source too long (500, 128, 64 bytes)")
	}
	for _, f := range []struct {
		name, s string
		k       telemetry.TextKind
	}{{"address", n.Address, telemetry.FreeText}, {"external_id", n.ExternalID, telemetry.Identifier}, {"source", n.Source, telemetry.Identifier}} {
		if err := telemetry.CheckText(f.s, f.k); err != nil {
			return Errorf(CodeInvalid, "%s: %v", f.name, err)
		}
	}
	return nil
}

// Incident is a call for an ambulance.
type Incident struct {
	ID           string         `json:"id"`
	ExternalID   string         `json:"external_id,omitempty"`
	Source       string         `json:"source,omitempty"`
	Location     LatLon         `json:"location"`
	Address      string         `json:"address"`
	Priority     Priority       `json:"priority"`
	Category     Category       `json:"category"`
	Jurisdiction string         `json:"jurisdiction"`
	Zone         geo.Zone       `json:"zone"`
	RadiusM      float64        `json:"radius_m"`
	Status       IncidentStatus `json:"status"`
	// Satisfaction is whether an available unit was inside the service
	// radius when the call came (the reform's call satisfaction), decided
	// at intake and kept: it cannot be worked out later from positions.
	// "" for a call taken before Lifeline recorded it.
	Satisfaction Satisfaction `json:"satisfaction,omitempty"`
	// SatisfactionReason says why no unit of the call's own jurisdiction
	// was inside the radius (for a call satisfied only through linkage,
	// or not at all); "" otherwise.
	SatisfactionReason string `json:"satisfaction_reason,omitempty"`
	// Outcome is how a closed or cancelled call ended, as the dispatcher
	// recorded it ("transported", "treated on scene", "test call", ...).
	Outcome string `json:"outcome,omitempty"`
	// Version counts the changes of the incident: every stored change
	// increments it, and a change made from an older version is refused.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
}

// AssignmentStatus is where one unit's commitment to a call is.
type AssignmentStatus string

// Assignment statuses: offered (sent, no ack yet), accepted, declined
// (the crew refused the offer), cancelled (a dispatcher stood the unit
// down), aborted (the unit could not go on: out of service, or cleared
// before it reached the patient; the call was put back in the queue),
// completed (the unit cleared after doing its part).
const (
	AssignOffered   AssignmentStatus = "offered"
	AssignAccepted  AssignmentStatus = "accepted"
	AssignDeclined  AssignmentStatus = "declined"
	AssignCancelled AssignmentStatus = "cancelled"
	AssignAborted   AssignmentStatus = "aborted"
	AssignCompleted AssignmentStatus = "completed"
)

// Active reports whether the assignment still holds its unit.
func (s AssignmentStatus) Active() bool { return s == AssignOffered || s == AssignAccepted }

// Assignment commits one unit to one incident.
type Assignment struct {
	ID       string           `json:"id"`
	Incident string           `json:"incident"`
	Unit     string           `json:"unit"`
	Status   AssignmentStatus `json:"status"`
	By       string           `json:"by"`
	Reason   string           `json:"reason,omitempty"`
	// Version counts the changes of the assignment (see Incident.Version).
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// AcceptedAt is when the crew accepted the call (an ack, or an
	// implicit acceptance by pressing a status); zero while it has not.
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
}

// Window is when the assignment held its unit: from its creation until it
// ended (its last update, once no longer active) or now.
func (a Assignment) Window(now time.Time) (from, to time.Time) {
	if a.Status.Active() {
		return a.CreatedAt, now
	}
	return a.CreatedAt, a.UpdatedAt
}

// Step is the rung of the escalation ladder a candidate comes from.
type Step string

// The escalation ladder, in order: a call's own county first, within its
// radius and then beyond it; then the counties of the same city whose
// boundary touches it; then the rest of the city.
const (
	StepOwn        Step = "own"         // own county, inside the first radius
	StepOwnWidened Step = "own_widened" // own county, beyond the first radius
	StepNeighbour  Step = "neighbour"   // a neighbouring county of the same city
	StepCity       Step = "city"        // the rest of the city
)

// steps lists the ladder in order.
var steps = []Step{StepOwn, StepOwnWidened, StepNeighbour, StepCity}

// Recommendation is one ranked candidate unit for a call.
type Recommendation struct {
	Rank         int     `json:"rank"`
	Unit         string  `json:"unit"`
	Callsign     string  `json:"callsign"`
	Station      string  `json:"station"`
	DistanceM    float64 `json:"distance_m"`
	RoadM        float64 `json:"road_m"`
	ETAS         float64 `json:"eta_s"`
	WithinRadius bool    `json:"within_radius"`
	// Step is the rung of the escalation ladder the unit comes from.
	Step Step `json:"step"`
	// Jurisdiction is the unit's own jurisdiction.
	Jurisdiction string `json:"jurisdiction"`
	// NeedsConsent is true when the one asking may not send the unit
	// without its county's consent: another county's unit, for a county
	// dispatcher. A city user needs none beneath the city.
	NeedsConsent bool     `json:"needs_consent"`
	Reasons      []string `json:"reasons"`
}

// Exclusion is a unit that was not recommended, and why.
type Exclusion struct {
	Unit   string `json:"unit"`
	Reason string `json:"reason"`
}

// Recommendations is the ranked answer to "who should go". RadiusM is
// the radius the ranking used: the first of the call's ladder, or the
// widest when the search had to widen.
type Recommendations struct {
	Incident    string           `json:"incident"`
	RadiusM     float64          `json:"radius_m"`
	Candidates  []Recommendation `json:"candidates"`
	Excluded    []Exclusion      `json:"excluded"`
	GeneratedAt time.Time        `json:"generated_at"`
}
