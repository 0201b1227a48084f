package link

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/unit"
)

// The splice of a pull's replacement, driven through the two pulls' sinks
// into a real hub with synthetic copies of one stream, as a center's two
// SRT pulls demux them: per video access unit (25 fps, a keyframe every
// second) its audio frames (AAC at 48 kHz, muxed skew ms ahead of the
// video), its TS group, then its FLV video frame. A packet arrives at
// its production time plus the copy's path delay; the new copy starts at
// its host's last keyframe before it connected, at once (the GOP cache),
// then live. The hub's readers (FLV and TS lane) see what a player would.

const (
	synthStart = 1000 // ms of the first frame
	synthFrame = 40
	synthGOP   = 25
	synthEnd   = 12000
)

type synthPkt struct {
	prod int64 // when its host has it
	pk   *unit.Packet
}

// synthCopy returns copy tag's packets of the groups from the one at
// (or the last keyframe before) from on, headers first, as case c has
// them (skew, the new copy's headers).
func synthCopy(tag byte, from int64, c spliceCase, shift int64) []synthPkt {
	skew := c.skew
	var out []synthPkt
	mk := func(prod int64, kind unit.Kind, t int64, key bool) {
		out = append(out, synthPkt{prod, &unit.Packet{Kind: kind, Time: t + shift, Keyframe: key, Payload: []byte{tag, byte(kind), byte(t), byte(t >> 8)}}})
	}
	first := int64(0)
	for n := int64(0); synthStart+n*synthFrame <= from; n++ {
		if n%synthGOP == 0 {
			first = n
		}
	}
	hdr := func(kind unit.Kind, b byte) {
		pl := []byte{b}
		if tag == 'n' && c.newHeaders {
			pl = append(pl, tag)
		}
		out = append(out, synthPkt{0, &unit.Packet{Kind: kind, Time: shift, Header: true, Payload: pl}})
	}
	hdr(unit.KindData, 1)
	hdr(unit.KindVideo, 2)
	hdr(unit.KindAudio, 3)
	hdr(unit.KindTS, 4+tag&1)
	aud := int64(0) // next audio frame
	at := func(m int64) int64 { return synthStart + m*1024*1000/48000 }
	for n := int64(0); synthStart+n*synthFrame <= synthEnd; n++ {
		v := synthStart + n*synthFrame
		prod := v + synthFrame
		// the audio frames muxed in this group
		for ; at(aud) < v+synthFrame+skew; aud++ {
			if n >= first {
				mk(prod, unit.KindAudio, at(aud), false)
			}
		}
		if n < first {
			continue
		}
		mk(prod, unit.KindTS, v, n%synthGOP == 0)
		mk(prod, unit.KindVideo, v, n%synthGOP == 0)
	}
	return out
}

type spliceCase struct {
	name               string
	oldDelay, newDelay int64
	join               int64 // the new pull connects
	oldEnd             int64 // the old pull's session ends (0: never)
	oldStall           int64 // the old pull stops delivering, its session stays (0: never)
	shift              int64 // the new copy's timestamps are off by this
	skew               int64 // audio muxed this far ahead of the video
	maxBytes           int
	handOver           int64  // the old pull is handed over at this time, after its headers (0: before its first packet)
	uplink             bool   // the old side is the center's own uplink (a hub publisher), handed over by its route
	newHeaders         bool   // the new copy's codec headers differ from the old one's
	reason             string // "" = spliced at a keyframe
	hitless            bool   // no frame missing, the new copy starts at a keyframe
	// standby: the new copy is a standby (NewStandby) that joined long
	// before; maxSpan bounds its buffer (0: the default)
	standby bool
	maxSpan int64
	lossy   bool // frames the buffer's bound dropped are missing
}

func TestSplice(t *testing.T) {
	cases := []spliceCase{
		// the new copy's first keyframe (5000) is newer than what the old,
		// slower copy delivered (4720): taking over at once loses 7 frames
		{name: "ahead", oldDelay: 280, newDelay: 0, join: 5000, skew: 100, hitless: true},
		{name: "ahead, audio behind", oldDelay: 280, newDelay: 0, join: 5000, skew: -100, hitless: true},
		// its host's last keyframe (5000) is older than what the old copy
		// delivered (5220) when it connects, its live edge is newer: it
		// splices at its next keyframe
		{name: "ahead after its GOP", oldDelay: 280, newDelay: 0, join: 5500, skew: 100, hitless: true},
		// the same path delay: the next keyframe after it connected
		{name: "equal", oldDelay: 100, newDelay: 100, join: 5500, skew: 100, hitless: true},
		// behind: everything it brings the old copy delivered, its second
		// keyframe too: it goes on from the old one's last frame at once
		// (waiting for the old one to end or for 4 s kept a leaving
		// host's pull open past its leave wait)
		{name: "behind", oldDelay: 0, newDelay: 300, join: 5000, oldEnd: 8000, skew: 100, reason: "the new pull is behind the old one", hitless: true},
		{name: "behind, old goes on", oldDelay: 0, newDelay: 300, join: 5000, skew: 100, reason: "the new pull is behind the old one", hitless: true},
		// the old pull's headers came before it was handed over (a
		// pull that ran for a while): the new copy's, the same bytes,
		// are not sent again
		{name: "behind, handed over late", oldDelay: 0, newDelay: 300, join: 5000, handOver: 3000, skew: 100, reason: "the new pull is behind the old one", hitless: true},
		// TestClusterDrainOnRestart's third center, with the splice on:
		// the new copy's headers that go out (other bytes here) were
		// stamped more than 3 s before the old copy's last frame (here
		// at 0; there at its first keyframe, 3.5 s back): the hub took
		// that for a clock stepping back and rebased the session (4.8 s
		// skipped by the timestamps there)
		{name: "behind, new headers", oldDelay: 0, newDelay: 300, join: 5000, handOver: 3000, skew: 100, newHeaders: true, reason: "the new pull is behind the old one", hitless: true},
		{name: "ahead, new headers", oldDelay: 280, newDelay: 0, join: 5000, handOver: 3000, skew: 100, newHeaders: true, hitless: true},
		// the old side is the center's own uplink of a stream that moved
		// (its packets go through the splice by the hub's route): the
		// pull from the new host splices as from an old pull
		{name: "uplink, ahead", oldDelay: 280, newDelay: 0, join: 5000, handOver: 3000, skew: 100, uplink: true, hitless: true},
		{name: "uplink, behind", oldDelay: 0, newDelay: 300, join: 5000, handOver: 3000, skew: 100, uplink: true, reason: "the new pull is behind the old one", hitless: true},
		{name: "uplink ends early", oldDelay: 280, newDelay: 0, join: 5000, handOver: 3000, oldEnd: 5100, skew: 100, uplink: true, reason: "the old pull ended"},
		// the old copy ends before it reached the new one's keyframe:
		// the frames between are in neither
		{name: "old ends early", oldDelay: 280, newDelay: 0, join: 5000, oldEnd: 5100, skew: 100, reason: "the old pull ended"},
		{name: "old stalls", oldDelay: 280, newDelay: 0, join: 5000, oldStall: 5100, skew: 100, reason: "the old pull delivered nothing for 1s"},
		{name: "span bound", oldDelay: 2600, newDelay: 0, join: 5000, skew: 100, reason: "without the old pull reaching its keyframe"},
		{name: "byte bound", oldDelay: 280, newDelay: 0, join: 5000, skew: 100, maxBytes: 100, reason: "the new pull's buffer reached"},
		{name: "not one timeline", oldDelay: 280, newDelay: 0, join: 5000, skew: 100, shift: 60000, reason: "not one timeline"},
		// a standby (a dual-path stream's other host) runs beside the
		// active pull from 2000 on and goes out only when the active
		// one ends or stalls, mid-GOP (keyframes at 7000, 8000): from
		// its last frame on, whether the standby is ahead or behind
		{name: "standby ahead, active ends mid-GOP", standby: true, oldDelay: 280, newDelay: 0, join: 2000, oldEnd: 7500, skew: 100, reason: "the old pull ended", hitless: true},
		{name: "standby ahead, active stalls", standby: true, oldDelay: 280, newDelay: 0, join: 2000, oldStall: 7500, skew: 100, reason: "the old pull delivered nothing for 1s", hitless: true},
		{name: "standby far ahead, active ends", standby: true, oldDelay: 4500, newDelay: 0, join: 5600, oldEnd: 9560, skew: 100, reason: "the old pull ended", hitless: true},
		{name: "standby behind, active ends mid-GOP", standby: true, oldDelay: 0, newDelay: 300, join: 2000, oldEnd: 7500, skew: 100, reason: "the old pull ended", hitless: true},
		{name: "standby ahead, audio behind", standby: true, oldDelay: 280, newDelay: 0, join: 2000, oldEnd: 7500, skew: -100, reason: "the old pull ended", hitless: true},
		// the standby delivers while the active pull still connects
		// (its headers came, no frame for 1.5 s): that is no stall
		{name: "standby before the active delivers", standby: true, oldDelay: 1500, newDelay: 0, join: 500, oldEnd: 7500, skew: 100, reason: "the old pull ended", hitless: true},
		// the buffer's bound: the active pull is 3 s behind, the standby
		// keeps 1.5 s (trimmed at its keyframes): what it dropped is lost
		{name: "standby buffer bound", standby: true, maxSpan: 1500, oldDelay: 3000, newDelay: 0, join: 4500, oldEnd: 9500, skew: 100, reason: "the old pull ended", lossy: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSplice(t, c) })
	}
}

type spliceEvent struct {
	at  int64
	new bool
	pk  *unit.Packet // nil: the old session ends
}

func runSplice(t *testing.T, c spliceCase) {
	hc := media.DefaultHubConfig()
	hc.RingPackets, hc.RingBytes, hc.RingSlack = 1<<16, 1<<30, 1<<30 // keep it all
	hc.MaxReaderLag = 0
	hub := media.NewHub(hc, testLog(t, "hub"))
	defer hub.Close()
	const key = "live/splice"
	log, buf := testmedia.Logger(t, "splice")
	logs := buf.String
	oldP := NewPuller(hub, PullConfig{Key: key}, log)
	sp := NewSplice(log)
	if c.standby {
		sp = NewStandby(log)
	}
	if c.maxSpan > 0 {
		sp.st.maxSpan = c.maxSpan
	}
	if c.maxBytes > 0 {
		sp.st.maxBytes = c.maxBytes
	}
	var now int64
	base := time.Now()
	sp.now = func() time.Time { return base.Add(time.Duration(now) * time.Millisecond) }
	newP := NewPuller(hub, PullConfig{Key: key, Takeover: true, Continues: true, Splice: sp}, log)
	oldS := &sink{p: oldP, info: media.PublisherInfo{Protocol: "srt-pull", Native: media.FormatTS}}
	newS := &sink{p: newP, info: media.PublisherInfo{Protocol: "srt-pull", Native: media.FormatTS}}
	// the old side: a pull's session, or an uplink's publisher
	oldWrite, oldClose := oldS.write, oldS.close
	handOver := func() { oldP.HandOver(sp) }
	if c.uplink {
		pub, err := hub.Publish(key, media.PublisherInfo{Protocol: "srt", Native: media.FormatTS})
		if err != nil {
			t.Fatal(err)
		}
		oldWrite, oldClose = pub.Write, pub.Close
		handOver = func() {
			if !hub.Stream(key).RoutePublisher("srt", sp.Route) {
				t.Fatal("the uplink's publisher was not routed")
			}
		}
	}
	handed := false
	if c.handOver == 0 {
		handOver()
		handed = true
	}

	var evs []spliceEvent
	for _, s := range synthCopy('o', 0, c, 0) {
		at := s.prod + c.oldDelay
		if (c.oldEnd > 0 && at >= c.oldEnd) || (c.oldStall > 0 && at >= c.oldStall) {
			break
		}
		evs = append(evs, spliceEvent{at: at, pk: s.pk})
	}
	if c.oldEnd > 0 {
		evs = append(evs, spliceEvent{at: c.oldEnd})
	}
	for _, s := range synthCopy('n', c.join-c.newDelay, c, c.shift) {
		evs = append(evs, spliceEvent{at: max(c.join, s.prod+c.newDelay), new: true, pk: s.pk})
	}
	// by arrival; on a tie the new copy's first (the harder case: the
	// old one has not delivered it yet)
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].new && !evs[j].new
	})

	var readers [2]*media.Reader
	fedOld := map[string]bool{} // the old copy's packets that went to the hub
	oldDone := false
	readyAtEnd := false // a standby's Ready when the old session ends
	for _, e := range evs {
		now = e.at
		if !handed && now >= c.handOver {
			handOver()
			handed = true
		}
		switch {
		case e.pk == nil:
			readyAtEnd = sp.Standby().Ready
			oldClose()
			oldDone = true
		case !e.new:
			if oldDone {
				continue
			}
			err := oldWrite(e.pk)
			if errors.Is(err, errSpliced) {
				oldClose()
				oldDone = true
				continue
			}
			if err != nil {
				t.Fatalf("old pull's write: %v", err)
			}
			fedOld[pktID(e.pk)] = true
			if readers[0] == nil && !e.pk.Header {
				for f, format := range []media.Format{media.FormatFLV, media.FormatTS} {
					r, err := hub.Subscribe(context.Background(), key, media.SubscribeOptions{Format: format, Info: media.ReaderInfo{Protocol: "test"}})
					if err != nil {
						t.Fatal(err)
					}
					readers[f] = r
				}
			}
		default:
			if err := newS.write(e.pk); err != nil {
				t.Fatalf("new pull's write: %v", err)
			}
		}
	}
	if !sp.done.Load() {
		t.Fatalf("no switch; log:\n%s", logs())
	}
	// the stream ends at once with the new pull, and the readers read it all
	hub.SetLimits(0, 0, 0, false, 0)
	newS.close()
	if !oldDone {
		oldClose()
	}
	var got []*unit.Packet
	for _, r := range readers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for {
			b, err := r.Next(ctx, make([]*unit.Packet, 0, 256))
			got = append(got, b...)
			if err != nil {
				if !errors.Is(err, media.ErrStreamEnded) {
					t.Fatalf("reader: %v", err)
				}
				break
			}
		}
		cancel()
	}

	// how the switch came, in the log
	out := logs()
	switch {
	case c.reason == "" && !strings.Contains(out, "pull spliced: the replacement takes over at its keyframe"):
		t.Errorf("not spliced at a keyframe; log:\n%s", out)
	case c.standby && !strings.Contains(out, "standby pull takes over") || !strings.Contains(out, c.reason):
		t.Errorf("want the standby to take over because %q; log:\n%s", c.reason, out)
	case !c.standby && c.reason != "" && !strings.Contains(out, "pull switched at once"):
		t.Errorf("want a switch at once because %q; log:\n%s", c.reason, out)
	}
	if c.standby {
		// the buffer stayed within its bound, and rolled when it had to
		bound := sp.st.maxSpan
		if sp.st.maxHeld > bound {
			t.Errorf("the standby's buffer held %d ms, the bound is %d", sp.st.maxHeld, bound)
		}
		if c.maxSpan > 0 && sp.st.trimmed == 0 {
			t.Errorf("the standby's buffer (at most %d ms held) never rolled", sp.st.maxHeld)
		}
		t.Logf("standby: at most %d ms held, %d packets trimmed", sp.st.maxHeld, sp.st.trimmed)
		if ready := readyAtEnd; c.oldEnd > 0 && c.hitless != ready {
			t.Errorf("the standby was ready (%v) when the active pull ended, it lost frames (%v)", ready, !c.hitless)
		}
	}
	if c.shift != 0 {
		return // a new timeline: the hub rebases it (media's tests)
	}
	// per track: times strictly increasing (no duplicate DTS), the old
	// copy then the new one, and with hitless every frame there
	all := map[[2]int]bool{} // every frame of the stream
	for _, s := range synthCopy('o', 0, c, 0) {
		if !s.pk.Header {
			all[[2]int{trackOf(s.pk), int(s.pk.Time)}] = true
		}
	}
	newFrom := map[int]int64{} // the new copy's first time per track
	for _, s := range synthCopy('n', c.join-c.newDelay, c, 0) {
		if i := trackOf(s.pk); !s.pk.Header {
			if _, ok := newFrom[i]; !ok {
				newFrom[i] = s.pk.Time
			}
		}
	}
	last := map[int]int64{}
	from := map[int]byte{}
	seen := map[[2]int]bool{}
	headers, newHeaders := 0, 0
	var hdrs []string
	for _, p := range got {
		if p.Header {
			if p.Kind != unit.KindTS {
				headers++
				if len(p.Payload) > 1 {
					newHeaders++
				}
			}
			hdrs = append(hdrs, fmt.Sprintf("%d:%d@%d", p.Kind, p.Payload[0], p.Time))
			continue
		}
		i := trackOf(p)
		if l, ok := last[i]; ok && p.Time <= l {
			t.Errorf("%s: %d after %d", trackName(i), p.Time, l)
		}
		last[i] = p.Time
		seen[[2]int{i, int(p.Time)}] = true
		tag := p.Payload[0]
		if tag == 'n' && from[i] == 'o' && c.hitless && i != spAudio && !p.Keyframe && c.reason == "" {
			t.Errorf("%s: the new copy starts at %d, not a keyframe", trackName(i), p.Time)
		}
		if tag == 'o' && from[i] == 'n' {
			t.Errorf("%s: the old copy again at %d after the new one", trackName(i), p.Time)
		}
		from[i] = tag
		if tag == 'o' && !fedOld[pktID(p)] {
			t.Errorf("%s: an old packet the old pull did not write: %d", trackName(i), p.Time)
		}
	}
	for i := range 3 {
		if from[i] != 'n' {
			t.Errorf("%s: the stream does not end on the new copy", trackName(i))
		}
	}
	// the FLV headers: the old copy's 3, none repeated (the new copy's
	// are the same bytes; players take a repeated sequence header as new
	// extradata); other headers of the new copy go out (readers resume
	// with them)
	switch {
	case c.newHeaders && newHeaders != 3:
		t.Errorf("%d FLV headers of the new copy read (%v), want its 3", newHeaders, hdrs)
	case !c.newHeaders && headers != 3:
		t.Errorf("%d FLV headers read (%v), want the old pull's 3", headers, hdrs)
	}
	var missing []string
	for f := range all {
		// (the readers start at the first keyframe, 1000)
		if seen[f] || int64(f[1]) > last[f[0]] || f[1] < synthStart+synthFrame*synthGOP {
			continue
		}
		// what neither copy had: before the new copy's start and after
		// the old copy's last write
		if !c.hitless && int64(f[1]) < newFrom[f[0]] && !inFed(fedOld, f) {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s %d", trackName(f[0]), f[1]))
	}
	sort.Strings(missing)
	if len(missing) > 0 && c.lossy {
		t.Logf("%d frames missing (the bound dropped them)", len(missing))
	} else if len(missing) > 0 {
		t.Errorf("%d frames missing: %v", len(missing), missing[:min(len(missing), 20)])
	}
	t.Logf("%d packets read; %s", len(got), strings.TrimSpace(lastLine(out, "pull s")))
}

func trackOf(p *unit.Packet) int { return spliceTrack(p) }

func trackName(i int) string { return [...]string{"video", "audio", "ts"}[i] }

func pktID(p *unit.Packet) string { return fmt.Sprint(p.Kind, p.Time) }

func inFed(fed map[string]bool, f [2]int) bool {
	kind := [...]unit.Kind{unit.KindVideo, unit.KindAudio, unit.KindTS}[f[0]]
	return fed[fmt.Sprint(kind, int64(f[1]))]
}

func lastLine(s, sub string) string {
	out := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = l
		}
	}
	return out
}
