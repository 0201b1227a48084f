package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/unit"
	"github.com/relaymesh/relaymesh/netutil"
)

// SilenceFailover is how long the active source may stay silent before
// the flow switches to the other one (the issue asks for < 500 ms).
const SilenceFailover = 300 * time.Millisecond

// returnHold is how long a returning primary must deliver before the flow
// switches back to it (at its next keyframe).
const returnHold = time.Second

// startGrace is how long the flow waits for an active source that has
// not delivered yet when the other one already does: two publishers that
// start together do not arrive in order, and failing over to whichever
// came first only to return a second later is a flap.
const startGrace = time.Second

// minSwitchStep is the least the timeline advances across a switch (a
// frame at 25 fps), so no two packets of a track share a timestamp.
const minSwitchStep = 40 * time.Millisecond

// A flow starts at its source's first video keyframe, never on audio
// from before it, unless the source carries no video. What the source
// declares says which (unit.DeclaredTracks: an RTMP or FLV publisher's
// onMetaData, an MPEG-TS source's PMT): one that declares audio only
// starts at once on its first audio packet; one that declares video is
// waited for a keyframe up to declaredVideoWait. videoWait is how long a
// source that declares nothing and has sent audio but nothing of video
// is waited for before the flow starts it on audio (taken as audio-only:
// its audio until then is not in the flow), counted from its first packet:
// pauses in its delivery shorter than videoWait do not restart the wait,
// a longer one (the source was gone) does. A source that has sent
// anything of video is always started at a keyframe. After a start on
// audio, video joins at its first keyframe.
const videoWait = 2 * time.Second

// declaredVideoWait is the last resort for a source that declares video
// and sends audio but no video keyframe: after it the flow starts on its
// audio (with a warning) rather than carry nothing. It is above the
// longest GOP encoders are set to (10 s). A var so a test can shorten it.
var declaredVideoWait = 12 * time.Second

// BitrateWindow is the span over which a source's and an output's bitrate
// is measured against its max_bitrate: one full window over the limit cuts
// it, one full window at or under the limit restores it.
const BitrateWindow = 2 * time.Second

// pullRetry is how long a pull source cut for its bitrate stays
// disconnected before it is pulled again (and measured again).
const pullRetry = 5 * time.Second

// SourceStatus is one source as the API shows it.
type SourceStatus struct {
	Name       string     `json:"name"`
	Stream     string     `json:"stream"`
	Live       bool       `json:"live"`
	LastPacket *time.Time `json:"last_packet,omitempty"`
	Bitrate    int64      `json:"bitrate"`
	Cut        string     `json:"cut,omitempty"` // why the source is not used (max bitrate)
	// Unhealthy names the health rule the source breaks and how (it
	// delivers, but not as it should): it is not used while it does.
	Unhealthy string `json:"unhealthy,omitempty"`
	// Declares is what the source declared it carries ("video", "audio
	// only"; "" when it declared nothing): the flow starts an audio-only
	// one at once and waits for a video one's keyframe.
	Declares string       `json:"declares,omitempty"`
	Pull     *link.Status `json:"pull,omitempty"`
	// Ref is what a flow source resolved to (remote.go).
	Ref *Resolution `json:"flow_ref,omitempty"`
}

// OutputStatus is one output as the API shows it.
type OutputStatus struct {
	Name    string       `json:"name"`
	Play    string       `json:"play,omitempty"` // the hub key players use
	Bitrate int64        `json:"bitrate"`        // what the output carries (bit/s, last window)
	Cut     string       `json:"cut,omitempty"`  // why the output is stopped (max bitrate)
	Push    *link.Status `json:"push,omitempty"`
	// BackupPush is the backup tunnel (an output with backup_url): the
	// backup source's media to backup_url, while Push carries the
	// primary source's to url.
	BackupPush *link.Status `json:"backup_push,omitempty"`
}

// Switch is one failover or return.
type Switch struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	To   string    `json:"to"`
	// Gap is the time between the last packet forwarded from the old
	// source and the first from the new one.
	GapMS int64 `json:"gap_ms"`
	// Failover is true for primary->backup, false for the return.
	Failover bool `json:"failover"`
	// Reason is SwitchSilence, SwitchPrimaryBack or "health: " and the
	// rule the old source broke (SwitchHealth).
	Reason string `json:"reason"`
}

// Why a flow switched sources.
const (
	SwitchSilence     = "silence"      // the active source sent nothing for SilenceFailover
	SwitchPrimaryBack = "primary back" // the primary delivered again for returnHold
)

// Status is a running flow's data-plane view.
type Status struct {
	Stream   string         `json:"stream"`
	Active   string         `json:"active_source"`
	Sources  []SourceStatus `json:"sources"`
	Outputs  []OutputStatus `json:"outputs"`
	Switches int            `json:"switches"`
	Last     *Switch        `json:"last_switch,omitempty"`
	// Reason says why the flow carries nothing or less than it should
	// (a source or output cut for its bitrate); "" when all is well.
	Reason string `json:"reason,omitempty"`
}

// Runner runs one flow's data plane until its context ends.
type Runner struct {
	spec Spec
	hub  *media.Hub
	log  *slog.Logger
	// policy is the outbound fetch policy (nil: none)
	policy func() *netutil.FetchPolicy
	// deliver resolves flow outputs that name another node's flow (nil:
	// they only offer the stream to flow sources)
	deliver Deliver
	// OnSwitch, when set, is called after each switch (tests, logs).
	OnSwitch func(Switch)

	mu      sync.Mutex
	st      Status
	pulls   []*link.Puller
	pushes  []*link.Pusher
	backups []*link.Pusher // backup tunnels, by output
	running chan struct{}

	// owned by Run's goroutine
	ctx        context.Context
	wg         sync.WaitGroup
	pullWork   []*worker
	pushWork   []*worker
	backupWork []*worker
	retryPulls []time.Time // when a cut pull source is pulled again
}

// worker is a puller or pusher the runner can stop and start again.
type worker struct {
	run    func(context.Context)
	cancel context.CancelFunc
}

// set starts or stops w; it is called from Run's goroutine only.
func (r *Runner) set(w *worker, on bool) {
	if w == nil || (w.cancel != nil) == on {
		return
	}
	if !on {
		w.cancel()
		w.cancel = nil
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	w.cancel = cancel
	r.wg.Go(func() { w.run(ctx) })
}

// OutputCut says why output name is cut ("" when it is not).
func (r *Runner) OutputCut(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.st.Outputs {
		if o.Name == name {
			return o.Cut
		}
	}
	return ""
}

// NewRunner returns a runner for spec.
func NewRunner(spec Spec, hub *media.Hub, log *slog.Logger) *Runner {
	r := &Runner{spec: spec, hub: hub, log: log.With("component", "flow", "flow", spec.ID), running: make(chan struct{})}
	r.st.Stream = spec.Key()
	for _, src := range spec.sources() {
		r.st.Sources = append(r.st.Sources, SourceStatus{Name: src.Name, Stream: spec.SourceKey(src)})
	}
	for _, o := range spec.Outputs {
		os := OutputStatus{Name: o.Name}
		switch o.Type {
		case OutRTMPPull, OutHTTPFLV, OutSRTListener, OutFlow:
			os.Play = spec.Key()
		}
		r.st.Outputs = append(r.st.Outputs, os)
	}
	return r
}

// Running is closed once the flow's stream is published.
func (r *Runner) Running() <-chan struct{} { return r.running }

// Status returns a copy of the current status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.Sources = append([]SourceStatus(nil), r.st.Sources...)
	st.Outputs = append([]OutputStatus(nil), r.st.Outputs...)
	for i, p := range r.pulls {
		if p != nil {
			s := p.Status()
			st.Sources[i].Pull = &s
		}
	}
	for i, p := range r.pushes {
		if p != nil {
			s := p.Status()
			st.Outputs[i].Push = &s
		}
	}
	for i, p := range r.backups {
		if p != nil {
			s := p.Status()
			st.Outputs[i].BackupPush = &s
		}
	}
	for i := range st.Sources {
		if st.Sources[i].LastPacket != nil {
			st.Sources[i].Live = time.Since(*st.Sources[i].LastPacket) < SilenceFailover
		}
	}
	return st
}

type tagged struct {
	src  int
	pkts []*unit.Packet
	err  error
	// anew says the source's stream was subscribed again (its publisher
	// came back, e.g. another node's flow after a restart): its timeline
	// starts over and is based again at its next keyframe.
	anew bool
}

// Run publishes the flow's stream and feeds it from the active source
// until ctx ends. It returns an error when the stream cannot be published.
func (r *Runner) Run(ctx context.Context) error {
	pub, err := r.hub.Publish(r.spec.Key(), media.PublisherInfo{Protocol: "flow", Remote: "flow " + r.spec.ID})
	if err != nil {
		return fmt.Errorf("publish %s: %w", r.spec.Key(), err)
	}
	defer pub.Close()
	close(r.running)

	ctx, cancel := context.WithCancel(ctx)
	r.ctx = ctx
	defer func() { cancel(); r.wg.Wait() }()

	srcs := r.spec.sources()
	r.mu.Lock()
	r.pulls = make([]*link.Puller, len(srcs))
	r.pushes = make([]*link.Pusher, len(r.spec.Outputs))
	r.backups = make([]*link.Pusher, len(r.spec.Outputs))
	r.mu.Unlock()
	r.pullWork = make([]*worker, len(srcs))
	r.pushWork = make([]*worker, len(r.spec.Outputs))
	r.backupWork = make([]*worker, len(r.spec.Outputs))
	r.retryPulls = make([]time.Time, len(srcs))
	for i, src := range srcs {
		if target, ok := pullTarget(src); ok {
			p := link.NewPuller(r.hub, link.PullConfig{Key: r.spec.SourceKey(src),
				Next: func(int, error) (link.Target, error) { return r.guard(target), nil }}, r.log)
			r.mu.Lock()
			r.pulls[i] = p
			r.mu.Unlock()
			r.pullWork[i] = &worker{run: func(ctx context.Context) { p.Run(ctx) }}
			r.set(r.pullWork[i], true)
		}
	}
	for i, o := range r.spec.Outputs {
		if o.Type == OutFlow && o.Flow != "" && r.deliver != nil {
			p, w := r.newDelivery(&o) // deliver.go
			r.mu.Lock()
			r.pushes[i], r.pushWork[i] = p, w
			r.mu.Unlock()
			continue
		}
		target, ok := pushTarget(&o)
		if !ok {
			continue
		}
		var p, bp *link.Pusher
		if o.BackupURL == "" || r.spec.Backup == nil {
			p, r.pushWork[i] = r.newPush(r.spec.Key(), target, "")
		} else {
			// two tunnels: each source's media to its own destination
			backup := target
			backup.URL = o.BackupURL
			p, r.pushWork[i] = r.newPush(r.spec.SourceKey(&r.spec.Source), target, "primary")
			bp, r.backupWork[i] = r.newPush(r.spec.SourceKey(r.spec.Backup), backup, "backup")
		}
		r.mu.Lock()
		r.pushes[i], r.backups[i] = p, bp
		r.mu.Unlock()
	}

	in := make(chan tagged, 16)
	for i, src := range srcs {
		key := r.spec.SourceKey(src)
		var info media.ReaderInfo
		if src.Type == SrcFlow {
			// a reader of the other flow's stream like a player: an
			// on-demand pull of it from another node runs while it reads
			info = media.ReaderInfo{Protocol: "flow", Remote: "flow " + r.spec.ID}
		}
		r.wg.Go(func() { r.follow(ctx, i, key, info, in) })
	}
	return r.switcher(ctx, pub, srcs, in)
}

// newPush starts a pusher of hub stream key to target; tunnel names it
// in the log ("" for the flow's own stream).
func (r *Runner) newPush(key string, target link.Target, tunnel string) (*link.Pusher, *worker) {
	log := r.log
	if tunnel != "" {
		log = log.With("tunnel", tunnel)
	}
	p := link.NewPusher(r.hub, link.PushConfig{Key: key, Persistent: true,
		Next: func(int, error) (link.Target, error) { return r.guard(target), nil }}, log)
	w := &worker{run: func(ctx context.Context) { p.Run(ctx) }}
	r.set(w, true)
	return p, w
}

// follow reads one source stream, resubscribing when it ends, and sends
// its packets to in.
func (r *Runner) follow(ctx context.Context, i int, key string, info media.ReaderInfo, in chan<- tagged) {
	for had := false; ctx.Err() == nil; {
		rd, err := r.hub.Subscribe(ctx, key, media.SubscribeOptions{Format: media.FormatFLV, Wait: time.Second, Info: info})
		if err != nil {
			if errors.Is(err, media.ErrHubClosed) {
				return
			}
			continue
		}
		if had {
			select {
			case in <- tagged{src: i, anew: true}:
			case <-ctx.Done():
				rd.Close()
				return
			}
		}
		had = true
		buf := make([]*unit.Packet, 0, 64)
		for {
			pkts, err := rd.Next(ctx, buf[:0])
			if len(pkts) > 0 {
				cp := append([]*unit.Packet(nil), pkts...)
				select {
				case in <- tagged{src: i, pkts: cp}:
				case <-ctx.Done():
					rd.Close()
					return
				}
				n := 0
				for _, p := range cp {
					n += len(p.Payload)
				}
				rd.BytesOut.Add(uint64(n)) // the source stream's sent bytes count the flow too
			}
			if err != nil {
				break
			}
		}
		rd.Close()
	}
}

// srcState is what the switcher knows of one source.
type srcState struct {
	headers map[int]*unit.Packet
	offset  int64
	based   bool
	// bitrate window
	winStart time.Time
	winBytes int64
	rate     int64 // bit/s over the last full window
	cut      string
	gop      []*unit.Packet // packets since the newest keyframe
	health   sourceHealth
	// runStart is the first packet of the source's current run: since
	// it was subscribed, or since it came back from a silence of at least
	// videoWait (gone). Shorter pauses do not end a run: audio that comes
	// in bursts with gaps over SilenceFailover still starts the flow
	// videoWait after its first packet. sawVideo says the run carried
	// video; last is the source's last packet.
	runStart time.Time
	sawVideo bool
	last     time.Time
	// declared is what the source's onMetaData (or PMT) declares;
	// subStart is its first packet since it was subscribed (silence
	// does not reset it: bursty audio has gaps over SilenceFailover)
	declared unit.Tracks
	subStart time.Time
}

// audioStarts reports whether audio of source s may start the flow at
// now, and why: only when s carries no video, which it declared, or it
// declared video but sent no keyframe for declaredVideoWait (a last
// resort), or it declared nothing and delivered videoWait without any.
func (s *srcState) audioStarts(now time.Time) (bool, string) {
	switch {
	case s.declared == unit.TracksAudioOnly:
		return true, "declared audio only"
	case s.declared == unit.TracksVideo:
		return now.Sub(s.subStart) >= declaredVideoWait, "declared video but sent no video keyframe in " + declaredVideoWait.String()
	}
	return !s.sawVideo && s.headers[1] == nil && now.Sub(s.runStart) >= videoWait, "declared nothing and sent no video for " + videoWait.String()
}

func hdrSlot(p *unit.Packet) int {
	switch p.Kind {
	case unit.KindVideo:
		return 1
	case unit.KindAudio:
		return 2
	}
	return 0
}

func (r *Runner) switcher(ctx context.Context, pub *media.Publisher, srcs []*Source, in <-chan tagged) error {
	st := make([]*srcState, len(srcs))
	for i := range st {
		st[i] = &srcState{headers: map[int]*unit.Packet{}, health: newSourceHealth(srcs[i])}
	}
	// ccStream returns source i's hub stream when its continuity errors
	// are judged (its max_cc_errors), else nil: its TS publisher (the SRT
	// listener's session, or the pull) counts them on it
	ccStream := func(i int) *media.Stream {
		if srcs[i].MaxCCErrors <= 0 {
			return nil
		}
		return r.hub.Stream(r.spec.SourceKey(srcs[i]))
	}
	pol := newSwitchPolicy(len(srcs))
	needKey, sendHeaders := true, true
	// videoKey: the flow started on audio; its video joins at a keyframe
	videoKey := false
	var lastOut [3]int64 // per slot: data, video, audio
	var lastFwd time.Time
	fwdStart, fwdBytes := time.Now(), int64(0) // the flow's own bitrate window
	outCut := make([]string, len(r.spec.Outputs))
	var fwdRate int64
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	r.mu.Lock()
	r.st.Active = srcs[0].Name
	r.mu.Unlock()

	// unusable says why source i is not used though it may deliver: a
	// switch away from it gives that reason ("" = usable)
	unusable := func(i int) string {
		switch {
		case st[i].health.sick != "":
			return st[i].health.reason()
		case st[i].cut != "":
			return SwitchSilence // cut for its bitrate: as if silent
		}
		return ""
	}
	write := func(i int, p *unit.Packet) error {
		s := st[i]
		if !s.based {
			s.based = true
			// the new source continues the timeline after the time that
			// really passed since the last packet went out (at least a
			// frame), so players neither jump ahead nor see equal stamps
			base := max(lastOut[0], lastOut[1], lastOut[2])
			if !lastFwd.IsZero() {
				base += max(time.Since(lastFwd), minSwitchStep).Milliseconds()
			}
			s.offset = base - p.Time
		}
		t := p.Time + s.offset
		slot := hdrSlot(p)
		if t < lastOut[slot] {
			t = lastOut[slot]
		}
		lastOut[slot] = t
		lastFwd = time.Now()
		fwdBytes += int64(len(p.Payload))
		return pub.Write(&unit.Packet{Kind: p.Kind, Time: t, Keyframe: p.Keyframe, Header: p.Header, Payload: p.Payload})
	}
	// forward writes p of the active source: headers once a start point
	// is found, then everything from a keyframe on.
	forward := func(i int, p *unit.Packet) error {
		s := st[i]
		if p.Header {
			if sendHeaders || needKey {
				return nil // stored; written with the start point
			}
			return write(i, p)
		}
		if needKey {
			if p.Kind == unit.KindVideo && !p.Keyframe {
				return nil
			}
			if p.Kind != unit.KindVideo {
				ok, why := s.audioStarts(time.Now())
				if !ok {
					return nil // a video source starts at a keyframe
				}
				if s.declared != unit.TracksAudioOnly {
					level := slog.LevelInfo // taken as audio-only
					if s.declared == unit.TracksVideo {
						level = slog.LevelWarn // the last resort
					}
					r.log.Log(ctx, level, "flow starts on audio: its video joins at its first keyframe", "source", srcs[i].Name,
						"reason", why)
				}
			}
			needKey, videoKey = false, p.Kind != unit.KindVideo
		} else if videoKey && p.Kind == unit.KindVideo {
			if !p.Keyframe {
				return nil
			}
			videoKey = false
		}
		if sendHeaders {
			sendHeaders = false
			// the headers go out stamped with the start point's time: the
			// new source's timeline is based on the start point, not on
			// when its headers arrived (seconds earlier), which would put
			// a jump of that age into the flow at every switch
			for _, slot := range []int{0, 1, 2} {
				if h := s.headers[slot]; h != nil {
					h = &unit.Packet{Kind: h.Kind, Time: p.Time, Header: true, Payload: h.Payload}
					if err := write(i, h); err != nil {
						return err
					}
				}
			}
			// and the start keyframe carries them in-band (inband.go)
			p = withParamSets(s.headers[1], p)
		}
		return write(i, p)
	}
	// switchTo carries out the policy's switch from source from to to
	switchTo := func(from, to int, now time.Time, replay bool, reason string) error {
		sw := Switch{At: now, From: srcs[from].Name, To: srcs[to].Name, Failover: to == 1, Reason: reason}
		if !lastFwd.IsZero() {
			sw.GapMS = now.Sub(lastFwd).Milliseconds()
		}
		needKey, sendHeaders = true, true
		st[to].based = false
		r.mu.Lock()
		r.st.Active = srcs[to].Name
		r.st.Switches++
		r.st.Last = &sw
		for i, s := range st {
			// in the same snapshot as the switch: a reader that sees the
			// switch sees the health rule that caused it
			r.st.Sources[i].Unhealthy = s.health.detail
		}
		r.mu.Unlock()
		r.log.Info("flow source switched", "from", sw.From, "to", sw.To, "reason", sw.Reason, "gap_ms", sw.GapMS)
		if r.OnSwitch != nil {
			r.OnSwitch(sw)
		}
		if replay {
			// start the new source at its newest keyframe at once rather
			// than waiting up to a GOP for the next one
			for _, p := range st[to].gop {
				if err := forward(to, p); err != nil {
					return err
				}
			}
		}
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			for i, s := range st {
				if cs := ccStream(i); cs != nil {
					s.health.monitor().ContinuityErrors(now, cs.ContinuityErrors())
				}
				if s.health.check(now, srcs[i].Name, r.log) {
					pol.resume(i, now)
				}
			}
			from := pol.active
			if to, reason, ok := pol.tick(now, unusable); ok {
				if err := switchTo(from, to, now, true, reason); err != nil {
					return err
				}
			}
			for i, s := range st {
				if !s.winStart.IsZero() && now.Sub(s.winStart) >= BitrateWindow {
					s.rate = int64(float64(s.winBytes*8) / now.Sub(s.winStart).Seconds())
					if r.judgeSource(i, srcs[i], s, now) && i == pol.active {
						needKey, sendHeaders = true, true // resume at a keyframe
					}
					s.winStart, s.winBytes = time.Time{}, 0
				}
				if !r.retryPulls[i].IsZero() && !now.Before(r.retryPulls[i]) {
					r.retryPulls[i] = time.Time{}
					r.set(r.pullWork[i], true)
				}
			}
			if d := now.Sub(fwdStart); d >= BitrateWindow {
				fwdRate = int64(float64(fwdBytes*8) / d.Seconds())
				fwdStart, fwdBytes = now, 0
				r.judgeOutputs(fwdRate, outCut)
			}
			r.mu.Lock()
			var why []string
			for i, s := range st {
				if t := pol.last[i]; !t.IsZero() {
					r.st.Sources[i].LastPacket = &t
				}
				r.st.Sources[i].Cut = s.cut
				r.st.Sources[i].Unhealthy = s.health.detail
				r.st.Sources[i].Bitrate = s.rate
				r.st.Sources[i].Declares = ""
				if s.declared != unit.TracksUnknown {
					r.st.Sources[i].Declares = s.declared.String()
				}
				if s.cut != "" {
					why = append(why, fmt.Sprintf("source %q: %s", srcs[i].Name, s.cut))
				}
			}
			for i := range r.st.Outputs {
				r.st.Outputs[i].Bitrate = fwdRate
				r.st.Outputs[i].Cut = outCut[i]
				if outCut[i] != "" {
					why = append(why, fmt.Sprintf("output %q: %s", r.st.Outputs[i].Name, outCut[i]))
				}
			}
			r.st.Reason = strings.Join(why, "; ")
			r.mu.Unlock()
		case m := <-in:
			now := time.Now()
			s := st[m.src]
			if m.anew {
				s.based, s.gop = false, s.gop[:0]
				s.runStart, s.sawVideo, s.declared, s.subStart = time.Time{}, false, unit.TracksUnknown, time.Time{}
				if m.src == pol.active {
					needKey, sendHeaders = true, true
				}
				continue
			}
			if pol.received(m.src, now) {
				s.health.restart(now) // delivers again after silence
			}
			if s.runStart.IsZero() || now.Sub(s.last) >= videoWait {
				s.runStart, s.sawVideo = now, false // a new run: the source was gone
			}
			s.last = now
			if s.winStart.IsZero() {
				s.winStart = now
			}
			if s.subStart.IsZero() {
				s.subStart = now
			}
			for _, p := range m.pkts {
				s.sawVideo = s.sawVideo || p.Kind == unit.KindVideo
				s.winBytes += int64(len(p.Payload))
				s.health.packet(now, p)
			}
			for _, p := range m.pkts {
				switch {
				case p.Header:
					s.headers[hdrSlot(p)] = p
					if p.Kind == unit.KindData {
						s.declared = unit.DeclaredTracks(p.Payload)
					}
				case p.Kind == unit.KindVideo && p.Keyframe:
					s.gop = append(s.gop[:0], p)
				case len(s.gop) > 0 && len(s.gop) < 4096:
					s.gop = append(s.gop, p)
				}
				if p.Kind == unit.KindVideo && p.Keyframe && !p.Header {
					if from := pol.active; pol.keyframe(m.src) {
						if err := switchTo(from, m.src, now, false, SwitchPrimaryBack); err != nil {
							return err
						}
					}
				}
				if m.src != pol.active || s.cut != "" {
					continue
				}
				if err := forward(m.src, p); err != nil {
					return err
				}
			}
		}
	}
}

// judgeSource cuts a source whose last full window went over its
// max_bitrate and restores one whose window, while delivering, was at or
// under it. A cut pull source is disconnected and pulled again after
// pullRetry; a cut push source's publisher is disconnected (its endpoint
// logs the reason) and the source stays out of the flow until a window
// under the limit. It reports whether the source was restored.
func (r *Runner) judgeSource(i int, src *Source, s *srcState, now time.Time) bool {
	limit, key := r.spec.Limit(src)
	if limit <= 0 {
		return false
	}
	switch {
	case s.cut == "" && s.rate > limit:
		s.cut = fmt.Sprintf("measured %d bit/s, over %s %d: source cut", s.rate, key, limit)
		if r.pullWork[i] != nil {
			s.cut += fmt.Sprintf(" (disconnected; pulled again in %s)", pullRetry)
			r.set(r.pullWork[i], false)
			r.retryPulls[i] = now.Add(pullRetry)
		} else if st := r.hub.Stream(r.spec.SourceKey(src)); st != nil &&
			st.KickPublisher(fmt.Errorf("%w: flow %q source %q: %s", media.ErrBitrate, r.spec.ID, src.Name, s.cut)) {
			s.cut += " (publisher disconnected)"
		}
		r.log.Warn("flow source cut", "source", src.Name, "reason", s.cut)
	case s.cut != "" && s.winBytes > 0 && s.rate <= limit:
		s.cut = ""
		r.log.Info("flow source restored", "source", src.Name, "bitrate", s.rate, "limit", limit)
		return true
	}
	return false
}

// judgeOutputs stops an output while the flow carries more than its
// max_bitrate (its push stops, new players of it are refused) and starts
// it again after a window at or under it.
func (r *Runner) judgeOutputs(rate int64, cut []string) {
	for i := range r.spec.Outputs {
		o := &r.spec.Outputs[i]
		if o.MaxBitrate <= 0 {
			continue
		}
		switch {
		case cut[i] == "" && rate > o.MaxBitrate:
			cut[i] = fmt.Sprintf("the flow carries %d bit/s, over this output's max_bitrate %d: output stopped", rate, o.MaxBitrate)
			r.set(r.pushWork[i], false)
			r.set(r.backupWork[i], false)
			r.log.Warn("flow output cut", "output", o.Name, "reason", cut[i])
		case cut[i] != "" && rate <= o.MaxBitrate:
			cut[i] = ""
			r.set(r.pushWork[i], true)
			r.set(r.backupWork[i], true)
			r.log.Info("flow output restored", "output", o.Name, "bitrate", rate, "max_bitrate", o.MaxBitrate)
		}
	}
}

// guard puts the policy in force into t.
func (r *Runner) guard(t link.Target) link.Target {
	if r.policy != nil {
		t.Policy = r.policy()
	}
	return t
}

func pullTarget(src *Source) (link.Target, bool) {
	switch src.Type {
	case SrcRTMPPull, SrcSRTCaller, SrcHTTPFLVPull:
		return link.Target{URL: src.URL, Passphrase: src.Passphrase, PBKeyLen: src.PBKeyLen,
			Latency: time.Duration(src.LatencyMS) * time.Millisecond}, true
	}
	return link.Target{}, false
}

func pushTarget(o *Output) (link.Target, bool) {
	switch o.Type {
	case OutRTMPPush, OutSRTCaller:
		return link.Target{URL: o.URL, Passphrase: o.Passphrase, PBKeyLen: o.PBKeyLen,
			Latency: time.Duration(o.LatencyMS) * time.Millisecond}, true
	}
	return link.Target{}, false
}
