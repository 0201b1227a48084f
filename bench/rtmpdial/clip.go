package rtmpdial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/relaymesh/relaymesh/bench/benchutil"
	"github.com/relaymesh/relaymesh/media/link/flv"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Clip is an FLV file in memory: the codec headers and metadata (sent
// once) and the media, timed from 0.
type Clip struct {
	Headers []*unit.Packet
	Media   []*unit.Packet // Time relative to the first media packet
	Dur     int64          // ms: one loop
}

// LoadClip reads the FLV file at path.
func LoadClip(path string) (*Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fr := flv.NewReader(f)
	c := &Clip{}
	t0 := int64(-1)
	var lastV, prevV int64 = -1, -1
	for {
		p, err := fr.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.Header || p.Kind == unit.KindData {
			c.Headers = append(c.Headers, p)
			continue
		}
		if t0 < 0 {
			t0 = p.Time
		}
		p.Time -= t0
		c.Media = append(c.Media, p)
		if p.Kind == unit.KindVideo {
			prevV, lastV = lastV, p.Time
		}
	}
	if len(c.Media) == 0 || prevV < 0 {
		return nil, fmt.Errorf("%s: no video", path)
	}
	sort.SliceStable(c.Media, func(i, j int) bool { return c.Media[i].Time < c.Media[j].Time })
	c.Dur = lastV + (lastV - prevV) // one frame after the last
	return c, nil
}

// Replay hands the clip's media to write in real time on a clock that
// starts at begin, each packet with its timestamp ts (ms), until ctx ends
// or write or flush fails; in a loop on one timeline (each loop one Dur
// later), or with once until the clip's end. Packets due within batch of
// each other go to write together, then flush (nil: none) is called.
// The headers are the caller's to send first.
func (c *Clip) Replay(ctx context.Context, begin time.Time, batch time.Duration, once bool,
	write func(p *unit.Packet, ts int64) error, flush func() error) error {
	var loop int64
	i := 0
	for {
		now := time.Now()
		var due time.Time
		for {
			p := c.Media[i]
			ts := loop*c.Dur + p.Time
			due = begin.Add(time.Duration(ts) * time.Millisecond)
			if due.After(now) {
				break
			}
			if err := write(p, ts); err != nil {
				return err
			}
			if i++; i == len(c.Media) {
				if once {
					if flush != nil {
						return flush()
					}
					return nil
				}
				i, loop = 0, loop+1
			}
		}
		if flush != nil {
			if err := flush(); err != nil {
				return err
			}
		}
		if !benchutil.Sleep(ctx, max(time.Until(due), batch-time.Since(now))) {
			return nil
		}
	}
}
