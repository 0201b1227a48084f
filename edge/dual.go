package edge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/gossip"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/dualpath"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Redundancy says how streams matching Pattern cross the backbone; the
// first matching entry wins.
type Redundancy struct {
	Pattern string // path.Match glob over "app/name"
	// Dual sends the stream over two legs to two different centers, each
	// RTP-framed, merged by sequence number where it is received.
	Dual bool
	// Window is the receivers' reorder window; 0 = the larger of the two
	// legs' SRT latencies.
	Window time.Duration
}

// DualStatus is one dual-path uplink for the API.
type DualStatus struct {
	Stream string                       `json:"stream"`
	SSRC   uint32                       `json:"ssrc"`
	Window string                       `json:"window"`
	Sent   uint64                       `json:"rtp_packets"` // RTP packets made (each goes out on both legs)
	Legs   [dualpath.Legs]DualLegStatus `json:"legs"`
}

// DualLegStatus is one leg of a dual-path uplink.
type DualLegStatus struct {
	Center  string      `json:"center"`
	Since   time.Time   `json:"center_since"`
	Moves   int         `json:"moves"`
	Sent    uint64      `json:"sent"`
	Dropped uint64      `json:"dropped"` // queue full: the leg was slower than the stream
	Link    link.Status `json:"link"`
}

// dualUplink sends one stream over two legs. One hub reader feeds one
// Packetizer, so both legs carry the same RTP packets.
type dualUplink struct {
	key  string
	ssrc uint32
	// window: the configured reorder window (explicit), else the larger
	// of the two legs' SRT latencies, from which each center derives its
	// window
	window   time.Duration
	explicit bool
	made     atomic.Uint64 // RTP packets made
	legs     [dualpath.Legs]*dualLeg
}

type dualLeg struct {
	idx     int
	center  string
	since   time.Time
	moves   int
	exclude map[string]time.Time
	s       *link.MessageSender
}

// lateAge bounds the age of what leg l sends in a session that starts
// while the other leg has been delivering for longer than the queue
// keeps a message (0 = no bound but MaxAge): such a leg is late, and a
// message older than about the centers' merge window (twice the edge's)
// is of no use: the other leg delivered it, so a merge that leg feeds
// took it or gave it up, and a merge this leg starts (its center had no
// leg yet) would get it in one burst with the rest of the queue. A burst
// of seconds of media crossing a keyframe made the hub's ring drop what
// its readers had not read yet (it keeps 64 KiB before the newest
// keyframe): the players on tyo and fra skipped 5-18 frames to the
// keyframe (TestClusterDualPath 'a leg that comes up late').
func (d *dualUplink) lateAge(l *dualLeg) time.Duration {
	o := d.legs[1-l.idx].s.Status()
	if o.State == link.StateRunning && time.Since(o.Since) > dualpath.QueueMaxAge(d.window) {
		return 2 * d.window
	}
	return 0
}

// dualFor reports whether key goes over two legs, and the window.
func dualFor(key string, rs []Redundancy) (bool, time.Duration) {
	for _, r := range rs {
		if ok, err := path.Match(r.Pattern, key); err == nil && ok {
			return r.Dual, r.Window
		}
	}
	return false, 0
}

// startDualLocked starts the dual-path uplink of key if its route asks for
// one. u.mu is held.
func (u *Uplinks) startDualLocked(key string) bool {
	dual, window := dualFor(key, u.cfg.Redundancy)
	if !dual {
		return false
	}
	if u.duals == nil {
		u.duals = map[string]*dualUplink{}
	}
	if u.duals[key] != nil {
		return true
	}
	d := &dualUplink{key: key, ssrc: rand.Uint32(), window: window, explicit: window > 0}
	// both legs' centers are chosen now, so each leg can name the other's
	// center to its own: the two centers forward their legs to each other
	cands := u.cl.CenterCandidates(key, u.cfg.Routes, nil)
	for i := range d.legs {
		l := &dualLeg{idx: i, exclude: map[string]time.Time{}}
		if i < len(cands) {
			l.center, l.since = cands[i].Name, time.Now()
		}
		d.legs[i] = l
	}
	if d.window == 0 {
		d.window = dualpath.DefaultWindow
		var lat time.Duration
		for _, l := range d.legs {
			if rtt, ok := u.cl.RTT(l.center); ok && l.center != "" {
				lat = max(lat, u.cfg.Latency(rtt))
			}
		}
		if lat > 0 {
			d.window = lat.Round(time.Millisecond)
		}
	}
	for _, l := range d.legs {
		l.s = link.NewMessageSender(link.MessageSenderConfig{Key: key,
			Next:       func(attempt int, lastErr error) (link.Target, error) { return u.nextLeg(d, l, attempt, lastErr) },
			MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
			// a leg that comes up late, or comes back, starts near
			// the live edge, not with the stream's first seconds
			// (at a low bitrate the queue's 512 messages are many
			// seconds)
			MaxAge:        dualpath.QueueMaxAge(d.window),
			SessionMaxAge: func() time.Duration { return d.lateAge(l) },
		}, u.log.With("stream", key, "leg", l.idx))
	}
	u.duals[key] = d
	u.log.Info("dual-path uplink", "stream", key, "leg0", d.legs[0].center, "leg1", d.legs[1].center, "window", d.window.String())
	u.wg.Add(1)
	go u.runDual(d)
	return true
}

// runDual reads the stream's TS lane, frames it and hands every RTP
// packet to both legs, until the stream ends or the uplinks close.
func (u *Uplinks) runDual(d *dualUplink) {
	defer u.wg.Done()
	ctx, cancel := context.WithCancel(u.ctx)
	done := make(chan struct{})
	for _, l := range d.legs {
		go func() { l.s.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range d.legs {
			<-done
		}
		u.mu.Lock()
		delete(u.duals, d.key)
		u.mu.Unlock()
	}()
	p := dualpath.NewPacketizer(d.ssrc, 0)
	emit := func(b []byte) error {
		m := link.NewMessage(b, len(d.legs))
		for _, l := range d.legs {
			l.s.Send(m)
		}
		d.made.Add(1)
		return nil
	}
	pkts := make([]*unit.Packet, 0, 64)
	for ctx.Err() == nil {
		r, err := u.hub.Subscribe(ctx, d.key, media.SubscribeOptions{Format: media.FormatTS,
			Info: media.ReaderInfo{Protocol: "srt-dual", Remote: "backbone"}, Wait: 5 * time.Second})
		if err != nil {
			if ctx.Err() == nil {
				u.log.Info("dual-path uplink ended", "stream", d.key, "reason", err.Error())
			}
			return
		}
		for {
			var nerr error
			pkts, nerr = r.Next(ctx, pkts)
			for _, pk := range pkts {
				if pk.Kind != unit.KindTS {
					continue
				}
				if err := p.Add(pk.Payload, emit); err != nil {
					u.log.Warn("dual-path framing", "stream", d.key, "err", err)
				}
				r.BytesOut.Add(uint64(len(pk.Payload)))
			}
			_ = p.Flush(emit)
			if nerr != nil {
				r.Close()
				if errors.Is(nerr, media.ErrStreamEnded) || ctx.Err() != nil {
					if ctx.Err() == nil {
						u.drainLegs(d)
						u.log.Info("dual-path uplink ended", "stream", d.key)
					}
					return
				}
				u.log.Warn("dual-path uplink reader", "stream", d.key, "err", nerr)
				break // subscribe again; the numbering goes on
			}
		}
	}
}

// drainLegs waits (bounded) until the legs sent what is queued, so the
// stream's end reaches the centers.
func (u *Uplinks) drainLegs(d *dualUplink) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && u.ctx.Err() == nil {
		n := 0
		for _, l := range d.legs {
			if l.s.Status().State == link.StateRunning {
				n += l.s.Pending()
			}
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// nextLeg picks the center of leg l's next connect: its current one
// unless that failed, never the other leg's.
func (u *Uplinks) nextLeg(d *dualUplink, l *dualLeg, attempt int, lastErr error) (link.Target, error) {
	u.mu.Lock()
	cfg := u.cfg
	now := time.Now()
	if lastErr != nil && l.center != "" {
		u.log.Warn("dual-path leg to center failed", "stream", d.key, "leg", l.idx, "center", l.center, "err", lastErr)
		l.exclude[l.center] = now
	}
	other := d.legs[1-l.idx].center
	ex := []string{}
	if other != "" {
		ex = append(ex, other)
	}
	for name, at := range l.exclude {
		if now.Sub(at) > cfg.ExcludeFor {
			delete(l.exclude, name)
			continue
		}
		ex = append(ex, name)
	}
	cur := l.center
	u.mu.Unlock()

	var m gossip.Member
	found := false
	if cur != "" && lastErr == nil {
		for _, c := range u.cl.CenterCandidates(d.key, cfg.Routes, nil) {
			if c.Name == cur {
				m, found = c, true
			}
		}
	}
	if !found {
		cands := u.cl.CenterCandidates(d.key, cfg.Routes, ex)
		if len(cands) == 0 && other != "" {
			// every other center failed lately: try them again, never
			// the other leg's
			cands = u.cl.CenterCandidates(d.key, cfg.Routes, []string{other})
		}
		if len(cands) == 0 {
			return link.Target{}, fmt.Errorf("stream %s leg %d: no center apart from the other leg's: %w", d.key, l.idx, gossip.ErrNoCenter)
		}
		m = cands[0]
	}
	if m.Meta.Addrs.Backbone == "" {
		return link.Target{}, fmt.Errorf("center %s advertises no backbone address", m.Name)
	}
	rtt, _ := u.cl.RTT(m.Name)
	rtt = link.BackboneRTT(u.ctx, rtt, m.RTTKnown, m.Meta.Addrs.Backbone) // see target
	u.mu.Lock()
	if l.center != m.Name {
		if l.center != "" {
			l.moves++
			u.log.Info("dual-path leg moves to another center", "stream", d.key, "leg", l.idx, "from", l.center, "to", m.Name, "rtt", rtt.String())
		}
		l.center, l.since = m.Name, now
	}
	other = d.legs[1-l.idx].center
	u.mu.Unlock()
	q := url.Values{}
	q.Set("leg", strconv.Itoa(l.idx))
	q.Set("peer", other)
	if d.explicit {
		q.Set("win", d.window.String())
	} else {
		q.Set("lat", d.window.String())
	}
	return link.Target{
		URL:             "srt://" + m.Meta.Addrs.Backbone + "?streamid=" + url.QueryEscape("publish:"+d.key+"?"+q.Encode()),
		Passphrase:      cfg.Passphrase,
		PBKeyLen:        cfg.PBKeyLen,
		Latency:         cfg.Latency(rtt),
		PeerIdleTimeout: cfg.IdleTimeout,
		DSCP:            cfg.DSCP,
		ConnectTimeout:  link.ConnectTimeoutFor(rtt),
		// a killed or blackholed center is left within a few tenths of a second, not on
		// libsrt's idle detection (seconds)
		WatchPeer: true,
		// every frame over a lossy backbone: see link.Target
		EveryLossReport: true,
	}, nil
}

// dualGone marks a failed or leaving center so a leg that used it
// reconnects elsewhere (the leg's own link notices the loss; the other
// leg carries the stream meanwhile).
func (u *Uplinks) dualGone(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range u.duals {
		for _, l := range d.legs {
			if l.center == name {
				l.exclude[name] = time.Now()
			}
		}
	}
}

// DualStreams returns the dual-path uplinks, sorted by stream.
func (u *Uplinks) DualStreams() []DualStatus {
	u.mu.Lock()
	out := make([]DualStatus, 0, len(u.duals))
	var senders [][dualpath.Legs]*link.MessageSender
	for _, d := range u.duals {
		s := DualStatus{Stream: d.key, SSRC: d.ssrc, Window: d.window.String(), Sent: d.made.Load()}
		var ss [dualpath.Legs]*link.MessageSender
		for i, l := range d.legs {
			s.Legs[i] = DualLegStatus{Center: l.center, Since: l.since, Moves: l.moves}
			ss[i] = l.s
		}
		out = append(out, s)
		senders = append(senders, ss)
	}
	u.mu.Unlock()
	for i := range out {
		for j, s := range senders[i] {
			out[i].Legs[j].Link, out[i].Legs[j].Sent, out[i].Legs[j].Dropped = s.Status(), s.Sent(), s.Dropped()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}
