package telemetry

import (
	"strings"
	"testing"
)

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic    string
		wantUnit string
		wantKind Kind
		wantErr  bool
	}{
		{topic: "ems/v1/units/A12/gps", wantUnit: "A12", wantKind: KindGPS},
		{topic: "ems/v1/units/A12/video", wantUnit: "A12", wantKind: KindVideo},
		{topic: "ems/v1/units/A12/status", wantUnit: "A12", wantKind: KindStatus},
		{topic: "ems/v1/units/A12/ack", wantUnit: "A12", wantKind: KindAck},
		{topic: "ems/v1/units/A12/online", wantUnit: "A12", wantKind: KindOnline},
		{topic: "ems/v1/units/A12/cmd", wantUnit: "A12", wantKind: KindCmd},
		{topic: "ems/v1/units/fs-120_b/gps", wantUnit: "fs-120_b", wantKind: KindGPS},
		{topic: "ems/v1/units/" + strings.Repeat("x", 64) + "/gps", wantUnit: strings.Repeat("x", 64), wantKind: KindGPS},
		{topic: "", wantErr: true},
		{topic: "ems/v2/units/A12/gps", wantErr: true},
		{topic: "/ems/v1/units/A12/gps", wantErr: true},
		{topic: "ems/v1/units/A12", wantErr: true},
		{topic: "ems/v1/units/A12/", wantErr: true},
		{topic: "ems/v1/units//gps", wantErr: true},
		{topic: "ems/v1/units/A12/gps/raw", wantErr: true},
		{topic: "ems/v1/units/A12/GPS", wantErr: true},
		{topic: "ems/v1/units/A12/temperature", wantErr: true},
		{topic: "ems/v1/units/+/gps", wantErr: true},
		{topic: "ems/v1/units/#/gps", wantErr: true},
		{topic: "ems/v1/units/A 12/gps", wantErr: true},
		{topic: "ems/v1/units/Ä12/gps", wantErr: true},
		{topic: "ems/v1/units/" + strings.Repeat("x", 65) + "/gps", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			unit, k, err := ParseTopic(tt.topic)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseTopic = %q, %q, want error", unit, k)
				}
				return
			}
			if err != nil || unit != tt.wantUnit || k != tt.wantKind {
				t.Fatalf("ParseTopic = %q, %q, %v, want %q, %q", unit, k, err, tt.wantUnit, tt.wantKind)
			}
			if got := Topic(unit, k); got != tt.topic {
				t.Errorf("Topic(%q, %q) = %q, want %q", unit, k, got, tt.topic)
			}
		})
	}
}

func TestKindUplink(t *testing.T) {
	for _, tt := range []struct {
		k    Kind
		want bool
	}{
		{KindGPS, true}, {KindVideo, true}, {KindStatus, true}, {KindAck, true}, {KindOnline, true},
		{KindCmd, false}, {KindUnknown, false}, {"", false},
	} {
		t.Run(string(tt.k), func(t *testing.T) {
			if got := tt.k.Uplink(); got != tt.want {
				t.Errorf("Kind(%q).Uplink() = %v, want %v", tt.k, got, tt.want)
			}
		})
	}
	if UplinkFilter != "ems/v1/units/+/+" {
		t.Errorf("UplinkFilter = %q, want ems/v1/units/+/+", UplinkFilter)
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"ems/v1/units/A12/gps", "ems/v1/units/A12/cmd", "ems/v1/units//", "ems/v1/units/a/b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		unit, k, err := ParseTopic(topic)
		if err != nil {
			return
		}
		if !ValidUnitID(unit) || !(k.Uplink() || k == KindCmd) || Topic(unit, k) != topic {
			t.Fatalf("ParseTopic(%q) = %q, %q", topic, unit, k)
		}
	})
}
