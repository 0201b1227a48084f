package agent_test

import (
	"strings"
	"syscall"
	"testing"
)

// TestObjectActionsNotSaved: a flow's start or stop that cannot be saved
// (the data dir is read-only) is refused with 503 and the reason and
// undone: the flow stays in the state it had, and after kill -9 and a
// restart it comes back in that state, as memory and disk agreed.
func TestObjectActionsNotSaved(t *testing.T) {
	dir, data := mountSmallDataDir(t, "1m")
	a := startAgentIn(t, dir, "test-node", "", nil)
	flowBody := func(id string) map[string]any {
		return map[string]any{"id": id, "source": map[string]any{"type": "rtmp-push", "stream": "live/" + id},
			"outputs": []any{map[string]any{"name": "web", "type": "httpflv"}}}
	}
	state := func(p *agentProc, id string) string {
		var v map[string]any
		if st := send(t, "GET", p.api("/v1/flows/"+id), nil, &v); st != 200 {
			t.Fatalf("GET flow %s: %d %v", id, st, v)
		}
		s, _ := v["state"].(string)
		return s
	}
	active := func(s string) bool { return s == "running" || s == "starting" }
	for _, id := range []string{"on", "off"} {
		var v map[string]any
		if st := send(t, "POST", a.api("/v1/flows"), flowBody(id), &v); st != 201 {
			t.Fatalf("create %s: %d %v", id, st, v)
		}
	}
	if st := send(t, "POST", a.api("/v1/flows/on/start"), nil, nil); st != 200 {
		t.Fatalf("start on: %d", st)
	}

	if err := syscall.Mount("", data, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	for _, c := range []struct{ id, action string }{{"on", "stop"}, {"off", "start"}} {
		var v map[string]any
		st := send(t, "POST", a.api("/v1/flows/"+c.id+"/"+c.action), nil, &v)
		if msg, _ := v["message"].(string); st != 503 || !strings.Contains(msg, "not saved") || !strings.Contains(msg, "read-only file system") {
			t.Errorf("%s %s on a read-only data dir: %d %v, want 503 saying it was not saved", c.action, c.id, st, v)
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
