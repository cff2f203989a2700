package telemetry

import (
	"encoding/json"
	"fmt"
)

// Command types sent to a terminal on its cmd topic.
const (
	CommandAssign = "assign"
	CommandCancel = "cancel"
	// CommandReject tells a terminal that a status press changed nothing
	// (the lifecycle does not allow it), with the reason.
	CommandReject = "reject"
)

func knownCommand(t string) bool {
	return t == CommandAssign || t == CommandCancel || t == CommandReject
}

// Command is a downlink message to one terminal. Incident and Destination
// are encoded by the sender (dispatch owns their shape).
type Command struct {
	Type        string          `json:"type"`
	Assignment  string          `json:"assignment,omitempty"`
	Incident    json.RawMessage `json:"incident,omitempty"`
	Destination json.RawMessage `json:"destination,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	// Status is the status press a reject refuses.
	Status string `json:"status,omitempty"`
}

// EncodeCommand returns the wire form of c.
func EncodeCommand(c Command) ([]byte, error) {
	if !knownCommand(c.Type) {
		return nil, fmt.Errorf("encode command: unknown type %q", c.Type)
	}
	return json.Marshal(c)
}

// DecodeCommand parses a downlink message, as a terminal does.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return Command{}, fmt.Errorf("decode command: %w", err)
	}
	if !knownCommand(c.Type) {
		return Command{}, fmt.Errorf("decode command: unknown type %q", c.Type)
	}
	return c, nil
}
