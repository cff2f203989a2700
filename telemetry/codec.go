package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// The coordinate reference systems a gps payload may name in crs.
const (
	CRSWGS84 = "wgs84"
	CRSGCJ02 = "gcj02"
)

// tsLayout is how the encoders write ts: RFC 3339 with milliseconds.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// Epoch milliseconds a ts number may hold: years 0001 to 9999, what RFC
// 3339 can also say.
const (
	minEpochMs = -62135596800000
	maxEpochMs = 253402300799999
)

// wireFix is one gps object of contract v1. Pointers tell absent from zero.
type wireFix struct {
	Seq      *uint64         `json:"seq"`
	TS       json.RawMessage `json:"ts"`
	Lat      *float64        `json:"lat"`
	Lon      *float64        `json:"lon"`
	SpeedKmh float64         `json:"speed_kmh"`
	Heading  float64         `json:"heading"`
	HDOP     float64         `json:"hdop"`
	Sats     int             `json:"sats"`
	CRS      string          `json:"crs"`
}

// decodeError makes the *Rejection decoders return.
func decodeError(unit string, k Kind, err error) *Rejection {
	var r *Rejection
	if errors.As(err, &r) {
		r.Unit, r.Kind = unit, k
		return r
	}
	return &Rejection{Unit: unit, Kind: k, Reason: Malformed, Detail: err.Error(), Err: err}
}

// DecodeFixes parses a gps payload: one fix object or an array of them (a
// store-and-forward batch). ts is RFC 3339 or epoch milliseconds as a JSON
// number; crs is wgs84 (the default) or gcj02, whose coordinates are
// converted to WGS-84. Unknown fields are ignored; wrong types, a missing
// seq, ts, lat or lon, an unknown crs or an empty batch make the whole
// message a *Rejection (Malformed, or OutOfRange for a ts no calendar
// holds). Coordinates are not judged here but by the Validator, so that
// one bad fix does not cost a batch its good ones.
func DecodeFixes(unit string, b []byte, received time.Time) ([]Fix, error) {
	b = bytes.TrimSpace(b)
	received = received.UTC()
	if len(b) > 0 && b[0] == '[' {
		var ws []wireFix
		if err := json.Unmarshal(b, &ws); err != nil {
			return nil, decodeError(unit, KindGPS, err)
		}
		if len(ws) == 0 {
			return nil, reject(unit, KindGPS, Malformed, "empty batch")
		}
		fixes := make([]Fix, len(ws))
		for i := range ws {
			f, err := ws[i].fix(unit, received)
			if err != nil {
				r := decodeError(unit, KindGPS, err)
				r.Detail = fmt.Sprintf("fix %d: %s", i, r.Detail)
				return nil, r
			}
			fixes[i] = f
		}
		return fixes, nil
	}
	var w wireFix
	if err := unmarshalObject(b, &w); err != nil {
		return nil, decodeError(unit, KindGPS, err)
	}
	f, err := w.fix(unit, received)
	if err != nil {
		return nil, decodeError(unit, KindGPS, err)
	}
	return []Fix{f}, nil
}

func (w *wireFix) fix(unit string, received time.Time) (Fix, error) {
	switch {
	case w.Seq == nil:
		return Fix{}, missing("seq")
	case w.Lat == nil:
		return Fix{}, missing("lat")
	case w.Lon == nil:
		return Fix{}, missing("lon")
	}
	t, ok, err := parseTS(w.TS)
	if err != nil {
		return Fix{}, err
	}
	if !ok {
		return Fix{}, missing("ts")
	}
	lat, lon := *w.Lat, *w.Lon
	switch {
	case w.CRS == "" || strings.EqualFold(w.CRS, CRSWGS84):
	case strings.EqualFold(w.CRS, CRSGCJ02):
		// Only a coordinate that could be one is converted, so the
		// Validator still sees, and rejects, what is out of range.
		if validCoord(lat, lon) {
			p := geo.GCJ02ToWGS84(orb.Point{lon, lat})
			lon, lat = p[0], p[1]
		}
	default:
		return Fix{}, &Rejection{Reason: Malformed, Detail: fmt.Sprintf("unknown crs %q", w.CRS)}
	}
	return Fix{
		Unit:     unit,
		Seq:      *w.Seq,
		Time:     t,
		Lat:      lat,
		Lon:      lon,
		SpeedKmh: w.SpeedKmh,
		Heading:  w.Heading,
		HDOP:     w.HDOP,
		Sats:     w.Sats,
		Received: received,
	}, nil
}

func missing(field string) *Rejection {
	return &Rejection{Reason: Malformed, Detail: "missing " + field}
}

// parseTS parses a ts value: an RFC 3339 string or epoch milliseconds.
// ok is false when ts is absent or null.
func parseTS(raw json.RawMessage) (t time.Time, ok bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, false, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, false, &Rejection{Reason: Malformed, Detail: fmt.Sprintf("ts %q: not RFC 3339", s), Err: err}
		}
		if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
			return time.Time{}, false, &Rejection{Reason: OutOfRange, Detail: fmt.Sprintf("ts %q: outside years 1-9999 UTC", s)}
		}
		return t, true, nil
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return time.Time{}, false, &Rejection{Reason: Malformed, Detail: fmt.Sprintf("ts %.32s: want RFC 3339 string or epoch ms", raw)}
	}
	s := string(raw)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < minEpochMs || ms > maxEpochMs {
			return time.Time{}, false, &Rejection{Reason: OutOfRange, Detail: fmt.Sprintf("ts %d ms: outside years 1-9999", ms)}
		}
		return time.UnixMilli(ms).UTC(), true, nil
	}
	ms, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(ms) || ms < minEpochMs || ms > maxEpochMs {
		return time.Time{}, false, &Rejection{Reason: OutOfRange, Detail: fmt.Sprintf("ts %.32s ms: outside years 1-9999", s)}
	}
	whole := math.Floor(ms)
	ns := math.Round((ms - whole) * 1e6)
	return time.UnixMilli(int64(whole)).Add(time.Duration(ns)).UTC(), true, nil
}

// EncodeFixes returns the gps payload of fixes as a terminal publishes it:
// one object for one fix, else an array; ts in RFC 3339 with milliseconds,
// crs omitted (WGS-84). Non-finite numbers are written as null, which
// DecodeFixes rejects for lat and lon.
func EncodeFixes(fixes ...Fix) []byte {
	if len(fixes) == 1 {
		return appendFix(make([]byte, 0, 160), fixes[0])
	}
	b := make([]byte, 0, 2+160*len(fixes))
	b = append(b, '[')
	for i, f := range fixes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFix(b, f)
	}
	return append(b, ']')
}

func appendFix(b []byte, f Fix) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, f.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = f.Time.UTC().AppendFormat(b, tsLayout)
	b = append(b, `","lat":`...)
	b = appendFloat(b, f.Lat)
	b = append(b, `,"lon":`...)
	b = appendFloat(b, f.Lon)
	b = append(b, `,"speed_kmh":`...)
	b = appendFloat(b, f.SpeedKmh)
	b = append(b, `,"heading":`...)
	b = appendFloat(b, f.Heading)
	b = append(b, `,"hdop":`...)
	b = appendFloat(b, f.HDOP)
	b = append(b, `,"sats":`...)
	b = strconv.AppendInt(b, int64(f.Sats), 10)
	return append(b, '}')
}

// appendFloat writes x as a JSON number the way encoding/json does, or
// null when JSON cannot hold it.
func appendFloat(b []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, x, format, -1, 64)
}

// wireVideo is a video payload of contract v1.
type wireVideo struct {
	TS      json.RawMessage `json:"ts"`
	Uplink  string          `json:"uplink"`
	Cameras []wireCamera    `json:"cameras"`
}

type wireCamera struct {
	Ch          *int    `json:"ch"`
	State       *string `json:"state"`
	BitrateKbps int     `json:"bitrate_kbps"`
}

// DecodeVideo parses a video payload. ts defaults to received when absent;
// uplink, when present, is one of the Uplink* values; every camera needs a
// ch (0 or more) and one of the Camera* states, and a bitrate is not
// negative.
func DecodeVideo(unit string, b []byte, received time.Time) (Video, error) {
	var w wireVideo
	if err := unmarshalObject(b, &w); err != nil {
		return Video{}, decodeError(unit, KindVideo, err)
	}
	t, ok, err := parseTS(w.TS)
	if err != nil {
		return Video{}, decodeError(unit, KindVideo, err)
	}
	if !ok {
		t = received.UTC()
	}
	switch w.Uplink {
	case "", Uplink5G, Uplink4G, UplinkNone:
	default:
		return Video{}, reject(unit, KindVideo, Malformed, "unknown uplink %q", w.Uplink)
	}
	v := Video{Unit: unit, Time: t, Uplink: w.Uplink}
	if len(w.Cameras) > 0 {
		v.Cameras = make([]Camera, len(w.Cameras))
	}
	for i, c := range w.Cameras {
		switch {
		case c.Ch == nil:
			return Video{}, reject(unit, KindVideo, Malformed, "camera %d: missing ch", i)
		case *c.Ch < 0:
			return Video{}, reject(unit, KindVideo, Malformed, "camera %d: ch %d", i, *c.Ch)
		case c.State == nil:
			return Video{}, reject(unit, KindVideo, Malformed, "camera %d: missing state", i)
		case c.BitrateKbps < 0:
			return Video{}, reject(unit, KindVideo, Malformed, "camera %d: bitrate_kbps %d", i, c.BitrateKbps)
		}
		switch *c.State {
		case CameraStreaming, CameraRecording, CameraIdle, CameraFault:
		default:
			return Video{}, reject(unit, KindVideo, Malformed, "camera %d: unknown state %q", i, *c.State)
		}
		v.Cameras[i] = Camera{Ch: *c.Ch, State: *c.State, BitrateKbps: c.BitrateKbps}
	}
	return v, nil
}

// wireVideoOut is how EncodeVideo writes a video payload.
type wireVideoOut struct {
	TS      string   `json:"ts"`
	Uplink  string   `json:"uplink,omitempty"`
	Cameras []Camera `json:"cameras"`
}

// EncodeVideo returns the video payload of v as a terminal publishes it.
func EncodeVideo(v Video) []byte {
	cams := v.Cameras
	if cams == nil {
		cams = []Camera{}
	}
	return mustMarshal(wireVideoOut{TS: v.Time.UTC().Format(tsLayout), Uplink: v.Uplink, Cameras: cams})
}

type wireStatus struct {
	TS       json.RawMessage `json:"ts"`
	Status   *string         `json:"status"`
	Incident string          `json:"incident"`
}

// DecodeStatus parses a status payload. status is required and must be one
// of the Status* values; ts defaults to received when absent; incident is
// an Identifier (CheckText).
func DecodeStatus(unit string, b []byte, received time.Time) (Status, error) {
	var w wireStatus
	if err := unmarshalObject(b, &w); err != nil {
		return Status{}, decodeError(unit, KindStatus, err)
	}
	if w.Status == nil {
		return Status{}, decodeError(unit, KindStatus, missing("status"))
	}
	if !ValidStatus(*w.Status) {
		return Status{}, reject(unit, KindStatus, Malformed, "unknown status %q", *w.Status)
	}
	t, ok, err := parseTS(w.TS)
	if err != nil {
		return Status{}, decodeError(unit, KindStatus, err)
	}
	if !ok {
		t = received.UTC()
	}
	if err := CheckText(w.Incident, Identifier); err != nil {
		return Status{}, reject(unit, KindStatus, Malformed, "incident: %v", err)
	}
	return Status{Unit: unit, Time: t, Status: *w.Status, Incident: w.Incident}, nil
}

type wireStatusOut struct {
	TS       string `json:"ts"`
	Status   string `json:"status"`
	Incident string `json:"incident,omitempty"`
}

// EncodeStatus returns the status payload of s as a terminal publishes it.
func EncodeStatus(s Status) []byte {
	return mustMarshal(wireStatusOut{TS: s.Time.UTC().Format(tsLayout), Status: s.Status, Incident: s.Incident})
}

type wireAck struct {
	Assignment *string `json:"assignment"`
	Accepted   *bool   `json:"accepted"`
	Reason     string  `json:"reason"`
}

// DecodeAck parses an ack payload: assignment (not empty, an Identifier)
// and accepted are required. reason is FreeText with what CheckText
// refuses removed (CleanText): a crew's answer is not lost to a stray
// byte. Its Time is received.
func DecodeAck(unit string, b []byte, received time.Time) (Ack, error) {
	var w wireAck
	if err := unmarshalObject(b, &w); err != nil {
		return Ack{}, decodeError(unit, KindAck, err)
	}
	switch {
	case w.Assignment == nil || *w.Assignment == "":
		return Ack{}, decodeError(unit, KindAck, missing("assignment"))
	case w.Accepted == nil:
		return Ack{}, decodeError(unit, KindAck, missing("accepted"))
	}
	if err := CheckText(*w.Assignment, Identifier); err != nil {
		return Ack{}, reject(unit, KindAck, Malformed, "assignment: %v", err)
	}
	return Ack{Unit: unit, Time: received.UTC(), Assignment: *w.Assignment, Accepted: *w.Accepted, Reason: CleanText(w.Reason, FreeText)}, nil
}

type wireAckOut struct {
	Assignment string `json:"assignment"`
	Accepted   bool   `json:"accepted"`
	Reason     string `json:"reason"`
}

// EncodeAck returns the ack payload of a as a terminal publishes it.
func EncodeAck(a Ack) []byte {
	return mustMarshal(wireAckOut{Assignment: a.Assignment, Accepted: a.Accepted, Reason: a.Reason})
}

// The presence payloads of contract v1.
const (
	PresenceOnline  = "online"
	PresenceOffline = "offline"
)

// DecodePresence parses an online payload: online or offline, bare or as a
// JSON string. Its Time is received.
func DecodePresence(unit string, b []byte, received time.Time) (Presence, error) {
	s := string(bytes.TrimSpace(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal([]byte(s), &s); err != nil {
			return Presence{}, decodeError(unit, KindOnline, err)
		}
	}
	p := Presence{Unit: unit, Time: received.UTC()}
	switch s {
	case PresenceOnline:
		p.Online = true
	case PresenceOffline:
	default:
		return Presence{}, reject(unit, KindOnline, Malformed, "want %q or %q, got %.32q", PresenceOnline, PresenceOffline, s)
	}
	return p, nil
}

// EncodePresence returns the payload a terminal publishes (retained) on
// its online topic: "online" as a JSON string, or "offline" for its will.
func EncodePresence(online bool) []byte {
	if online {
		return []byte(`"` + PresenceOnline + `"`)
	}
	return []byte(`"` + PresenceOffline + `"`)
}

// unmarshalObject decodes b, which must be a JSON object, into v.
func unmarshalObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return &Rejection{Reason: Malformed, Detail: "want a JSON object"}
	}
	return json.Unmarshal(b, v)
}

// mustMarshal marshals values that cannot fail to marshal (strings,
// numbers and bools only).
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("telemetry: marshal %T: %v", v, err))
	}
	return b
}
