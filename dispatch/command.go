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

func (s *Service) sendAssign(ctx context.Context, a *Assignment, inc *Incident) {
	ci, _ := json.Marshal(commandIncident{ID: inc.ID, Location: inc.Location, Address: inc.Address, Priority: inc.Priority, Category: inc.Category})
	cmd := telemetry.Command{Type: telemetry.CommandAssign, Assignment: a.ID, Incident: ci}
	if h, ok := s.Destination(inc); ok {
		cmd.Destination, _ = json.Marshal(commandDestination{ID: h.ID, Name: h.Name, Location: LatLon{Lat: h.Location.Lat(), Lon: h.Location.Lon()}, Centres: h.Centres})
	}
	if s.cmds == nil {
		s.log.Warn("no broker: assign command not sent", "unit", a.Unit, "assignment", a.ID)
		return
	}
	if err := s.cmds.Send(ctx, a.Unit, cmd); err != nil {
		s.log.Error("send assign command", "unit", a.Unit, "assignment", a.ID, "err", err)
	}
}
