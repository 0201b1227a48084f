package hostile

// Hostile input against the real binary. make test runs the short run
// (the defaults below); make fuzz sets RELAYMESH_HOSTILE_N for a long one.
// Every case is built from (seed, index): a failure names both, and
// RELAYMESH_HOSTILE_SEED replays the run.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/test/hostile/wire"
)

// scale reads RELAYMESH_HOSTILE_N (mutated SRT datagrams per listener
// run; the TCP counts follow it) and RELAYMESH_HOSTILE_SEED.
func scale(t *testing.T) (n int, seed uint64) {
	t.Helper()
	if testing.Short() {
		t.Skip("hostile-input runs start the binary and ffmpeg (not in -short)")
	}
	n, seed = 100_000, 1
	if v := os.Getenv("RELAYMESH_HOSTILE_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			t.Fatalf("RELAYMESH_HOSTILE_N=%q: want a number of datagrams >= 1000", v)
		}
	}
	if v := os.Getenv("RELAYMESH_HOSTILE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("RELAYMESH_HOSTILE_SEED=%q: %v", v, err)
		}
	}
	return n, seed
}

// TestCrashDatagram sends issue 10's 65-byte datagram (it crashed gosrt's
// handshake parser before any check) to the SRT and the backbone
// listeners; the agent must keep answering handshakes, the canary must
// keep playing.
func TestCrashDatagram(t *testing.T) {
	scale(t)
	if got := len(wire.Crash65()); got != 65 {
		t.Fatalf("the crash datagram is %d bytes, want 65", got)
	}
	a := StartAgent(t)
	c := StartCanary(t, a)
	for _, l := range []string{"srt", "backbone"} {
		ok := t.Run(l, func(t *testing.T) {
			f := &SRTFuzz{Target: a.Addr(l)}
			if err := f.Open(); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			frames := c.Frames()
			for range 3 {
				f.send(0, "crash datagram", wire.Crash65())
			}
			// a handshake answered after the datagrams shows the listener
			// read past them
			testmedia.Eventually(t, 15*time.Second, "an induction answer after the datagram", func() bool {
				a.MustBeAlive(t, "after the 65-byte datagram on "+l)
				f.send(1, "induction", wire.Induction(0x1234, netip.MustParseAddr("127.0.0.1")))
				return f.Peer.Cookie.Load() != 0
			})
			a.MustBeAlive(t, "after the 65-byte datagram on "+l)
			c.WaitAdvance(t, frames, "after the 65-byte datagram on "+l)
		})
		if !ok {
			return
		}
	}
	CheckPlays(t, a)
}

// TestSRTListenersFuzz sends N mutated datagrams to srt.listen and N/4
// to cluster.backbone_listen while the canary plays; the agent survives,
// the canary advances after every 10 000, a new player plays it at the
// end, and the same datagrams once more leave RSS where the first run
// left it (libsrt's memory is reused, not leaked: see Plateau).
func TestSRTListenersFuzz(t *testing.T) {
	n, seed := scale(t)
	a := StartAgent(t)
	c := StartCanary(t, a)
	rss := StartRSS(t, a)
	runs := []struct {
		listener string
		n        int
		sids     []string
	}{
		{"srt", n, []string{"read:live/canary", "publish:hostile/fuzz", "#!::r=hostile/f2,m=publish", "read:none/such", "bogus:x"}},
		{"backbone", n / 4, []string{"read:live/canary", "publish:live/canary", "#!::r=live/canary,m=request"}},
	}
	for _, run := range runs {
		ok := t.Run(run.listener, func(t *testing.T) {
			f := &SRTFuzz{Seed: seed, Target: a.Addr(run.listener), StreamID: run.sids, Rate: 6000}
			if err := f.Open(); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if run.listener == "srt" && !f.Handshake("read:live/canary", 10*time.Second) {
				t.Fatal("the fuzzer's own handshake was not accepted: the harness does not reach live connections")
			}
			frames := c.Frames()
			const step = 10_000
			for from := 0; from < run.n; from += step {
				to := min(from+step, run.n)
				if got := f.Run(from, to, a.Alive); got < to || !a.Alive() {
					a.Exited(5 * time.Second) // its whole output, the panic included
					t.Fatalf("the agent died during datagrams %d..%d of seed %d on %s (%v):\n%s\nlast datagrams sent:\n%s",
						from, got, seed, run.listener, a.ExitErr(), a.Panic(), f.Dump())
				}
				frames = c.WaitAdvance(t, frames, fmt.Sprintf("after datagram %d on %s", to, run.listener))
			}
			t.Logf("%s: %d datagrams (seed %d); answers %d, handshake answers %d, accepted %d, rejected %d",
				run.listener, run.n, seed, f.Peer.Answers.Load(), f.Peer.Handshake.Load(), f.Peer.Accepted.Load(), f.Peer.Rejected.Load())
			if f.Peer.Handshake.Load() == 0 {
				t.Errorf("%s never answered a handshake: the datagrams did not reach the SRT layer", run.listener)
			}
		})
		if !ok {
			return
		}
	}
	a.MustBeAlive(t, "after the SRT fuzz")
	CheckPlays(t, a)
	rss.Plateau(t, func() {
		f := &SRTFuzz{Seed: seed, Target: a.Addr("srt"), StreamID: runs[0].sids, Rate: 6000}
		if err := f.Open(); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if got := f.Run(0, runs[0].n, a.Alive); got < runs[0].n || !a.Alive() {
			t.Fatalf("the agent died in the second run of seed %d (%v):\n%s", seed, a.ExitErr(), a.Panic())
		}
		a.MustBeAlive(t, "after the second SRT fuzz")
	})
}

// TestTCPFuzz runs mutated RTMP sessions (valid handshakes then mutated
// chunk streams and AMF commands, garbage handshakes, huge headers) and
// mutated HTTP-FLV requests while the canary plays.
func TestTCPFuzz(t *testing.T) {
	n, seed := scale(t)
	a := StartAgent(t)
	c := StartCanary(t, a)
	rss := StartRSS(t, a)
	runs := []struct {
		listener string
		n        int
		gen      func(*TCPFuzz)
	}{
		{"rtmp", n / 40, func(f *TCPFuzz) { f.Case = RTMPCase }},
		{"http", n / 50, func(f *TCPFuzz) { f.Case = FLVCase }},
	}
	for _, run := range runs {
		ok := t.Run(run.listener, func(t *testing.T) {
			f := &TCPFuzz{Seed: seed, Target: a.Addr(run.listener), Workers: 8}
			run.gen(f)
			frames := c.Frames()
			const step = 500
			for from := 0; from < run.n; from += step {
				to := min(from+step, run.n)
				f.Run(from, to, a.Alive)
				if !a.Alive() {
					a.Exited(5 * time.Second) // its whole output, the panic included
					t.Fatalf("the agent died during %s sessions %d..%d of seed %d (%v):\n%s\nlast sessions:\n%s",
						run.listener, from, to, seed, a.ExitErr(), a.Panic(), f.Last())
				}
				frames = c.WaitAdvance(t, frames, fmt.Sprintf("after %s session %d", run.listener, to))
			}
			t.Logf("%s: %d sessions (seed %d), %d answered", run.listener, f.Done.Load(), seed, f.Answered.Load())
			if f.Answered.Load() == 0 {
				t.Errorf("%s never answered: the sessions did not reach the server", run.listener)
			}
		})
		if !ok {
			return
		}
	}
	a.MustBeAlive(t, "after the TCP fuzz")
	CheckPlays(t, a)
	rss.Settle(t)
}

// flowView is what the test reads of GET /v1/flows/ID.
type flowView struct {
	State  string `json:"state"`
	Reason string `json:"reason"`
	Status *struct {
		Sources []struct {
			Pull *struct {
				LastError string `json:"last_error"`
			} `json:"pull"`
		} `json:"sources"`
	} `json:"status"`
}

func (v flowView) pullError() string {
	if v.Status == nil || len(v.Status.Sources) == 0 || v.Status.Sources[0].Pull == nil {
		return ""
	}
	return v.Status.Sources[0].Pull.LastError
}

type relayView struct {
	Pushes map[string]struct {
		LastError string `json:"last_error"`
	} `json:"pushes"`
}

// TestHostileSRTServer points the agent's SRT callers at hostile servers:
// one flow with an srt-caller source per server mode, and relays with SRT
// destinations on some of them. The agent stays up, the canary plays,
// every flow and relay shows its error, and a restart with the flows
// saved as running comes up and calls the servers again without dying.
func TestHostileSRTServer(t *testing.T) {
	_, seed := scale(t)
	a := StartAgent(t)
	c := StartCanary(t, a)
	var servers []*SRTServer
	flowID := func(i int) string { return fmt.Sprintf("hostile%d", i) }
	for i, m := range ServerModes {
		s, err := NewSRTServer(m, seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		servers = append(servers, s)
		f := map[string]any{"id": flowID(i), "description": m.Name,
			"source":  map[string]any{"type": "srt-caller", "url": "srt://" + s.Addr() + "?streamid=read:live/x"},
			"outputs": []any{map[string]any{"name": "play", "type": "rtmp-pull"}}}
		if st := a.Call(t, "POST", "/v1/flows", f, nil); st != 201 {
			t.Fatalf("create flow %d: status %d", i, st)
		}
		if st := a.Call(t, "POST", "/v1/flows/"+flowID(i)+"/start", nil, nil); st != 200 {
			t.Fatalf("start flow %d: status %d", i, st)
		}
	}
	relays := []int{0, 4, 9, len(ServerModes) - 1}
	now := time.Now().UTC()
	for _, i := range relays {
		r := map[string]any{"id": fmt.Sprintf("hostile-relay%d", i), "pattern": CanaryKey,
			"url":        "srt://" + servers[i].Addr() + "?streamid=publish:live/x",
			"start_time": now.Add(-time.Minute).Format(time.RFC3339), "end_time": now.Add(time.Hour).Format(time.RFC3339)}
		if st := a.Call(t, "POST", "/v1/relays", r, nil); st != 201 {
			t.Fatalf("create relay %d: status %d", i, st)
		}
	}
	called := func(what string, base []int64) {
		t.Helper()
		testmedia.Eventually(t, 60*time.Second, what, func() bool {
			a.MustBeAlive(t, "with its SRT callers on hostile servers ("+what+")")
			for i, s := range servers {
				if s.Inductions.Load() < base[i]+2 {
					return false
				}
			}
			return true
		})
	}
	zero := make([]int64, len(servers))
	called("every hostile server called twice", zero)
	c.WaitAdvance(t, c.Frames(), "with the SRT callers on hostile servers")
	for i, m := range ServerModes {
		var v flowView
		testmedia.Eventually(t, 30*time.Second, "flow "+flowID(i)+" ("+m.Name+") shows its error", func() bool {
			a.MustBeAlive(t, "with its SRT callers on hostile servers")
			v = flowView{}
			a.Call(t, "GET", "/v1/flows/"+flowID(i), nil, &v)
			return v.pullError() != "" || v.Reason != ""
		})
		t.Logf("%s: %d inductions, %d conclusions; flow %s: %s %s", m.Name, servers[i].Inductions.Load(),
			servers[i].Conclusions.Load(), v.State, v.Reason, v.pullError())
	}
	for _, i := range relays {
		id := fmt.Sprintf("hostile-relay%d", i)
		testmedia.Eventually(t, 30*time.Second, "relay "+id+" shows its error", func() bool {
			var v relayView
			a.Call(t, "GET", "/v1/relays/"+id, nil, &v)
			return v.Pushes[CanaryKey].LastError != ""
		})
	}
	CheckPlays(t, a)

	// restart: the flows were saved as running and call the servers again
	a.Stop()
	base := make([]int64, len(servers))
	for i, s := range servers {
		base[i] = s.Inductions.Load()
	}
	a.Start(t)
	called("every hostile server called twice after the restart", base)
	for i := range ServerModes {
		var v flowView
		a.Call(t, "GET", "/v1/flows/"+flowID(i), nil, &v)
		if v.State != "running" && v.State != "starting" {
			t.Errorf("flow %s is %s after the restart (%s), want running: it was saved running", flowID(i), v.State, v.Reason)
		}
	}
	a.MustBeAlive(t, "after the restart")
}

// TestInterruptedStart: a flow saved as running whose start the agent
// did not survive (kill -9 while the restored flow was calling its SRT
// source) comes back stopped, in error with the reason, stays stopped
// across the next restart and starts again on request; a clean restart
// brings a running flow back running.
func TestInterruptedStart(t *testing.T) {
	scale(t)
	s, err := NewSRTServer(Silent, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	a := StartAgent(t)
	f := map[string]any{"id": "victim", "source": map[string]any{"type": "srt-caller", "url": "srt://" + s.Addr() + "?streamid=read:live/x"},
		"outputs": []any{map[string]any{"name": "play", "type": "rtmp-pull"}}}
	if st := a.Call(t, "POST", "/v1/flows", f, nil); st != 201 {
		t.Fatalf("create: status %d", st)
	}
	if st := a.Call(t, "POST", "/v1/flows/victim/start", nil, nil); st != 200 {
		t.Fatalf("start: status %d", st)
	}
	state := func() flowView {
		var v flowView
		a.Call(t, "GET", "/v1/flows/victim", nil, &v)
		return v
	}
	calledSince := func(what string, n int64) {
		t.Helper()
		testmedia.Eventually(t, 20*time.Second, what, func() bool { return s.Inductions.Load() > n })
	}
	calledSince("the flow calls its source", 0)

	a.Stop() // clean: the flow comes back running
	n := s.Inductions.Load()
	a.Start(t)
	if v := state(); v.State != "running" && v.State != "starting" {
		t.Fatalf("after a clean restart the flow is %s (%s), want running", v.State, v.Reason)
	}
	calledSince("the restored flow calls its source", n)

	a.Kill() // dies while the restored flow starts
	a.Start(t)
	v := state()
	if v.State != "error" || v.Reason != "agent stopped while starting this; start it again" {
		t.Fatalf("after a crash while starting, the flow is %s (%q), want error with the reason", v.State, v.Reason)
	}
	a.Stop() // the error is on disk too: the next restart does not start it either
	a.Start(t)
	if v := state(); v.State != "error" && v.State != "standby" {
		t.Fatalf("after a crash while starting and a clean restart the flow is %s (%s), want stopped", v.State, v.Reason)
	}
	n = s.Inductions.Load()
	if st := a.Call(t, "POST", "/v1/flows/victim/start", nil, nil); st != 200 {
		t.Fatalf("start again: status %d", st)
	}
	calledSince("the flow started again calls its source", n)
}

// TestSRTPacketFilterCaller: a caller that asks for libsrt's built-in FEC
// filter (SRT_CMD_FILTER "fec,cols:10,rows:5", a configuration any user
// may send) on a publish connection and then sends data packets with
// wild sequence numbers. libsrt 1.5.1 (Debian 12) applies a caller's
// filter when the listener sets none, and its FEC receiver corrupts the
// heap on such input (glibc abort in FECFilterBuiltin::ExtendColumns
// under CRcvQueue::worker). The listener's socket filter drops such a
// conclusion before libsrt reads it: each round sends one, then a plain
// conclusion from the same socket, whose answer comes only after the
// kernel passed or dropped the first; the data then reaches a connection
// without FEC, and the agent survives. Had the filter let the first
// through, libsrt would have answered it (the second is a repeat) and the
// data would hit its FEC receiver. The FEC request goes out as a
// conclusion, agreement, waveahand or done in turn: libsrt 1.5.1's
// listener reads the extensions of all four.
func TestSRTPacketFilterCaller(t *testing.T) {
	_, seed := scale(t)
	a := StartAgent(t)
	c := StartCanary(t, a)
	frames := c.Frames()
	lo := netip.MustParseAddr("127.0.0.1")
	accepted := 0
	for round := range 30 {
		f := &SRTFuzz{Target: a.Addr("srt")}
		if err := f.Open(); err != nil {
			t.Fatal(err)
		}
		f.ours = uint32(0x1000 + round)
		testmedia.Eventually(t, 10*time.Second, "an induction answer", func() bool {
			a.MustBeAlive(t, fmt.Sprintf("in round %d of FEC callers (seed %d)", round, seed))
			f.send(0, "induction", wire.Induction(f.ours, lo))
			return f.Peer.Cookie.Load() != 0
		})
		// libsrt takes any request type but induction for a conclusion
		fec := wire.Conclusion(f.ours, f.Peer.Cookie.Load(), lo, "publish:hostile/fec",
			wire.E(wire.ExtFilter, wire.String4("fec,cols:10,rows:5")))
		reqTypes := []uint32{wire.HSConclusion, wire.HSAgreement, wire.HSWaveahand, wire.HSDone}
		binary.BigEndian.PutUint32(fec[wire.HeaderLen+20:], reqTypes[round%len(reqTypes)])
		f.send(0, "conclusion with a FEC filter", fec)
		f.send(0, "plain conclusion", wire.Conclusion(f.ours, f.Peer.Cookie.Load(), lo, "publish:hostile/plain"))
		// the answer (accepted or refused) comes before the data
		testmedia.Eventually(t, 10*time.Second, "the conclusion answered", func() bool {
			return f.Peer.Accepted.Load()+f.Peer.Rejected.Load() > 0
		})
		if f.Peer.Accepted.Load() > 0 {
			accepted++
			sock := f.Peer.Socket.Load()
			for i := range 3000 {
				r := wire.NewRand(seed, uint64(round)<<32|uint64(i))
				h := wire.DataHeader{Seq: r.Uint32(), Position: 3, MsgNo: r.Uint32(), Timestamp: r.Uint32(), DstSocket: sock}
				if r.IntN(2) == 0 {
					h.Seq = 0x1234567 + uint32(r.IntN(2000)) // near the caller's initial sequence
				}
				if r.IntN(4) == 0 {
					h.MsgNo = 0 // FEC control packets carry message number 0
				}
				f.send(i, "data", wire.Data(h, wire.RandBytes(r, 1+r.IntN(1400))))
				if i%200 == 0 {
					time.Sleep(2 * time.Millisecond) // paced, not a flood
				}
			}
		}
		f.Close()
		if !a.Alive() {
			a.Exited(5 * time.Second) // its whole output, the panic included
			t.Fatalf("the agent died in round %d of FEC callers (seed %d, %d filters accepted) (%v):\n%s", round, seed, accepted, a.ExitErr(), a.Panic())
		}
	}
	if strings.Contains(a.Logs.String(), `"stream":"hostile/fec"`) {
		t.Errorf("a connection asking for FEC was accepted (%d of 30 rounds answered)", accepted)
	}
	// the accept-time close behind the socket filter
	if strings.Contains(a.Logs.String(), "negotiated a packet filter") {
		t.Errorf("a handshake asking for FEC got past the socket filter (closed when accepted)")
	}
	c.WaitAdvance(t, frames, "after the FEC callers")
	a.MustBeAlive(t, "after the FEC callers")
}
