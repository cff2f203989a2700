package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lifeline-ems/lifeline"

// TestDependencyArrows enforces the house style's forbidden arrows: geo is
// the leaf; telemetry never imports dispatch; neither imports web; a
// domain root never imports its own adapters or a driver; nothing imports
// cmd.
func TestDependencyArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	drivers := []string{"github.com/jackc/pgx", "github.com/redis/go-redis", "github.com/eclipse/paho.mqtt.golang", "github.com/mochi-mqtt/server", "modernc.org/sqlite", "github.com/gorilla/websocket"}
	roots := map[string]bool{module + "/dispatch": true, module + "/telemetry": true, module + "/geo": true}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		pkg := p.ImportPath
		under := func(prefix string) bool { return pkg == module+prefix || strings.HasPrefix(pkg, module+prefix+"/") }
		for _, imp := range p.Imports {
			ours := strings.HasPrefix(imp, module)
			bad := ""
			switch {
			case under("/geo") && ours:
				bad = "geo is the leaf: it imports nothing of ours"
			case under("/telemetry") && strings.HasPrefix(imp, module+"/dispatch"):
				bad = "telemetry must not import dispatch (dispatch consumes telemetry through telemetry.Sink)"
			case (under("/telemetry") || under("/dispatch") || under("/geo")) && strings.HasPrefix(imp, module+"/web"):
				bad = "domain packages must not import web"
			case strings.HasPrefix(imp, module+"/cmd"):
				bad = "nothing imports cmd"
			case roots[pkg] && strings.HasPrefix(imp, pkg+"/"):
				bad = "a domain root must not import its own adapter"
			case roots[pkg] && hasPrefixAny(imp, drivers):
				bad = "a domain root must not import a driver"
			}
			if bad != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, bad)
			}
		}
	}
	if n < 8 {
		t.Fatalf("go list saw only %d packages", n)
	}
}

func hasPrefixAny(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// TestNoTestingInBinaries checks that the programs link no test helpers:
// the testing package (and its flags) has no place in a server binary.
func TestNoTestingInBinaries(t *testing.T) {
	for _, prog := range []string{"./cmd/lifelined", "./cmd/fleetsim"} {
		out, err := exec.Command("go", "list", "-deps", module+strings.TrimPrefix(prog, ".")).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", prog, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "testing" || strings.HasSuffix(dep, "/pgtest") || strings.HasSuffix(dep, "/storetest") || strings.HasSuffix(dep, "/dispatchtest") {
				t.Errorf("%s links %s: test helpers belong in packages only tests import", prog, dep)
			}
		}
	}
}
