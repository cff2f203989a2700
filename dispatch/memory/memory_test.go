package memory_test

import (
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch/memory"
	"github.com/lifeline-ems/lifeline/dispatch/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Stores {
		return storetest.Stores{
			Store:   memory.NewStore(),
			Users:   memory.NewUsers(),
			Audit:   memory.NewAudit(),
			History: memory.NewTracks(1 << 20),
		}
	})
}
