package center

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/media/link"
)

// Standby pulls of dual-path streams. Both centers of a dual-path stream
// host it (dual.go), but the directory names one host per stream; each
// of them also names itself under the stream's host key (dualHostKey, a
// key no stream can have: '#' is not allowed in stream keys). A third
// center that pulls such a stream from one of them runs a standby pull
// from the other beside it (link.NewStandby): its packets are held,
// bounded, and go out only when the active pull ends or stalls, from the
// active pull's last frame on, so the death of the active pull's host
// costs the center's players no frame. It costs a second copy of the
// stream on the backbone, for dual-path streams only.

// dualHostMark joins a stream's key and a host's name in its host key.
const dualHostMark = "#dual-host@"

// dualHostKey is the directory key under which node says it hosts the
// dual-path stream key.
func dualHostKey(key, node string) string { return key + dualHostMark + node }

// isDualHostKey says whether a directory key is a host key, not a stream.
func isDualHostKey(key string) bool { return strings.Contains(key, dualHostMark) }

// dualHosts returns the live centers that say they host the dual-path
// stream key, sorted.
func (c *Center) dualHosts(key string) []string {
	var out []string
	prefix := key + dualHostMark
	for _, e := range c.cl.Directory() {
		if node, ok := strings.CutPrefix(e.Stream, prefix); ok && node == e.Node && !e.Deleted {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// bothHost says whether centers a and b both say they host the
// dual-path stream key.
func (c *Center) bothHost(key, a, b string) bool {
	hosts := c.dualHosts(key)
	return slices.Contains(hosts, a) && slices.Contains(hosts, b)
}

// StandbyStatus is a standby pull for the API.
type StandbyStatus struct {
	From   string             `json:"from"`
	Link   link.Status        `json:"link"`
	Buffer link.StandbyStatus `json:"buffer"`
}

// ensureStandbyLocked starts a standby pull of key beside pl from
// another host of the stream, when the directory names one and pl has
// none (or ends one whose host no longer says it hosts the stream).
// c.mu is held.
func (c *Center) ensureStandbyLocked(key string, pl *pull) {
	if pl.next != nil || c.ctx.Err() != nil {
		return
	}
	hosts := c.dualHosts(key)
	if sb := pl.standby; sb != nil {
		if sb.from != pl.from && slices.Contains(hosts, sb.from) {
			return
		}
		c.log.Info("standby pull stopped: its host no longer hosts the stream", "stream", key, "from", sb.from)
		pl.stopStandby()
	}
	for _, h := range hosts {
		if h == pl.from || h == c.cl.Name() {
			continue
		}
		if !c.usable(h) {
			continue
		}
		pl.standby = c.startStandbyLocked(key, h, pl)
		return
	}
}

// startStandbyLocked starts the standby pull of key from host beside
// active. c.mu is held.
func (c *Center) startStandbyLocked(key, host string, active *pull) *pull {
	sb := &pull{from: host, done: make(chan struct{})}
	log := c.log.With("stream", key, "standby", host)
	log.Info("standby pull: a second host of the dual-path stream, held until the active pull ends or stalls", "active", active.from)
	sb.sp = link.NewStandby(log)
	cfg := link.PullConfig{
		Key: key, MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
		ReadTimeout: 5 * time.Second, IdleStop: c.cfg.PullIdleStop,
		Takeover: true, Continues: true, Splice: sb.sp,
		Next: func(int, error) (link.Target, error) {
			if !slices.Contains(c.dualHosts(key), host) {
				return link.Target{}, fmt.Errorf("%s no longer hosts %s", host, key)
			}
			if !c.usable(host) {
				// the next standby is another host's
				// (ensureStandbyLocked at the next directory change)
				return link.Target{}, fmt.Errorf("standby pull from %s: %w: gossip does not call it alive, or a link found it dead", host, link.ErrStop)
			}
			t, _, err := c.pullTarget(key, host)
			return t, err
		},
		OnEnd: func(err error) { c.noteFailure(host, err) },
		OnState: func(st link.Status) {
			if st.State == link.StateRunning {
				c.promoteStandby(key, active, sb)
			}
		},
	}
	active.p.HandOver(sb.sp)
	sb.p = link.NewPuller(c.hub, cfg, log)
	c.goPull(sb, func() {
		switch cur := c.pulls[key]; {
		case cur == sb:
			delete(c.pulls, key)
			sb.stopStandby()
		case cur != nil && cur.standby == sb:
			cur.standby = nil
		}
		log.Info("standby pull stopped")
	})
	return sb
}

// promoteStandby makes the standby sb the pull of key once it took the
// stream over from active (in the hub), ends active and starts the next
// standby when there is another host.
func (c *Center) promoteStandby(key string, active, sb *pull) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pulls[key] != active || active.standby != sb {
		return
	}
	c.log.Info("standby pull took the stream over: closing the active pull", "stream", key, "from", active.from, "to", sb.from)
	active.standby = nil
	active.cancel()
	c.pulls[key] = sb
	// the next standby once the active pull ended: a host its link found
	// dead is marked by then (OnEnd), so no standby is dialled to it
	// while gossip still calls it alive
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-active.done:
		case <-c.ctx.Done():
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.pulls[key] == sb {
			c.ensureStandbyLocked(key, sb)
		}
	}()
}
