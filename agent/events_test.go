package agent_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/agent"
	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/internal/testmedia"
)

// TestWebhookMemberJoinLeave: two relaymesh binaries on loopback; the
// first one's webhook receiver hears member.join when the second joins
// and member.leave when it stops.
func TestWebhookMemberJoinLeave(t *testing.T) {
	sink := agent.NewHookSink(t)
	gossipA, gossipB := testmedia.FreePort(t), testmedia.FreePort(t)
	cluster := func(port int, seed string) string {
		s := fmt.Sprintf("[cluster]\nenabled = true\nbind = \"127.0.0.1:%d\"\n", port)
		if seed != "" {
			s += fmt.Sprintf("seeds = [%q]\n", seed)
		}
		return s
	}
	startNamedAgent(t, "node-a", cluster(gossipA, "")+sink.Config())
	started := time.Now()
	b := startNamedAgent(t, "node-b", cluster(gossipB, fmt.Sprintf("127.0.0.1:%d", gossipA)))

	join := sink.WaitFor(t, 15*time.Second, "member.join", map[string]any{"member": "node-b"})
	if join.Node != "node-a" || join.Data["role"] != "standalone" || join.Data["addr"] != fmt.Sprintf("127.0.0.1:%d", gossipB) {
		t.Errorf("member.join = %+v, want sent by node-a about node-b (standalone, 127.0.0.1:%d)", join, gossipB)
	}
	if got, want := dataKeys(join), "addr member region role site"; got != want {
		t.Errorf("member.join data fields %q, want %q (README, Webhooks)", got, want)
	}
	t.Logf("member.join received %s after node-b answered /healthz", join.At.Sub(started).Round(time.Millisecond))

	// node-b's own join completes (it knows node-a) before it stops: a
	// node that leaves while its join is under way has nobody to tell
	testmedia.Eventually(t, 15*time.Second, "node-b lists node-a alive", func() bool {
		v, err := b.Client().Nodes(context.Background())
		if err != nil {
			t.Fatalf("GET /v1/nodes: %v", err)
		}
		for _, n := range v.Nodes {
			if n.Name == "node-a" && n.State == "alive" {
				return true
			}
		}
		return false
	})
	stopped := time.Now()
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.waitExited(t, 20*time.Second)
	leave := sink.WaitFor(t, 15*time.Second, "member.leave", map[string]any{"member": "node-b", "state": "left"})
	if got, want := dataKeys(leave), "addr member region role site state streams"; got != want {
		t.Errorf("member.leave data fields %q, want %q (README, Webhooks)", got, want)
	}
	t.Logf("member.leave received %s after SIGTERM", leave.At.Sub(stopped).Round(time.Millisecond))
	var order []string
	for _, h := range sink.Hooks(t, "member.join", "member.leave") {
		order = append(order, h.Event+" "+fmt.Sprint(h.Data["member"]))
	}
	if want := []string{"member.join node-b", "member.leave node-b"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("member events %q, want %q", order, want)
	}
}

// dataKeys is h's data fields, sorted and joined by spaces.
func dataKeys(h agent.Hook) string {
	return strings.Join(slices.Sorted(maps.Keys(h.Data)), " ")
}

// TestWebhookFlowFailover: a flow with an RTMP primary and backup; the
// primary's ffmpeg is killed and stream.failover arrives with the flow id
// and primary->backup; the primary publishes again and the return arrives
// as backup->primary.
func TestWebhookFlowFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time publishers")
	}
	testmedia.Need(t, "ffmpeg")
	sink := agent.NewHookSink(t)
	a := startAgent(t, sink.Config())
	ctx := context.Background()
	flows := a.Client().Flows()
	spec := flow.Spec{ID: "fo",
		Source:  flow.Source{Type: flow.SrcRTMPPush, Stream: "live/primary"},
		Backup:  &flow.Source{Type: flow.SrcRTMPPush, Stream: "live/backup"},
		Outputs: []flow.Output{{Name: "players", Type: flow.OutRTMPPull}}}
	if _, err := flows.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := flows.Do(ctx, "fo", "start"); err != nil {
		t.Fatalf("start: %v", err)
	}
	src := testmedia.Source{Realtime: true, Duration: 60 * time.Second, GOP: 25}.Defaults()
	primary := testmedia.Publish(t, ctx, src, a.rtmp("live/primary"))
	testmedia.Publish(t, ctx, src, a.rtmp("live/backup"))
	waitSent := func(what string) {
		testmedia.Eventually(t, 15*time.Second, what, func() bool {
			v, err := flows.Get(ctx, "fo")
			if err != nil {
				t.Fatalf("GET flow fo: %v", err)
			}
			return v.Status != nil && v.Status.Active == "primary" && len(v.Status.Sources) == 2 && v.Status.Sources[0].Live && v.Status.Sources[1].Live
		})
	}
	waitSent("both sources live, primary active")
	before := len(sink.Hooks(t, "stream.failover"))

	killed := time.Now()
	primary.Cmd.Process.Kill()
	fo := sink.WaitFor(t, 10*time.Second, "stream.failover", map[string]any{"flow": "fo", "direction": "primary->backup"})
	t.Logf("stream.failover received %s after the primary was killed (gap_ms %v)", fo.At.Sub(killed).Round(time.Millisecond), fo.Data["gap_ms"])
	if want := map[string]any{"stream": "flow/fo", "from": "primary", "to": "backup", "reason": "silence"}; !agent.HookMatches(fo.Data, want) {
		t.Errorf("stream.failover = %v, want %v", fo.Data, want)
	}
	if got, want := dataKeys(fo), "direction flow from gap_ms reason stream to"; got != want {
		t.Errorf("stream.failover data fields %q, want %q (README, Webhooks)", got, want)
	}

	// the primary comes back: the return is sent too (its reason is
	// "primary back", or "silence" when a starved backup stalls first)
	testmedia.Publish(t, ctx, src, a.rtmp("live/primary"))
	testmedia.Eventually(t, 15*time.Second, "stream.failover backup->primary after the kill", func() bool {
		for _, h := range sink.Hooks(t, "stream.failover")[before:] {
			if agent.HookMatches(h.Data, map[string]any{"flow": "fo", "direction": "backup->primary", "from": "backup", "to": "primary"}) {
				t.Logf("return: %v", h.Data)
				return true
			}
		}
		return false
	})
}

// TestWebhookShutdownFlush: a stream live when the agent gets SIGTERM is
// ended by the drain, and its stream.unpublished reaches the receiver
// before the process exits.
func TestWebhookShutdownFlush(t *testing.T) {
	testmedia.Need(t, "ffmpeg")
	sink := agent.NewHookSink(t)
	a := startAgent(t, sink.Config())
	src := testmedia.Source{Realtime: true, Duration: time.Minute, GOP: 25}.Defaults()
	testmedia.Publish(t, context.Background(), src, a.rtmp("live/bye"))
	sink.WaitFor(t, 10*time.Second, "stream.published", map[string]any{"stream": "live/bye"})
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.waitExited(t, 20*time.Second)
	var got []string
	for _, h := range sink.Hooks(t, "stream.published", "stream.unpublished") {
		got = append(got, fmt.Sprint(h.Event, " ", h.Data["stream"], " ", h.Data["reason"]))
	}
	want := []string{"stream.published live/bye <nil>", "stream.unpublished live/bye server is shutting down"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("webhooks by exit %q, want %q", got, want)
	}
}
