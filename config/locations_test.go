package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaymesh/relaymesh/gossip"
)

const tableTOML = `
[[location]]
cidr = "203.0.113.0/24"
site = "sin"
lat = 1.35
lon = 103.8

[[location]]
cidr = "198.51.100.0/24"
site = "tyo"
lat = 35.68
lon = 139.69

[[location]]
cidr = "192.0.2.0/24"
lat = 50.11
lon = 8.68

[[location]]
cidr = "192.0.2.128/25"
site = "sin"
lat = 1.35
lon = 103.82

[[location]]
cidr = "2001:db8::/32"
site = "fra"
lat = 50.11
lon = 8.68
`

func TestParseLocationTable(t *testing.T) {
	tab, err := ParseLocationTable("loc.toml", []byte(tableTOML))
	if err != nil {
		t.Fatal(err)
	}
	// entries in file order, prefixes masked; gossip's tests look them up
	want := []gossip.Location{
		{CIDR: netip.MustParsePrefix("203.0.113.0/24"), Site: "sin", Lat: 1.35, Lon: 103.8},
		{CIDR: netip.MustParsePrefix("198.51.100.0/24"), Site: "tyo", Lat: 35.68, Lon: 139.69},
		{CIDR: netip.MustParsePrefix("192.0.2.0/24"), Lat: 50.11, Lon: 8.68},
		{CIDR: netip.MustParsePrefix("192.0.2.128/25"), Site: "sin", Lat: 1.35, Lon: 103.82},
		{CIDR: netip.MustParsePrefix("2001:db8::/32"), Site: "fra", Lat: 50.11, Lon: 8.68},
	}
	if !slices.Equal(tab.Locations, want) {
		t.Errorf("ParseLocationTable = %v, want %v", tab.Locations, want)
	}

	bad := []struct {
		name, toml, want string
	}{
		{"unknown key", "[[location]]\ncidr = \"10.0.0.0/8\"\nlat = 1\nlon = 2\ncity = \"x\"\n", "unknown key location.city"},
		{"bad cidr", "[[location]]\ncidr = \"10.0.0/8\"\nlat = 1\nlon = 2\n", "location[0].cidr"},
		{"missing lat", "[[location]]\ncidr = \"10.0.0.0/8\"\nlon = 2\n", "lat and lon are required"},
		{"lat out of range", "[[location]]\ncidr = \"10.0.0.0/8\"\nlat = 91\nlon = 2\n", "out of range"},
		{"syntax", "[[location]]\ncidr = \n", "loc.toml:2"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			_, err := ParseLocationTable("loc.toml", []byte(b.toml))
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Errorf("err = %v, want it to contain %q", err, b.want)
			}
		})
	}
}

func TestLoadLocationTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "loc.toml")
	if err := os.WriteFile(p, []byte(tableTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := LoadLocationTable(p)
	if err != nil || len(tab.Locations) != 5 {
		t.Fatalf("LoadLocationTable = %d locations, %v; want 5", len(tab.Locations), err)
	}
	if _, err := LoadLocationTable(filepath.Join(t.TempDir(), "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: err = %v, want it to name the file", err)
	}
}
