package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaymesh/relaymesh/internal/poll"
)

// TestReloadQoSRefusedByKernel: a reload whose QoS tree the kernel
// refuses part way is refused with the kernel's reason and leaves the
// tree in force as it was, on its interface or on one it would move to
// (what the kernel took there is removed); the next valid reload applies. The agent runs
// in a network namespace of the test's own, shaping a veth. The refused
// tree has a link class of 100 Gbit/s, which the kernel takes, and a
// media class of 2^35 bit/s (2^32 bytes/s), which netlink v1.3.1 sends
// with a zero 32-bit rate, which the kernel refuses: before the fix the
// link class stayed at the refused reload's rate.
func TestReloadQoSRefusedByKernel(t *testing.T) {
	ns := newNetns(t, "rmrqos")
	for _, n := range []string{"rmrq0", "rmrq1"} {
		netnsRun(t, ns, "ip", "link", "add", n, "type", "veth", "peer", "name", n+"p")
		netnsRun(t, ns, "ip", "link", "set", n, "up")
	}

	dir := openTempDir(t)
	rt := filepath.Join(dir, "run")
	os.Mkdir(rt, 0o750)
	env := []string{"RUNTIME_DIRECTORY=" + rt}
	qosOn := func(ifname, extra string) string {
		return minimalConfig(t, dir, "[qos]\nenabled = true\ninterface = \""+ifname+"\"\n"+extra)
	}
	qos := func(extra string) string { return qosOn("rmrq0", extra) }
	cfg := qos("rate = \"100M\"\n")
	runInNetns(t, ns, cfg, env)
	classes := func() string {
		out, _ := exec.Command("ip", "netns", "exec", ns, "tc", "class", "show", "dev", "rmrq0").CombinedOutput()
		return string(out)
	}
	linkRate := func(rate string) bool {
		return strings.Contains(classes(), "class htb 524d:1 root rate "+rate+" ceil "+rate)
	}
	poll.Until(t, 15*time.Second, "the 100Mbit tree on rmrq0", func() bool { return linkRate("100Mbit") })
	before := classes()

	qos("rate = \"100G\"\nmedia_rate = \"34359738368\"\n")
	ok, errOut := reloadCmd(t, env)
	if ok {
		t.Fatalf("a reload the kernel refuses was accepted")
	}
	if !strings.Contains(errOut, "qos: class media on rmrq0") || !strings.Contains(errOut, "the tree in force is unchanged") {
		t.Errorf("reload stderr %q; want the kernel's reason for the media class and the tree unchanged", errOut)
	}
	if after := classes(); after != before {
		t.Errorf("the refused reload changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// the same refused tree on another interface: what the kernel took
	// there is removed, the tree on rmrq0 stays
	qosOn("rmrq1", "rate = \"100G\"\nmedia_rate = \"34359738368\"\n")
	if ok, errOut := reloadCmd(t, env); ok || !strings.Contains(errOut, "qos: class media on rmrq1") {
		t.Errorf("moving the refused tree to rmrq1: reload ok=%v, stderr %q; want refused with the kernel's reason", ok, errOut)
	}
	if out, _ := exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", "rmrq1").CombinedOutput(); strings.Contains(string(out), "htb 524d:") {
		t.Errorf("the refused reload left a tree on rmrq1:\n%s", out)
	}
	if after := classes(); after != before {
		t.Errorf("the refused move changed the tree on rmrq0:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	qos("rate = \"50M\"\n")
	if ok, errOut := reloadCmd(t, env); !ok {
		t.Fatalf("the valid reload after the refusal was refused: %s", errOut)
	}
	if !linkRate("50Mbit") {
		t.Errorf("the valid reload did not apply rate 50M:\n%s", classes())
	}
}
