package telemetry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/lifeline-ems/lifeline/geo"
)

// t0 is the clock of the tests: the contract's example morning.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// received is when the tests' server received a message.
var received = t0.Add(500 * time.Millisecond)

// sameFix reports whether two fixes are equal, times compared as instants.
func sameFix(a, b Fix) bool {
	return a.Unit == b.Unit && a.Seq == b.Seq && a.Time.Equal(b.Time) &&
		a.Lat == b.Lat && a.Lon == b.Lon && a.SpeedKmh == b.SpeedKmh &&
		a.Heading == b.Heading && a.HDOP == b.HDOP && a.Sats == b.Sats &&
		a.Received.Equal(b.Received)
}

func sameFixes(a, b []Fix) bool { return slices.EqualFunc(a, b, sameFix) }

// wantReason checks that err is a *Rejection of unit and kind for reason.
func wantReason(tb testing.TB, err error, unit string, k Kind, reason Reason) {
	tb.Helper()
	var r *Rejection
	if !errors.As(err, &r) {
		tb.Fatalf("error %v (%T) is not a *Rejection", err, err)
	}
	if r.Reason != reason || r.Unit != unit || r.Kind != k {
		tb.Fatalf("rejection %q: got unit %q kind %q reason %q, want %q %q %q", r, r.Unit, r.Kind, r.Reason, unit, k, reason)
	}
	if !errors.Is(err, &Rejection{Reason: reason}) {
		tb.Fatalf("errors.Is(%v, reason %s) = false", err, reason)
	}
}

func TestDecodeFixes(t *testing.T) {
	base := Fix{Unit: "A1", Seq: 1042, Time: t0.Add(time.Second), Lat: 29.18, Lon: 104.97,
		SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Sats: 11, Received: received}
	with := func(edit func(*Fix)) Fix { f := base; edit(&f); return f }
	contract := `{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"crs":"wgs84"}`
	tests := []struct {
		name    string
		payload string
		want    []Fix
	}{
		{"contract example", contract, []Fix{base}},
		{"crs absent is wgs84", strings.Replace(contract, `,"crs":"wgs84"`, "", 1), []Fix{base}},
		{"crs upper case", strings.Replace(contract, `"wgs84"`, `"WGS84"`, 1), []Fix{base}},
		{"crs null", strings.Replace(contract, `"wgs84"`, `null`, 1), []Fix{base}},
		{"whitespace around", "\n\t " + contract + " \r\n", []Fix{base}},
		{"optional fields absent", `{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`,
			[]Fix{with(func(f *Fix) { f.SpeedKmh, f.Heading, f.HDOP, f.Sats = 0, 0, 0, 0 })}},
		{"optional fields null", `{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":null,"heading":null,"hdop":null,"sats":null}`,
			[]Fix{with(func(f *Fix) { f.SpeedKmh, f.Heading, f.HDOP, f.Sats = 0, 0, 0, 0 })}},
		{"ts epoch ms", strings.Replace(contract, `"2026-11-23T08:00:01Z"`, fmt.Sprint(t0.Add(time.Second).UnixMilli()), 1), []Fix{base}},
		{"ts epoch ms with fraction", strings.Replace(contract, `"2026-11-23T08:00:01Z"`, fmt.Sprintf("%d.25", t0.Add(time.Second).UnixMilli()), 1),
			[]Fix{with(func(f *Fix) { f.Time = f.Time.Add(250 * time.Microsecond) })}},
		{"ts epoch ms in exponent form", strings.Replace(contract, `"2026-11-23T08:00:01Z"`, "1.7954208010e12", 1), []Fix{base}},
		{"ts with offset becomes UTC", strings.Replace(contract, `"2026-11-23T08:00:01Z"`, `"2026-11-23T16:00:01+08:00"`, 1), []Fix{base}},
		{"ts with nanoseconds", strings.Replace(contract, `"2026-11-23T08:00:01Z"`, `"2026-11-23T08:00:01.123456789Z"`, 1),
			[]Fix{with(func(f *Fix) { f.Time = f.Time.Add(123456789) })}},
		{"unknown fields ignored", `{"vendor":{"model":"X9","fw":[1,2]},"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"odometer_km":123.4,"alt":null}`, []Fix{base}},
		{"batch", `[` + contract + `,{"seq":1043,"ts":"2026-11-23T08:00:02Z","lat":29.181,"lon":104.971}]`,
			[]Fix{base, {Unit: "A1", Seq: 1043, Time: t0.Add(2 * time.Second), Lat: 29.181, Lon: 104.971, Received: received}}},
		{"batch of one", `[` + contract + `]`, []Fix{base}},
		{"out of range coordinates are the validator's", `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":91,"lon":1e300}`,
			[]Fix{{Unit: "A1", Seq: 1, Time: t0.Add(time.Second), Lat: 91, Lon: 1e300, Received: received}}},
		{"gcj02 out of range left for the validator", `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":91,"lon":104,"crs":"gcj02"}`,
			[]Fix{{Unit: "A1", Seq: 1, Time: t0.Add(time.Second), Lat: 91, Lon: 104, Received: received}}},
		{"max seq", `{"seq":18446744073709551615,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`,
			[]Fix{{Unit: "A1", Seq: math.MaxUint64, Time: t0.Add(time.Second), Lat: 29.18, Lon: 104.97, Received: received}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFixes("A1", []byte(tt.payload), received)
			if err != nil {
				t.Fatalf("DecodeFixes: %v", err)
			}
			if !sameFixes(got, tt.want) {
				t.Errorf("DecodeFixes:\ngot  %+v\nwant %+v", got, tt.want)
			}
			for _, f := range got {
				if f.Time.Location() != time.UTC || f.Received.Location() != time.UTC {
					t.Errorf("fix %d: got times in %v and %v, want UTC", f.Seq, f.Time.Location(), f.Received.Location())
				}
			}
		})
	}
}

func TestDecodeFixesGCJ02(t *testing.T) {
	wgs := orb.Point{104.97, 29.18}
	gcj := geo.WGS84ToGCJ02(wgs)
	payload := fmt.Sprintf(`{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":%v,"lon":%v,"crs":"gcj02"}`, gcj[1], gcj[0])
	got, err := DecodeFixes("A1", []byte(payload), received)
	if err != nil {
		t.Fatalf("DecodeFixes: %v", err)
	}
	if d := geo.Distance(got[0].Point(), wgs); d > 0.5 {
		t.Errorf("gcj02 %v decoded to %v, %.2f m from %v, want within 0.5 m", gcj, got[0].Point(), d, wgs)
	}
	if d := geo.Distance(gcj, wgs); d < 100 {
		t.Fatalf("test point: GCJ-02 shift is only %.0f m", d)
	}
}

func TestDecodeFixesErrors(t *testing.T) {
	const fix = `{"seq":1,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97}`
	replace := func(old, new string) string { return strings.Replace(fix, old, new, 1) }
	tests := []struct {
		name    string
		payload string
		want    Reason
	}{
		{"empty", ``, Malformed},
		{"blank", " \n", Malformed},
		{"not json", `seq=1`, Malformed},
		{"truncated", fix[:20], Malformed},
		{"trailing garbage", fix + `x`, Malformed},
		{"two objects", fix + fix, Malformed},
		{"null", `null`, Malformed},
		{"string", `"online"`, Malformed},
		{"number", `42`, Malformed},
		{"empty object", `{}`, Malformed},
		{"empty batch", `[]`, Malformed},
		{"batch with null", `[` + fix + `,null]`, Malformed},
		{"batch with a bad fix", `[` + fix + `,{"seq":2}]`, Malformed},
		{"nested batch", `[[` + fix + `]]`, Malformed},
		{"missing seq", replace(`"seq":1,`, ``), Malformed},
		{"missing ts", replace(`"ts":"2026-11-23T08:00:01Z",`, ``), Malformed},
		{"missing lat", replace(`"lat":29.18,`, ``), Malformed},
		{"missing lon", replace(`,"lon":104.97`, ``), Malformed},
		{"null lat", replace(`29.18`, `null`), Malformed},
		{"null ts", replace(`"2026-11-23T08:00:01Z"`, `null`), Malformed},
		{"seq as string", replace(`"seq":1`, `"seq":"1"`), Malformed},
		{"seq negative", replace(`"seq":1`, `"seq":-1`), Malformed},
		{"seq fractional", replace(`"seq":1`, `"seq":1.5`), Malformed},
		{"seq over uint64", replace(`"seq":1`, `"seq":18446744073709551616`), Malformed},
		{"lat as string", replace(`29.18`, `"29.18"`), Malformed},
		{"lat NaN", replace(`29.18`, `NaN`), Malformed},
		{"lat Infinity", replace(`29.18`, `Infinity`), Malformed},
		{"lat over float64", replace(`29.18`, `1e400`), Malformed},
		{"sats fractional", replace(`}`, `,"sats":1.5}`), Malformed},
		{"sats huge", replace(`}`, `,"sats":1e30}`), Malformed},
		{"speed as string", replace(`}`, `,"speed_kmh":"fast"}`), Malformed},
		{"ts bool", replace(`"2026-11-23T08:00:01Z"`, `true`), Malformed},
		{"ts object", replace(`"2026-11-23T08:00:01Z"`, `{"s":1}`), Malformed},
		{"ts empty string", replace(`"2026-11-23T08:00:01Z"`, `""`), Malformed},
		{"ts not RFC 3339", replace(`"2026-11-23T08:00:01Z"`, `"23/11/2026 08:00:01"`), Malformed},
		{"ts without zone", replace(`"2026-11-23T08:00:01Z"`, `"2026-11-23T08:00:01"`), Malformed},
		{"ts epoch ms as string", replace(`"2026-11-23T08:00:01Z"`, `"1795420801000"`), Malformed},
		{"ts month 13", replace(`"2026-11-23T08:00:01Z"`, `"2026-13-23T08:00:01Z"`), Malformed},
		{"ts epoch ms huge", replace(`"2026-11-23T08:00:01Z"`, `1e20`), OutOfRange},
		{"ts epoch ms over int64", replace(`"2026-11-23T08:00:01Z"`, `99999999999999999999`), OutOfRange},
		{"ts epoch ms over float64", replace(`"2026-11-23T08:00:01Z"`, `1e400`), OutOfRange},
		{"ts epoch ms before year 1", replace(`"2026-11-23T08:00:01Z"`, `-62135596800001`), OutOfRange},
		{"ts after year 9999 in UTC", replace(`"2026-11-23T08:00:01Z"`, `"9999-12-31T23:00:00-05:00"`), OutOfRange},
		{"ts year 0", replace(`"2026-11-23T08:00:01Z"`, `"0000-01-01T00:00:00Z"`), OutOfRange},
		{"crs unknown", replace(`}`, `,"crs":"bd09"}`), Malformed},
		{"crs number", replace(`}`, `,"crs":4326}`), Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFixes("A1", []byte(tt.payload), received)
			if err == nil {
				t.Fatalf("DecodeFixes(%s) = %+v, want %s error", tt.payload, got, tt.want)
			}
			if got != nil {
				t.Errorf("DecodeFixes: got fixes %+v with error, want none", got)
			}
			wantReason(t, err, "A1", KindGPS, tt.want)
		})
	}
}

func TestEncodeFixes(t *testing.T) {
	one := Fix{Unit: "A1", Seq: 1042, Time: t0.Add(time.Second + 123456789), Lat: 29.18, Lon: 104.97,
		SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Sats: 11}
	two := Fix{Unit: "A1", Seq: 1043, Time: time.Date(2026, 11, 23, 16, 0, 2, 0, time.FixedZone("CST", 8*3600)), Lat: -1e-7, Lon: 1e21}
	tests := []struct {
		name  string
		fixes []Fix
		want  string
	}{
		{"one fix is an object", []Fix{one},
			`{"seq":1042,"ts":"2026-11-23T08:00:01.123Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11}`},
		{"two fixes are an array", []Fix{one, two},
			`[{"seq":1042,"ts":"2026-11-23T08:00:01.123Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11},` +
				`{"seq":1043,"ts":"2026-11-23T08:00:02.000Z","lat":-1e-07,"lon":1e+21,"speed_kmh":0,"heading":0,"hdop":0,"sats":0}]`},
		{"no fixes are an empty array", nil, `[]`},
		{"non-finite numbers are null", []Fix{{Seq: 1, Time: t0, Lat: math.NaN(), Lon: math.Inf(1), SpeedKmh: math.Inf(-1)}},
			`{"seq":1,"ts":"2026-11-23T08:00:00.000Z","lat":null,"lon":null,"speed_kmh":null,"heading":0,"hdop":0,"sats":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(EncodeFixes(tt.fixes...)); got != tt.want {
				t.Errorf("EncodeFixes:\ngot  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFixesRoundTrip(t *testing.T) {
	fixes := []Fix{
		{Unit: "A1", Seq: 1, Time: t0, Lat: 29.18, Lon: 104.97, SpeedKmh: 42.5, Heading: 359.9, HDOP: 0.9, Sats: 11, Received: received},
		{Unit: "A1", Seq: 2, Time: t0.Add(1500 * time.Millisecond), Lat: -33.8688, Lon: 151.2093, Received: received},
	}
	for n := 1; n <= len(fixes); n++ {
		t.Run(fmt.Sprintf("%d fixes", n), func(t *testing.T) {
			got, err := DecodeFixes("A1", EncodeFixes(fixes[:n]...), received)
			if err != nil {
				t.Fatalf("DecodeFixes(EncodeFixes): %v", err)
			}
			if !sameFixes(got, fixes[:n]) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", got, fixes[:n])
			}
		})
	}
}

func TestDecodeVideo(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Video
	}{
		{"contract example", `{"ts":"2026-11-23T08:00:01Z","uplink":"5g","cameras":[{"ch":1,"state":"streaming","bitrate_kbps":1800}]}`,
			Video{Unit: "A1", Time: t0.Add(time.Second), Uplink: Uplink5G, Cameras: []Camera{{Ch: 1, State: CameraStreaming, BitrateKbps: 1800}}}},
		{"every state", `{"ts":1795420801000,"uplink":"4g","cameras":[{"ch":1,"state":"recording"},{"ch":2,"state":"idle"},{"ch":3,"state":"fault","bitrate_kbps":0}]}`,
			Video{Unit: "A1", Time: t0.Add(time.Second), Uplink: Uplink4G, Cameras: []Camera{{1, CameraRecording, 0}, {2, CameraIdle, 0}, {3, CameraFault, 0}}}},
		{"no uplink, no ts", `{"uplink":"none","cameras":[]}`, Video{Unit: "A1", Time: received, Uplink: UplinkNone}},
		{"unknown fields ignored", `{"ts":"2026-11-23T08:00:01Z","uplink":"5g","rssi":-71,"cameras":[{"ch":1,"state":"idle","codec":"h265"}]}`,
			Video{Unit: "A1", Time: t0.Add(time.Second), Uplink: Uplink5G, Cameras: []Camera{{Ch: 1, State: CameraIdle}}}},
		{"empty object", `{}`, Video{Unit: "A1", Time: received}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeVideo("A1", []byte(tt.payload), received)
			if err != nil {
				t.Fatalf("DecodeVideo: %v", err)
			}
			if !sameVideo(got, tt.want) {
				t.Errorf("DecodeVideo:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func sameVideo(a, b Video) bool {
	return a.Unit == b.Unit && a.Time.Equal(b.Time) && a.Uplink == b.Uplink && slices.Equal(a.Cameras, b.Cameras)
}

func TestDecodeVideoErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Reason
	}{
		{"not json", `5g`, Malformed},
		{"null", `null`, Malformed},
		{"array", `[]`, Malformed},
		{"unknown uplink", `{"uplink":"wifi"}`, Malformed},
		{"uplink number", `{"uplink":5}`, Malformed},
		{"cameras object", `{"cameras":{"ch":1}}`, Malformed},
		{"camera missing ch", `{"cameras":[{"state":"idle"}]}`, Malformed},
		{"camera negative ch", `{"cameras":[{"ch":-1,"state":"idle"}]}`, Malformed},
		{"camera missing state", `{"cameras":[{"ch":1}]}`, Malformed},
		{"camera unknown state", `{"cameras":[{"ch":1,"state":"on"}]}`, Malformed},
		{"camera negative bitrate", `{"cameras":[{"ch":1,"state":"idle","bitrate_kbps":-5}]}`, Malformed},
		{"camera bitrate fractional", `{"cameras":[{"ch":1,"state":"idle","bitrate_kbps":1.5}]}`, Malformed},
		{"bad ts", `{"ts":"yesterday"}`, Malformed},
		{"ts out of range", `{"ts":1e19}`, OutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeVideo("A1", []byte(tt.payload), received)
			if err == nil {
				t.Fatalf("DecodeVideo(%s) = %+v, want %s error", tt.payload, got, tt.want)
			}
			wantReason(t, err, "A1", KindVideo, tt.want)
		})
	}
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Status
	}{
		{"contract example", `{"ts":"2026-11-23T08:00:01Z","status":"en_route","incident":"INC-1"}`,
			Status{Unit: "A1", Time: t0.Add(time.Second), Status: StatusEnRoute, Incident: "INC-1"}},
		{"no ts, no incident", `{"status":"available"}`, Status{Unit: "A1", Time: received, Status: StatusAvailable}},
		{"unknown fields ignored", `{"status":"on_scene","crew":["a","b"]}`, Status{Unit: "A1", Time: received, Status: StatusOnScene}},
	}
	for _, s := range []string{StatusEnRoute, StatusOnScene, StatusTransporting, StatusAtHospital, StatusAvailable, StatusOutOfService} {
		tests = append(tests, struct {
			name    string
			payload string
			want    Status
		}{"status " + s, `{"status":"` + s + `"}`, Status{Unit: "A1", Time: received, Status: s}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStatus("A1", []byte(tt.payload), received)
			if err != nil {
				t.Fatalf("DecodeStatus: %v", err)
			}
			if got.Unit != tt.want.Unit || !got.Time.Equal(tt.want.Time) || got.Status != tt.want.Status || got.Incident != tt.want.Incident {
				t.Errorf("DecodeStatus:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeStatusErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Reason
	}{
		{"empty", ``, Malformed},
		{"bare word", `en_route`, Malformed},
		{"missing status", `{"ts":"2026-11-23T08:00:01Z"}`, Malformed},
		{"null status", `{"status":null}`, Malformed},
		{"unknown status", `{"status":"lunch"}`, Malformed},
		{"status in capitals", `{"status":"EN_ROUTE"}`, Malformed},
		{"status number", `{"status":3}`, Malformed},
		{"incident number", `{"status":"en_route","incident":7}`, Malformed},
		{"bad ts", `{"status":"en_route","ts":"now"}`, Malformed},
		{"NUL in incident", `{"status":"en_route","incident":"INC-1\u0000"}`, Malformed},
		{"newline in incident", `{"status":"en_route","incident":"INC-1\n"}`, Malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStatus("A1", []byte(tt.payload), received)
			if err == nil {
				t.Fatalf("DecodeStatus(%s) = %+v, want %s error", tt.payload, got, tt.want)
			}
			wantReason(t, err, "A1", KindStatus, tt.want)
		})
	}
}

func TestDecodeAck(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Ack
	}{
		{"contract example", `{"assignment":"ASG-1","accepted":true,"reason":""}`, Ack{Unit: "A1", Time: received, Assignment: "ASG-1", Accepted: true}},
		{"declined", `{"assignment":"ASG-1","accepted":false,"reason":"vehicle fault"}`, Ack{Unit: "A1", Time: received, Assignment: "ASG-1", Reason: "vehicle fault"}},
		{"unknown fields ignored", `{"assignment":"ASG-1","accepted":true,"eta_s":300}`, Ack{Unit: "A1", Time: received, Assignment: "ASG-1", Accepted: true}},
		{"NUL-terminated reason kept, NUL dropped", `{"assignment":"ASG-1","accepted":false,"reason":"vehicle fault\u0000"}`,
			Ack{Unit: "A1", Time: received, Assignment: "ASG-1", Reason: "vehicle fault"}},
		{"controls dropped, line breaks kept", `{"assignment":"ASG-1","accepted":false,"reason":"a\u0001\u007fb\r\n\tc\u0085"}`,
			Ack{Unit: "A1", Time: received, Assignment: "ASG-1", Reason: "ab\r\n\tc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAck("A1", []byte(tt.payload), received)
			if err != nil {
				t.Fatalf("DecodeAck: %v", err)
			}
			if got != tt.want {
				t.Errorf("DecodeAck:\ngot  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeAckErrors(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"not json", `yes`},
		{"missing assignment", `{"accepted":true}`},
		{"empty assignment", `{"assignment":"","accepted":true}`},
		{"missing accepted", `{"assignment":"ASG-1"}`},
		{"accepted as string", `{"assignment":"ASG-1","accepted":"true"}`},
		{"accepted as number", `{"assignment":"ASG-1","accepted":1}`},
		{"assignment as number", `{"assignment":1,"accepted":true}`},
		{"NUL in assignment", `{"assignment":"ASG-1\u0000","accepted":true}`},
		{"tab in assignment", `{"assignment":"ASG\t1","accepted":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAck("A1", []byte(tt.payload), received)
			if err == nil {
				t.Fatalf("DecodeAck(%s) = %+v, want malformed", tt.payload, got)
			}
			wantReason(t, err, "A1", KindAck, Malformed)
		})
	}
}

func TestDecodePresence(t *testing.T) {
	tests := []struct {
		payload string
		want    bool
		wantErr bool
	}{
		{payload: `online`, want: true},
		{payload: `"online"`, want: true},
		{payload: " \"online\"\n", want: true},
		{payload: `offline`},
		{payload: `"offline"`},
		{payload: ``, wantErr: true},
		{payload: `ONLINE`, wantErr: true},
		{payload: `"online`, wantErr: true},
		{payload: `true`, wantErr: true},
		{payload: `{"online":true}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.payload), func(t *testing.T) {
			got, err := DecodePresence("A1", []byte(tt.payload), received)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodePresence = %+v, want malformed", got)
				}
				wantReason(t, err, "A1", KindOnline, Malformed)
				return
			}
			if err != nil {
				t.Fatalf("DecodePresence: %v", err)
			}
			if want := (Presence{Unit: "A1", Online: tt.want, Time: received}); got != want {
				t.Errorf("DecodePresence: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Run("video", func(t *testing.T) {
		v := Video{Unit: "A1", Time: t0, Uplink: Uplink5G, Cameras: []Camera{{1, CameraStreaming, 1800}, {2, CameraFault, 0}}}
		got, err := DecodeVideo("A1", EncodeVideo(v), received)
		if err != nil || !sameVideo(got, v) {
			t.Errorf("DecodeVideo(EncodeVideo) = %+v, %v, want %+v", got, err, v)
		}
	})
	t.Run("video encoding", func(t *testing.T) {
		got := string(EncodeVideo(Video{Time: t0, Uplink: UplinkNone}))
		if want := `{"ts":"2026-11-23T08:00:00.000Z","uplink":"none","cameras":[]}`; got != want {
			t.Errorf("EncodeVideo: got %s, want %s", got, want)
		}
	})
	t.Run("status", func(t *testing.T) {
		s := Status{Unit: "A1", Time: t0, Status: StatusAtHospital, Incident: `INC-"7"`}
		got, err := DecodeStatus("A1", EncodeStatus(s), received)
		if err != nil || got.Status != s.Status || got.Incident != s.Incident || !got.Time.Equal(s.Time) {
			t.Errorf("DecodeStatus(EncodeStatus) = %+v, %v, want %+v", got, err, s)
		}
	})
	t.Run("ack", func(t *testing.T) {
		a := Ack{Unit: "A1", Time: received, Assignment: "ASG-9", Accepted: false, Reason: "flat tyre"}
		got, err := DecodeAck("A1", EncodeAck(a), received)
		if err != nil || got != a {
			t.Errorf("DecodeAck(EncodeAck) = %+v, %v, want %+v", got, err, a)
		}
		if got, want := string(EncodeAck(Ack{Assignment: "ASG-9", Accepted: true})), `{"assignment":"ASG-9","accepted":true,"reason":""}`; got != want {
			t.Errorf("EncodeAck: got %s, want %s", got, want)
		}
	})
	t.Run("presence", func(t *testing.T) {
		for _, online := range []bool{true, false} {
			got, err := DecodePresence("A1", EncodePresence(online), received)
			if err != nil || got.Online != online {
				t.Errorf("DecodePresence(EncodePresence(%v)) = %+v, %v", online, got, err)
			}
		}
	})
}

func TestRejectionError(t *testing.T) {
	tests := []struct {
		name string
		r    Rejection
		want string
	}{
		{"full", Rejection{Unit: "X", Kind: KindGPS, Reason: OutOfRange, Detail: "lat 91"}, "telemetry: unit X gps: out_of_range: lat 91"},
		{"no detail", Rejection{Unit: "X", Kind: KindAck, Reason: UnknownUnit}, "telemetry: unit X ack: unknown_unit"},
		{"no unit", Rejection{Kind: KindUnknown, Reason: BadTopic, Detail: "t"}, "telemetry: unknown: bad_topic: t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("is and as", func(t *testing.T) {
		cause := errors.New("cause")
		err := fmt.Errorf("wrapped: %w", &Rejection{Unit: "X", Kind: KindGPS, Reason: TooOld, Err: cause})
		for _, tt := range []struct {
			target error
			want   bool
		}{
			{&Rejection{Reason: TooOld}, true},
			{&Rejection{Reason: TooOld, Unit: "X", Kind: KindGPS}, true},
			{&Rejection{Reason: TooOld, Unit: "Y"}, false},
			{&Rejection{Reason: TooOld, Kind: KindVideo}, false},
			{&Rejection{Reason: Future}, false},
			{cause, true},
		} {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is(err, %v) = %v, want %v", tt.target, got, tt.want)
			}
		}
	})
}

// ExampleDecodeFixes shows a store-and-forward batch from a terminal that
// speaks GCJ-02 and epoch milliseconds, decoded to WGS-84.
func ExampleDecodeFixes() {
	payload := `[{"seq":7,"ts":1795420800000,"lat":29.17696,"lon":104.97283,"crs":"gcj02"},
	             {"seq":8,"ts":"2026-11-23T08:00:05Z","lat":29.18,"lon":104.97}]`
	fixes, err := DecodeFixes("A12", []byte(payload), time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range fixes {
		fmt.Printf("%s seq %d at %s: %.4f,%.4f\n", f.Unit, f.Seq, f.Time.Format(time.RFC3339), f.Lat, f.Lon)
	}
	_, err = DecodeFixes("A12", []byte(`{"seq":9,"lat":29.18,"lon":104.97}`), time.Now())
	fmt.Println(err)
	// Output:
	// A12 seq 7 at 2026-11-23T08:00:00Z: 29.1800,104.9700
	// A12 seq 8 at 2026-11-23T08:00:05Z: 29.1800,104.9700
	// telemetry: unit A12 gps: malformed: missing ts
}

// The fuzz targets below decode outside bytes; they must never panic, must
// fail only with a *Rejection, and what they accept must survive a round
// trip through the encoder.

func fuzzRejection(t *testing.T, err error, reasons ...Reason) {
	t.Helper()
	var r *Rejection
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T) is not a *Rejection", err, err)
	}
	if !slices.Contains(reasons, r.Reason) {
		t.Fatalf("rejection %v: got reason %q, want one of %q", r, r.Reason, reasons)
	}
}

func FuzzDecodeFixes(f *testing.F) {
	for _, s := range []string{
		`{"seq":1042,"ts":"2026-11-23T08:00:01Z","lat":29.18,"lon":104.97,"speed_kmh":42.5,"heading":270,"hdop":0.9,"sats":11,"crs":"wgs84"}`,
		`[{"seq":1,"ts":1795420801000,"lat":29.18,"lon":104.97},{"seq":2,"ts":1795420802000.5,"lat":29.181,"lon":104.971,"crs":"gcj02"}]`,
		`{"seq":1,"ts":"2026-11-23T16:00:01.5+08:00","lat":0,"lon":0,"crs":"GCJ02","x":{"y":[1]}}`,
		`{"seq":18446744073709551615,"ts":-62135596800000,"lat":-90,"lon":180}`,
		`{"seq":1,"ts":1e20,"lat":1e308,"lon":-1e-320}`,
		`[]`, `null`, `{}`, `[null]`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fixes, err := DecodeFixes("A1", b, received)
		if err != nil {
			if fixes != nil {
				t.Fatalf("got fixes %+v with error %v", fixes, err)
			}
			fuzzRejection(t, err, Malformed, OutOfRange)
			return
		}
		if len(fixes) == 0 {
			t.Fatal("no fixes and no error")
		}
		for _, fx := range fixes {
			if fx.Unit != "A1" || !fx.Received.Equal(received) || fx.Time.Location() != time.UTC {
				t.Fatalf("fix %+v: wrong unit, received time or zone", fx)
			}
			if y := fx.Time.Year(); y < 1 || y > 9999 {
				t.Fatalf("fix %+v: year %d", fx, y)
			}
		}
		again, err := DecodeFixes("A1", EncodeFixes(fixes...), received)
		if err != nil {
			t.Fatalf("decode of encoded %+v: %v", fixes, err)
		}
		for i := range fixes {
			want := fixes[i]
			want.Time = want.Time.Truncate(time.Millisecond)
			if !sameFix(again[i], want) && !(math.IsNaN(want.Lat) || math.IsNaN(want.Lon)) {
				t.Fatalf("round trip of fix %d:\ngot  %+v\nwant %+v", i, again[i], want)
			}
		}
	})
}

func FuzzDecodeVideo(f *testing.F) {
	for _, s := range []string{
		`{"ts":"2026-11-23T08:00:01Z","uplink":"5g","cameras":[{"ch":1,"state":"streaming","bitrate_kbps":1800}]}`,
		`{"ts":1795420801000,"uplink":"none","cameras":[{"ch":0,"state":"fault"},{"ch":2,"state":"idle","bitrate_kbps":0}]}`,
		`{"uplink":"wifi"}`, `{"cameras":null}`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVideo("A1", b, received)
		if err != nil {
			fuzzRejection(t, err, Malformed, OutOfRange)
			return
		}
		again, err := DecodeVideo("A1", EncodeVideo(v), received)
		v.Time = v.Time.Truncate(time.Millisecond)
		if err != nil || !sameVideo(again, v) {
			t.Fatalf("round trip of %+v: got %+v, %v", v, again, err)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	for _, s := range []string{
		`{"ts":"2026-11-23T08:00:01Z","status":"en_route","incident":"INC-1"}`,
		`{"status":"out_of_service"}`, `{"status":"lunch"}`, `{"status":null,"ts":0}`, `{}`, ``,
		`{"status":"en_route","incident":"INC\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeStatus("A1", b, received)
		if err != nil {
			fuzzRejection(t, err, Malformed, OutOfRange)
			return
		}
		if !ValidStatus(s.Status) {
			t.Fatalf("accepted status %q", s.Status)
		}
		if err := CheckText(s.Incident, Identifier); err != nil {
			t.Fatalf("accepted incident %q: %v", s.Incident, err)
		}
		again, err := DecodeStatus("A1", EncodeStatus(s), received)
		if err != nil || again.Status != s.Status || again.Incident != strings.ToValidUTF8(s.Incident, "\uFFFD") ||
			!again.Time.Equal(s.Time.Truncate(time.Millisecond)) {
			t.Fatalf("round trip of %+v: got %+v, %v", s, again, err)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	for _, s := range []string{
		`{"assignment":"ASG-1","accepted":true,"reason":""}`,
		`{"assignment":"ASG-1","accepted":false,"reason":"fault"}`,
		`{"assignment":"","accepted":true}`, `{"accepted":1}`, `{}`, ``,
		`{"assignment":"ASG-1","accepted":false,"reason":"fault\u0000"}`, `{"assignment":"A\u0000","accepted":true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAck("A1", b, received)
		if err != nil {
			fuzzRejection(t, err, Malformed)
			return
		}
		if a.Assignment == "" {
			t.Fatal("accepted an ack without assignment")
		}
		if err := CheckText(a.Assignment, Identifier); err != nil {
			t.Fatalf("accepted assignment %q: %v", a.Assignment, err)
		}
		if err := CheckText(a.Reason, FreeText); err != nil {
			t.Fatalf("accepted reason %q: %v", a.Reason, err)
		}
		again, err := DecodeAck("A1", EncodeAck(a), received)
		if err != nil || again.Accepted != a.Accepted || again.Assignment != strings.ToValidUTF8(a.Assignment, "\uFFFD") {
			t.Fatalf("round trip of %+v: got %+v, %v", a, again, err)
		}
	})
}

func FuzzDecodePresence(f *testing.F) {
	for _, s := range []string{`online`, `"offline"`, `"on\u006cine"`, ``, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePresence("A1", b, received)
		if err != nil {
			fuzzRejection(t, err, Malformed)
			return
		}
		if again, err := DecodePresence("A1", EncodePresence(p.Online), received); err != nil || again != p {
			t.Fatalf("round trip of %+v: got %+v, %v", p, again, err)
		}
	})
}

func BenchmarkDecodeFixes(b *testing.B) {
	fixes := make([]Fix, 100)
	for i := range fixes {
		fixes[i] = Fix{Seq: uint64(1000 + i), Time: t0.Add(time.Duration(i) * time.Second),
			Lat: 29.18 + float64(i)*1e-4, Lon: 104.97 + float64(i)*1e-4, SpeedKmh: 42.5, Heading: 270, HDOP: 0.9, Sats: 11}
	}
	for _, bc := range []struct {
		name    string
		payload []byte
	}{
		{"single", EncodeFixes(fixes[0])},
		{"batch100", EncodeFixes(fixes...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				if _, err := DecodeFixes("A1", bc.payload, received); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
