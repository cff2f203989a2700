// Command gendemo writes Lifeline's built-in demo area, Fushun County
// (富顺县) in Zigong (自贡市), Sichuan, from the DataV/AMap boundary file of
// Zigong's six districts and counties:
//
//	go run ./dispatch/geojson/internal/gendemo -src ../shared/data/areas/510300_full.json -out dispatch/geojson/demo.geojson
//
// It converts every boundary coordinate from GCJ-02, the datum of Chinese
// web maps, to WGS-84 and rounds it to six decimals (about 0.1 m), then adds
// the illustrative parts: an urban zone around the county seat, stations,
// hospitals and 18 units. It fails, writing nothing, if any station or
// hospital falls outside its jurisdiction or the urban zone leaves the
// county. The output is deterministic, so a test can re-run it and compare.
package main
