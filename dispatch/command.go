package dispatch

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Commander sends a command to a unit's terminal (telemetry/mqtt implements it).
type Commander interface {
	Send(ctx context.Context, unit string, cmd telemetry.Command) error
}

// Reacher is what a Commander may also tell: whether unit's terminal is
// connected and subscribed to its commands right now, so that a command
// published now reaches it. The embedded broker knows; without a Reacher
// the engine goes by the terminal's last online report.
type Reacher interface {
	Reachable(unit string) bool
}

// Lifetimes of commands in the outbox: a reject answers a press the crew
// has just made, and hours later would only confuse.
const (
	DefaultCommandTTL = 24 * time.Hour
	rejectTTL         = 5 * time.Minute
)

// commandIncident is the incident as a terminal sees it in an assign command.
type commandIncident struct {
	ID       string   `json:"id"`
	Location LatLon   `json:"location"`
	Address  string   `json:"address"`
	Priority Priority `json:"priority"`
	Category Category `json:"category"`
}

// commandDestination is the advised destination hospital.
type commandDestination struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Location LatLon   `json:"location"`
	Centres  []Centre `json:"centres"`
}

// assignCommand is the assign command for a, with the call and the
// advised destination, ready to be stored with the decision that made a.
func (s *Service) assignCommand(ctx context.Context, a *Assignment, inc *Incident, now time.Time) OutboxCommand {
	ci, _ := json.Marshal(commandIncident{ID: inc.ID, Location: inc.Location, Address: inc.Address, Priority: inc.Priority, Category: inc.Category})
	cmd := telemetry.Command{Type: telemetry.CommandAssign, Assignment: a.ID, Incident: ci}
	if d := s.advise(ctx, inc, orbPoint(inc.Location), now); d.Advice != nil {
		cmd.Destination, _ = json.Marshal(commandDestination{ID: d.Advice.Hospital, Name: d.Advice.Name, Location: d.Advice.Location, Centres: d.Advice.Centres})
	}
	return s.newCommand(a.Unit, cmd, now)
}

// cancelCommand tells a's terminal that it is stood down from its call.
func (s *Service) cancelCommand(a *Assignment, reason string, now time.Time) OutboxCommand {
	return s.newCommand(a.Unit, telemetry.Command{Type: telemetry.CommandCancel, Assignment: a.ID, Reason: reason}, now)
}

// newCommand is cmd to unit as a new outbox row.
func (s *Service) newCommand(unit string, cmd telemetry.Command, now time.Time) OutboxCommand {
	ttl := s.commandTTL
	if cmd.Type == telemetry.CommandReject {
		ttl = min(ttl, rejectTTL)
	}
	return OutboxCommand{ID: newID("CMD", now), Unit: unit, Command: cmd, State: CommandPending, CreatedAt: now, ExpiresAt: now.Add(ttl)}
}

// send publishes cmd to unit's terminal once, and reports whether it
// went out. A command that cannot be sent is logged; it stays in the
// outbox, and what was decided stands.
func (s *Service) send(ctx context.Context, unit string, cmd telemetry.Command) bool {
	if s.cmds == nil {
		s.log.Warn("no broker: command not sent", "unit", unit, "type", cmd.Type, "assignment", cmd.Assignment)
		return false
	}
	if err := s.cmds.Send(ctx, unit, cmd); err != nil {
		s.log.Error("send command", "unit", unit, "type", cmd.Type, "assignment", cmd.Assignment, "err", err)
		return false
	}
	return true
}

// reachable reports whether a command published to unit now reaches its
// terminal: the broker says so when it can, else the terminal's last
// online report does.
func (s *Service) reachable(unit string) bool {
	if r, ok := s.cmds.(Reacher); ok {
		return r.Reachable(unit)
	}
	st, ok := s.pic.Unit(unit)
	return ok && st.Online
}
