package agent_test

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
)

// TestObjectActionsNotSaved: a flow's start or stop that cannot be saved
// (the data dir is read-only) is refused with 503 and the reason and
// undone: the flow stays in the state it had, and after kill -9 and a
// restart it comes back in that state, as memory and disk agreed.
func TestObjectActionsNotSaved(t *testing.T) {
	dir, data := mountSmallDataDir(t, "1m")
	a := startAgentIn(t, dir, "test-node", "", nil)
	ctx := context.Background()
	flows := a.Client().Flows()
	flowSpec := func(id string) flow.Spec {
		return flow.Spec{ID: id, Source: flow.Source{Type: flow.SrcRTMPPush, Stream: "live/" + id},
			Outputs: []flow.Output{{Name: "web", Type: flow.OutHTTPFLV}}}
	}
	state := func(p *agentProc, id string) lifecycle.State {
		v, err := p.Client().Flows().Get(ctx, id)
		if err != nil {
			t.Fatalf("GET flow %s: %v", id, err)
		}
		return v.State
	}
	active := func(s lifecycle.State) bool { return s == lifecycle.Running || s == lifecycle.Starting }
	for _, id := range []string{"on", "off"} {
		if v, err := flows.Create(ctx, flowSpec(id)); err != nil || v.ID != id || v.State != lifecycle.Standby {
			t.Fatalf("create %s: %+v, %v; want it in standby", id, v, err)
		}
	}
	if _, err := flows.Do(ctx, "on", "start"); err != nil {
		t.Fatalf("start on: %v", err)
	}

	if err := remountReadOnly(data); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	for _, c := range []struct{ id, action string }{{"on", "stop"}, {"off", "start"}} {
		_, err := flows.Do(ctx, c.id, c.action)
		if err == nil {
			t.Errorf("%s %s on a read-only data dir succeeded, want 503 saying it was not saved", c.action, c.id)
			continue
		}
		if p := problem(t, err); p.Status != 503 || !strings.Contains(p.Message, "not saved") || !strings.Contains(p.Message, "read-only file system") {
			t.Errorf("%s %s on a read-only data dir: %v, want 503 saying it was not saved", c.action, c.id, p)
		}
	}
	if s := state(a, "on"); !active(s) {
		t.Errorf("flow on is %s after a stop that was not saved, want it still running", s)
	}
	if s := state(a, "off"); s != "standby" {
		t.Errorf("flow off is %s after a start that was not saved, want standby", s)
	}
	if err := syscall.Mount("", data, "", syscall.MS_REMOUNT, ""); err != nil {
		t.Fatalf("remount read-write: %v", err)
	}

	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	b := a.restart(t)
	if s := state(b, "on"); !active(s) {
		t.Errorf("after a restart flow on is %s, want running (its stop was refused)", s)
	}
	if s := state(b, "off"); s != "standby" {
		t.Errorf("after a restart flow off is %s, want standby (its start was refused)", s)
	}
}
