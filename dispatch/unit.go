package dispatch

import (
	"slices"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// UnitStatus is where a unit is in its lifecycle:
// available -> dispatched -> en_route -> on_scene -> transporting ->
// at_hospital -> available, or out_of_service at any point.
type UnitStatus string

// The unit lifecycle.
const (
	Available    UnitStatus = "available"
	Dispatched   UnitStatus = "dispatched"
	EnRoute      UnitStatus = "en_route"
	OnScene      UnitStatus = "on_scene"
	Transporting UnitStatus = "transporting"
	AtHospital   UnitStatus = "at_hospital"
	OutOfService UnitStatus = "out_of_service"
)

var unitStatuses = []UnitStatus{Available, Dispatched, EnRoute, OnScene, Transporting, AtHospital, OutOfService}

// Valid reports whether s is a known status.
func (s UnitStatus) Valid() bool { return slices.Contains(unitStatuses, s) }

// Committed reports whether a unit in status s is working a call.
func (s UnitStatus) Committed() bool {
	switch s {
	case Dispatched, EnRoute, OnScene, Transporting, AtHospital:
		return true
	}
	return false
}

// Capabilities a unit may carry.
const (
	ALS     = "als"      // advanced life support crew and kit
	BLS     = "bls"      // basic life support
	NeoCare = "neonatal" // transport incubator
)

// Unit is an ambulance in the registry.
type Unit struct {
	ID           string   `json:"id"`
	Callsign     string   `json:"callsign"`
	Station      string   `json:"station"`
	Jurisdiction string   `json:"jurisdiction"`
	Capabilities []string `json:"capabilities"`
	Illustrative bool     `json:"illustrative,omitempty"`
}

// Validate checks the unit's own fields.
func (u Unit) Validate() error {
	if !telemetry.ValidUnitID(u.ID) {
		return Errorf(CodeInvalid, "unit %q: id must be 1-64 letters, digits, '-' or '_'", u.ID)
	}
	if u.Jurisdiction == "" {
		return Errorf(CodeInvalid, "unit %s: no jurisdiction", u.ID)
	}
	return nil
}

// Has reports whether u carries capability c.
func (u Unit) Has(c string) bool { return slices.Contains(u.Capabilities, c) }

// Position is a unit's live position: its newest fix by fix time.
type Position struct {
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
	SpeedKmh float64   `json:"speed_kmh"`
	Heading  float64   `json:"heading"`
	HDOP     float64   `json:"hdop,omitempty"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"ts"`       // by the terminal's clock
	Received time.Time `json:"received"` // by the server's: what freshness is judged by
}

// seen is when the server received the position (its fix time if that
// is not known).
func (p *Position) seen() time.Time {
	if p.Received.IsZero() {
		return p.Time
	}
	return p.Received
}

// VideoState is the last video-status report of a unit's terminal.
type VideoState struct {
	Uplink  string             `json:"uplink"`
	Cameras []telemetry.Camera `json:"cameras"`
	Time    time.Time          `json:"ts"`
}

// UnitState is the live picture of one unit, as consoles see it.
type UnitState struct {
	Unit
	Status     UnitStatus  `json:"status"`
	Online     bool        `json:"online"`
	Stale      bool        `json:"stale"`
	Position   *Position   `json:"position,omitempty"`
	Video      *VideoState `json:"video,omitempty"`
	LastSeen   time.Time   `json:"last_seen,omitzero"`
	Incident   string      `json:"incident,omitempty"`
	Assignment string      `json:"assignment,omitempty"`
	// Version is the version of the unit's record (UnitRecord.Version).
	Version int64 `json:"version"`
	// PressAt is when the crew last pressed a status (UnitRecord.PressAt).
	PressAt time.Time `json:"-"`
	// ClockOffsetS is how far the terminal's clock is off, in seconds
	// (+ fast), once telemetry knows (telemetry.Clock); ClockSuspect is
	// set when that is too far for its reports' times to be trusted.
	ClockOffsetS float64 `json:"clock_offset_s,omitempty"`
	ClockSuspect bool    `json:"clock_suspect,omitempty"`
}

// record returns the dispatch state of st as the record keeps it.
func (st *UnitState) record() UnitRecord {
	return UnitRecord{Unit: st.ID, Status: st.Status, Incident: st.Incident, Assignment: st.Assignment, PressAt: st.PressAt, Version: st.Version}
}

// setRecord makes r the dispatch state of st.
func (st *UnitState) setRecord(r UnitRecord) {
	st.Status, st.Incident, st.Assignment, st.PressAt, st.Version = r.Status, r.Incident, r.Assignment, r.PressAt, r.Version
}

// Transition records one status change of a unit, with its time and source.
type Transition struct {
	Unit     string     `json:"unit"`
	Incident string     `json:"incident,omitempty"`
	From     UnitStatus `json:"from"`
	To       UnitStatus `json:"to"`
	At       time.Time  `json:"at"`
	Source   string     `json:"source"` // terminal, dispatcher:<name>, system
}
