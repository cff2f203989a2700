package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// src is the DataV/AMap boundary file, where it sits when the repository
// is checked out next to shared/ (as in CI: /work/main and /work/shared).
var src = filepath.Join("..", "..", "..", "..", "..", "shared", "data", "areas", "510300_full.json")

// committed is the demo area the package embeds.
var committed = filepath.Join("..", "..", "demo.geojson")

func readSource(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("the demo's source boundaries are missing (%v): check out the repository next to shared/, as in CI", err)
	}
	return b
}

// TestCommittedDemoIsGenerated re-runs the generator and compares its
// output with the committed demo.geojson, so that the data and the
// generator cannot drift apart.
func TestCommittedDemoIsGenerated(t *testing.T) {
	readSource(t)
	out := filepath.Join(t.TempDir(), "demo.geojson")
	if err := run([]string{"-src", src, "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("generated demo differs from %s at line %d (run go generate ./dispatch/geojson):\n got: %.300s\nwant: %.300s", committed, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("generated demo has %d lines, %s has %d (run go generate ./dispatch/geojson)", len(gl), committed, len(wl))
	}
}

func TestGenerateFails(t *testing.T) {
	good := readSource(t)
	// edit decodes the source, lets change alter it and encodes it again.
	edit := func(change func(features []any) []any) []byte {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		doc["features"] = change(doc["features"].([]any))
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	props := func(f any) map[string]any { return f.(map[string]any)["properties"].(map[string]any) }
	tests := []struct {
		name string
		src  []byte
		want string
	}{
		{"not JSON", []byte("{"), "unexpected end of JSON input"},
		{"a district missing", edit(func(fs []any) []any { return fs[:5] }), "no feature for 510322"},
		{"a district repeated", edit(func(fs []any) []any { return append(fs, fs[0]) }), "unexpected or repeated feature 510302"},
		{"another city's county", edit(func(fs []any) []any {
			props(fs[5])["parent"] = map[string]any{"adcode": 620900}
			return fs
		}), "510322 富顺县: parent is 620900, want 510300"},
		{"Fushun shrunk to a corner", edit(func(fs []any) []any {
			// A small square at Fushun's western edge: the zone and the
			// stations fall outside it.
			fs[5].(map[string]any)["geometry"] = map[string]any{"type": "Polygon",
				"coordinates": [][][]float64{{{104.7, 29.0}, {104.8, 29.0}, {104.8, 29.1}, {104.7, 29.1}, {104.7, 29.0}}}}
			return fs
		}), "lies outside 510322"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := generate(tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("generate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "demo.geojson")
	tests := []struct {
		name string
		args []string
	}{
		{"no flags", nil},
		{"no out", []string{"-src", src}},
		{"unknown flag", []string{"-src", src, "-out", out, "-x"}},
		{"missing source", []string{"-src", filepath.Join(t.TempDir(), "none.json"), "-out", out}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(tt.args, io.Discard); err == nil {
				t.Fatal("run succeeded, want an error")
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("run wrote the output file")
			}
		})
	}
}
