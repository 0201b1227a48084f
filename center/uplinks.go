package center

// An edge's uplink this center hosts is abandoned when the edge re-placed
// the stream onto another center (make-before-break: the new uplink runs
// and the new center claimed the stream in the directory while the old
// uplink still delivers here). This center then lets the old uplink go
// without a gap for its own readers: with readers (players, other
// centers' pulls) it pulls the stream from the new host, and the pull
// takes the stream over from the uplink as from an old pull (the uplink's
// packets go through the pull's link.Splice: at the pull's keyframe once
// the uplink delivered up to it, or at once when the pull is behind), and
// the uplink ends (the edge closes it too); with none it ends the uplink
// at once.

import (
	"errors"
	"fmt"
)

// releaseUplinks hands over every stream whose uplink here the directory
// no longer names this center for. Called by followDirectory at each
// directory change.
func (c *Center) releaseUplinks() {
	if c.srt == nil {
		return
	}
	keys := c.srt.Publishing()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, key := range keys {
		if c.pulls[key] != nil || c.ctx.Err() != nil {
			continue
		}
		e, ok := c.cl.Lookup(key)
		if !ok || e.Node == c.cl.Name() {
			continue
		}
		hs := c.hub.Stream(key)
		if hs == nil {
			continue
		}
		// a pull is no uplink; a merged dual-path stream is hosted by
		// both its centers while the directory names one of them
		if pi, ok := hs.Publisher(); !ok || pi.Protocol == pullProtocol || pi.Protocol == dualProtocol {
			continue
		}
		if n := hs.ReaderCount(); n == 0 {
			c.log.Info("uplink abandoned: the stream moved to another center and nobody reads it here; ending the old uplink", "stream", key, "to", e.Node)
			hs.KickPublisher(fmt.Errorf("%w: the stream moved to %s", errAbandoned, e.Node))
			continue
		}
		c.log.Info("uplink abandoned: the stream moved to another center; pulling it from there before the old uplink ends", "stream", key, "to", e.Node, "readers", hs.ReaderCount())
		c.pulls[key] = c.startPullLocked(key, e.Node, nil, true)
	}
}

// errAbandoned ends an uplink whose stream moved to another center.
var errAbandoned = errors.New("uplink abandoned")
