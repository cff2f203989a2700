package geojson_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-ems/lifeline/dispatch/geojson"
)

// TestAreaDoc keeps docs/AREA.md honest: its example must decode, and it
// must list every station and hospital of the demo.
func TestAreaDoc(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "AREA.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	_, rest, ok := strings.Cut(md, "```json\n")
	if !ok {
		t.Fatal("docs/AREA.md has no ```json example")
	}
	example, _, _ := strings.Cut(rest, "```")
	if _, err := geojson.Decode(strings.NewReader(example), "AREA.md example"); err != nil {
		t.Errorf("the example in docs/AREA.md does not decode: %v", err)
	}
	a := geojson.Demo()
	for _, s := range a.Stations {
		if !strings.Contains(md, "| "+s.ID+" | "+s.Name+" |") {
			t.Errorf("docs/AREA.md does not list station %s %s", s.ID, s.Name)
		}
	}
	for _, h := range a.Hospitals {
		if !strings.Contains(md, "| "+h.ID+" | "+h.Name+" |") {
			t.Errorf("docs/AREA.md does not list hospital %s %s", h.ID, h.Name)
		}
	}
}
