//go:build tools

// Package tools pins the chosen dependencies of DESIGN.md while the packages
// that use them are being written, so go.mod stays tidy.
package tools

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/Eyevinn/mp4ff/mp4"
	_ "github.com/bluenviron/gortmplib"
	_ "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/datarhei/gosrt"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hashicorp/serf/coordinate"
	_ "github.com/pion/rtp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "github.com/yutopp/go-flv"
)
