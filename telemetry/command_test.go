package telemetry

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    Command
		want string
	}{
		{"assign", Command{Type: CommandAssign, Assignment: "ASG-1", Incident: json.RawMessage(`{"id":"INC-1"}`), Destination: json.RawMessage(`{"lat":29.18,"lon":104.97}`)},
			`{"type":"assign","assignment":"ASG-1","incident":{"id":"INC-1"},"destination":{"lat":29.18,"lon":104.97}}`},
		{"cancel", Command{Type: CommandCancel, Assignment: "ASG-1", Reason: "duplicate call"},
			`{"type":"cancel","assignment":"ASG-1","reason":"duplicate call"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeCommand(tt.c)
			if err != nil {
				t.Fatalf("EncodeCommand: %v", err)
			}
			if string(b) != tt.want {
				t.Errorf("EncodeCommand: got %s, want %s", b, tt.want)
			}
			got, err := DecodeCommand(b)
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("DecodeCommand: got %+v, want %+v", got, tt.c)
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	if _, err := EncodeCommand(Command{Type: "reboot"}); err == nil {
		t.Error("EncodeCommand of an unknown type: got nil error")
	}
	for _, payload := range []string{``, `{}`, `{"type":"reboot"}`, `{"type":1}`, `[]`} {
		t.Run(payload, func(t *testing.T) {
			if c, err := DecodeCommand([]byte(payload)); err == nil {
				t.Errorf("DecodeCommand(%s) = %+v, want error", payload, c)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range []string{
		`{"type":"assign","assignment":"ASG-1","incident":{"id":"INC-1"},"destination":{}}`,
		`{"type":"cancel","assignment":"ASG-1"}`, `{"type":"x"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if _, err := EncodeCommand(c); err != nil {
			t.Fatalf("EncodeCommand of decoded %+v: %v", c, err)
		}
	})
}
