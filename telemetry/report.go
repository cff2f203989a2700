package telemetry

import (
	"time"

	"github.com/paulmach/orb"
)

// Fix is one GPS position reported by a terminal, after decoding.
// Coordinates are always WGS-84.
type Fix struct {
	Unit     string
	Seq      uint64    // per-unit sequence number set by the terminal
	Time     time.Time // fix time, UTC
	Lat, Lon float64   // WGS-84 (converted from GCJ-02 when the payload said crs gcj02)
	SpeedKmh float64
	Heading  float64 // degrees clockwise from north
	HDOP     float64
	Sats     int
	Received time.Time // when the server received it
}

// Point returns the fix as an orb.Point ([lon, lat]).
func (f Fix) Point() orb.Point { return orb.Point{f.Lon, f.Lat} }

// Camera is the state of one camera channel of a unit's video system.
type Camera struct {
	Ch          int    `json:"ch"`
	State       string `json:"state"` // one of the Camera* states
	BitrateKbps int    `json:"bitrate_kbps"`
}

// The camera states of contract v1.
const (
	CameraStreaming = "streaming"
	CameraRecording = "recording"
	CameraIdle      = "idle"
	CameraFault     = "fault"
)

// Video is a unit's video uplink report.
type Video struct {
	Unit    string
	Time    time.Time
	Uplink  string // one of the Uplink* values, or "" when the terminal did not say
	Cameras []Camera
}

// The video uplink values of contract v1.
const (
	Uplink5G   = "5g"
	Uplink4G   = "4g"
	UplinkNone = "none"
)

// Status is a crew status press on the terminal.
type Status struct {
	Unit     string
	Time     time.Time
	Status   string // one of the Status* values
	Incident string
}

// The crew status values terminals may press (contract v1).
const (
	StatusEnRoute      = "en_route"
	StatusOnScene      = "on_scene"
	StatusTransporting = "transporting"
	StatusAtHospital   = "at_hospital"
	StatusAvailable    = "available"
	StatusOutOfService = "out_of_service"
)

// ValidStatus reports whether s is a crew status of contract v1.
func ValidStatus(s string) bool {
	switch s {
	case StatusEnRoute, StatusOnScene, StatusTransporting, StatusAtHospital, StatusAvailable, StatusOutOfService:
		return true
	}
	return false
}

// Ack is a terminal's answer to an assignment sent on its cmd topic.
type Ack struct {
	Unit       string
	Time       time.Time // when the server received it
	Assignment string
	Accepted   bool
	Reason     string
}

// Presence is a terminal going online or offline (its last will).
type Presence struct {
	Unit   string
	Online bool
	Time   time.Time // when the server received it
}

// Positions is what one gps message yields after validation.
type Positions struct {
	Unit  string
	Fixes []Fix // every accepted fix, for history (late ones included), in seq order
	// Latest is the newest accepted fix by fix time if it is newer than the
	// unit's live position, else nil. It points into Fixes.
	Latest *Fix
	// Clock is what is known of the terminal's clock. A message whose
	// fixes were all dropped still reaches the Sink, with no Fixes, when
	// Clock has changed since the Sink was last told.
	Clock Clock
}
