package dispatch

import (
	"context"
	"encoding/json"

	"github.com/lifeline-ems/lifeline/telemetry"
)

// Commander sends a command to a unit's terminal (telemetry/mqtt implements it).
type Commander interface {
	Send(ctx context.Context, unit string, cmd telemetry.Command) error
}

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

// sendAssign sends the assign command for a to its unit's terminal, with
// the call and the advised destination.
func (s *Service) sendAssign(ctx context.Context, a *Assignment, inc *Incident) {
	ci, _ := json.Marshal(commandIncident{ID: inc.ID, Location: inc.Location, Address: inc.Address, Priority: inc.Priority, Category: inc.Category})
	cmd := telemetry.Command{Type: telemetry.CommandAssign, Assignment: a.ID, Incident: ci}
	if h, ok := s.Destination(inc); ok {
		cmd.Destination, _ = json.Marshal(commandDestination{ID: h.ID, Name: h.Name, Location: LatLon{Lat: h.Location.Lat(), Lon: h.Location.Lon()}, Centres: h.Centres})
	}
	s.send(ctx, a.Unit, cmd)
}

// sendCancel tells a's terminal that it is stood down from its call.
func (s *Service) sendCancel(ctx context.Context, a *Assignment, reason string) {
	s.send(ctx, a.Unit, telemetry.Command{Type: telemetry.CommandCancel, Assignment: a.ID, Reason: reason})
}

// send sends cmd to unit's terminal. A command that cannot be sent is
// logged; what was decided stands (the terminal learns it from the next
// command, and dispatchers see it on the console).
func (s *Service) send(ctx context.Context, unit string, cmd telemetry.Command) {
	if s.cmds == nil {
		s.log.Warn("no broker: command not sent", "unit", unit, "type", cmd.Type, "assignment", cmd.Assignment)
		return
	}
	if err := s.cmds.Send(ctx, unit, cmd); err != nil {
		s.log.Error("send command", "unit", unit, "type", cmd.Type, "assignment", cmd.Assignment, "err", err)
	}
}
