package config

// The locations file (cluster.locations_file): [[location]] tables that
// map client address ranges to places, for locate. Inline [[location]]
// tables in the config itself are validated with the rest of it
// (validateCluster); Config.LocationTable joins both.

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/BurntSushi/toml"

	"github.com/relaymesh/relaymesh/gossip"
)

type rawLocation struct {
	CIDR string   `toml:"cidr"`
	Site string   `toml:"site"`
	Lat  *float64 `toml:"lat"`
	Lon  *float64 `toml:"lon"`
}

// LoadLocationTable reads a TOML file of [[location]] tables:
//
//	[[location]]
//	cidr = "203.0.113.0/24"
//	site = "sin"
//	lat = 1.35
//	lon = 103.8
func LoadLocationTable(path string) (gossip.LocationTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return gossip.LocationTable{}, fmt.Errorf("location table: %w", err)
	}
	return ParseLocationTable(path, data)
}

// ParseLocationTable parses the TOML form; name labels errors (a file name).
// Unknown keys, bad CIDRs and missing or out-of-range coordinates are errors.
func ParseLocationTable(name string, data []byte) (gossip.LocationTable, error) {
	var raw struct {
		Location []rawLocation `toml:"location"`
	}
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return gossip.LocationTable{}, fmt.Errorf("%s:%d:%d: %s", name, pe.Position.Line, pe.Position.Col, pe.Message)
		}
		return gossip.LocationTable{}, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("%s: unknown key %s", name, k.String()))
	}
	var t gossip.LocationTable
	for i, r := range raw.Location {
		at := fmt.Sprintf("%s: location[%d]", name, i)
		p, err := netip.ParsePrefix(r.CIDR)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.cidr: %q is not a CIDR like 203.0.113.0/24", at, r.CIDR))
			continue
		}
		if r.Lat == nil || r.Lon == nil {
			errs = append(errs, fmt.Errorf("%s: lat and lon are required", at))
			continue
		}
		if *r.Lat < -90 || *r.Lat > 90 || *r.Lon < -180 || *r.Lon > 180 {
			errs = append(errs, fmt.Errorf("%s: lat %v / lon %v out of range (-90..90 / -180..180)", at, *r.Lat, *r.Lon))
			continue
		}
		t.Locations = append(t.Locations, gossip.Location{CIDR: p.Masked(), Site: r.Site, Lat: *r.Lat, Lon: *r.Lon})
	}
	if err := errors.Join(errs...); err != nil {
		return gossip.LocationTable{}, err
	}
	return t, nil
}
