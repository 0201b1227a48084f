package gossip

import (
	"context"
	"time"
)

// StreamRate is one live stream as load: its bitrate in and how many
// readers it feeds (uplinks and pulls count as readers).
type StreamRate struct {
	Bitrate int64 // bit/s
	Readers int
}

// LoadOf is the load the streams make: their count, the Mbit/s coming in
// and the Mbit/s going out to readers, rounded to 0.01 so that noise does
// not spread a metadata update every second.
func LoadOf(streams []StreamRate) Load {
	var l Load
	for _, s := range streams {
		mbps := float64(s.Bitrate) / 1e6
		l.Streams++
		l.MbpsIn += mbps
		l.MbpsOut += mbps * float64(s.Readers)
	}
	l.MbpsIn, l.MbpsOut = round2(l.MbpsIn), round2(l.MbpsOut)
	return l
}

// ReportLoad sets the advertised load to LoadOf(streams()) every period
// until ctx ends (SetLoad spreads it no more often than
// Timings.MetaMinInterval).
func (c *Cluster) ReportLoad(ctx context.Context, period time.Duration, streams func() []StreamRate) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c.SetLoad(LoadOf(streams()))
	}
}
