package config

import (
	"time"

	"github.com/relaymesh/relaymesh/media/hls"
)

// HLSConfig is [hls]: HLS and LL-HLS on the [http] listener.
type HLSConfig struct {
	Enabled        bool     `toml:"enabled"`         // serve /APP/NAME/index.m3u8 and plain.m3u8
	PartDuration   Duration `toml:"part_duration"`   // LL-HLS part duration; segments follow the GOP
	SegmentCount   int      `toml:"segment_count"`   // segments in a playlist window
	IdleTimeout    Duration `toml:"idle_timeout"`    // a stream's muxer closes after this long without requests
	SessionTimeout Duration `toml:"session_timeout"` // a reader is a client seen within this long
	AlwaysOn       []string `toml:"always_on"`       // app/name streams whose LL-HLS muxer runs without readers
	Page           bool     `toml:"page"`            // the web page: / lists streams, /APP/NAME/ plays one
}

func defaultHLS() HLSConfig {
	return HLSConfig{
		Enabled:        true,
		Page:           true,
		PartDuration:   Duration(hls.DefaultPartDuration),
		SegmentCount:   hls.DefaultSegmentCount,
		IdleTimeout:    Duration(hls.DefaultIdleTimeout),
		SessionTimeout: Duration(hls.DefaultSessionTimeout),
		AlwaysOn:       []string{},
	}
}

func (h *HLSConfig) validate(ps *cfgProblems, at cfgPath) {
	if h.PartDuration < Duration(50*time.Millisecond) || h.PartDuration > Duration(5*time.Second) {
		ps.add(at.Key("part_duration"), "%s is outside 50ms..5s", h.PartDuration)
	}
	if h.SegmentCount < hls.DefaultSegmentCount || h.SegmentCount > 100 {
		ps.add(at.Key("segment_count"), "%d is outside %d..100 (LL-HLS needs at least %d)", h.SegmentCount, hls.DefaultSegmentCount, hls.DefaultSegmentCount)
	}
	if h.IdleTimeout < Duration(time.Second) {
		ps.add(at.Key("idle_timeout"), "%s is less than 1s", h.IdleTimeout)
	}
	if h.SessionTimeout < Duration(time.Second) {
		ps.add(at.Key("session_timeout"), "%s is less than 1s", h.SessionTimeout)
	}
	for i, k := range h.AlwaysOn {
		ps.streamKey(at.Key("always_on").Index(i), k)
	}
}
