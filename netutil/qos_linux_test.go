//go:build linux

package netutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/relaymesh/relaymesh/internal/nettest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// expectTree renders a plan as the lines readTree produces.
func expectTree(ops []Op) []string {
	var out []string
	for _, op := range ops {
		switch {
		case op.Object == "qdisc" && op.Kind == "htb":
			out = append(out, fmt.Sprintf("qdisc htb %s root default %#x", fmtHandle(op.Handle), op.DefaultClass))
		case op.Object == "qdisc":
			out = append(out, fmt.Sprintf("qdisc %s %s parent %s limit %d", op.Kind, fmtHandle(op.Handle), fmtHandle(op.Parent), op.Limit))
		case op.Object == "class" && op.Name == "link":
			// tc shows prio and quantum of leaf classes only.
			out = append(out, fmt.Sprintf("class %s parent %s rate %d ceil %d", fmtHandle(op.Handle), "root", op.Rate, op.Ceil))
		case op.Object == "class":
			out = append(out, fmt.Sprintf("class %s parent %s prio %d quantum %d rate %d ceil %d",
				fmtHandle(op.Handle), fmtHandle(op.Parent), op.Prio, op.Quantum, op.Rate, op.Ceil))
		case op.Object == "filter":
			proto := map[uint16]string{ethPIP: "ip", ethPIPv6: "ipv6"}[op.Protocol]
			var keys []string
			for _, k := range op.Keys {
				keys = append(keys, fmt.Sprintf("match %08x/%08x at %d", k.Val, k.Mask, k.Off))
			}
			out = append(out, fmt.Sprintf("filter %s pref %d %s flowid %s", proto, op.Pref, strings.Join(keys, " "), fmtHandle(op.FlowID)))
		}
	}
	return out
}

var (
	classRE  = regexp.MustCompile(`^class htb (\S+) (?:root|parent (\S+))(?: leaf \S+)?(?: prio (\d+))?(?: quantum (\d+))? rate (\S+) ceil (\S+)`)
	filterRE = regexp.MustCompile(`^filter parent \S+ protocol (\S+) pref (\d+) u32 .*flowid (\S+)`)
	matchRE  = regexp.MustCompile(`^\s+match (\S+) at (\d+)`)
)

// parseTCRate turns tc's "20Mbit", "1500Kbit", "64bit" into bits/s.
func parseTCRate(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"Gbit", 1e9}, {"Mbit", 1e6}, {"Kbit", 1e3}, {"bit", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			return uint64(f * u.mult), err
		}
	}
	return 0, fmt.Errorf("rate %q has no unit", s)
}

// readTree reads qdiscs, classes and filters of dev back with the tc tool
// (not with the netlink code under test), in the shape expectTree prints.
func readTree(t *testing.T, ns netns.NsHandle, dev string) []string {
	t.Helper()
	var out []string

	var qdiscs []struct {
		Kind    string `json:"kind"`
		Handle  string `json:"handle"`
		Root    bool   `json:"root"`
		Parent  string `json:"parent"`
		Options struct {
			Default string `json:"default"`
			Limit   uint32 `json:"limit"`
		} `json:"options"`
	}
	js := tcIn(t, ns, false, "-j", "qdisc", "show", "dev", dev)
	if err := json.Unmarshal([]byte(js), &qdiscs); err != nil {
		t.Fatalf("parse tc -j qdisc show: %v\n%s", err, js)
	}
	for _, q := range qdiscs {
		if q.Root {
			out = append(out, fmt.Sprintf("qdisc %s %s root default %s", q.Kind, q.Handle, q.Options.Default))
		} else {
			out = append(out, fmt.Sprintf("qdisc %s %s parent %s limit %d", q.Kind, q.Handle, q.Parent, q.Options.Limit))
		}
	}

	slices.Sort(out) // tc lists qdiscs in hash order

	var classes []string
	for _, line := range strings.Split(tcIn(t, ns, false, "-d", "class", "show", "dev", dev), "\n") {
		m := classRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rate, err1 := parseTCRate(m[5])
		ceil, err2 := parseTCRate(m[6])
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("%v in %q", err, line)
		}
		parent := m[2]
		if parent == "" {
			classes = append(classes, fmt.Sprintf("class %s parent root rate %d ceil %d", m[1], rate, ceil))
			continue
		}
		classes = append(classes, fmt.Sprintf("class %s parent %s prio %s quantum %s rate %d ceil %d", m[1], parent, m[3], m[4], rate, ceil))
	}
	slices.Sort(classes) // tc lists classes in hash order
	out = append(out, classes...)

	var cur string
	flush := func() {
		if cur != "" {
			out = append(out, cur)
			cur = ""
		}
	}
	for _, line := range strings.Split(tcIn(t, ns, false, "filter", "show", "dev", dev), "\n") {
		if strings.HasPrefix(line, "filter ") {
			flush()
			if m := filterRE.FindStringSubmatch(line); m != nil {
				flowid := strings.TrimPrefix(m[3], "*")
				cur = fmt.Sprintf("filter %s pref %s", m[1], m[2]) + "\x00" + flowid
			}
			continue
		}
		if m := matchRE.FindStringSubmatch(line); m != nil && cur != "" {
			head, flowid, _ := strings.Cut(cur, "\x00")
			cur = fmt.Sprintf("%s match %s at %s", head, m[1], m[2]) + "\x00" + flowid
		}
	}
	flush()
	for i, l := range out {
		if head, flowid, ok := strings.Cut(l, "\x00"); ok {
			out[i] = head + " flowid " + flowid
		}
	}
	return out
}

// sortedClasses puts the class lines of a plan rendering in readTree's order.
func sortedClasses(lines []string) []string {
	var qd, cl, fl []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "qdisc"):
			qd = append(qd, l)
		case strings.HasPrefix(l, "class"):
			cl = append(cl, l)
		default:
			fl = append(fl, l)
		}
	}
	slices.Sort(qd)
	slices.Sort(cl)
	return slices.Concat(qd, cl, fl)
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := " "
		if g != w {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s got:  %s\n%s want: %s\n", mark, g, mark, w)
	}
	return b.String()
}

func assertTree(t *testing.T, ns netns.NsHandle, cfg QoSConfig, caps Capabilities) {
	t.Helper()
	got := readTree(t, ns, cfg.Interface)
	want := sortedClasses(expectTree(Plan(cfg, caps)))
	if !slices.Equal(got, want) {
		t.Fatalf("tree on %s differs from the plan:\n%s", cfg.Interface, diffLines(got, want))
	}
}

func TestApplyReadBack(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	addVeth(t, ns, "rmq0", "", ns, "rmq1", "")
	tc := tcConnIn(t, ns)
	ctx := context.Background()

	cfg := enabledQoS()
	cfg.Interface = "rmq0"
	cfg.Rate = 20_000_000
	cfg.MediaPorts = []uint16{9000, 9001}

	// The first Apply probes the kernel for fq_codel.
	if err := tc.apply(ctx, cfg, nil); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	caps, known := cachedCaps()
	if !known {
		t.Fatal("Apply did not record the probed capabilities")
	}
	probe := tcIn(t, ns, true, "qdisc", "add", "dev", "rmq1", "root", "fq_codel")
	if hasFQ := !strings.Contains(probe, "unknown") && !strings.Contains(probe, "Error"); hasFQ != caps.FQCodel {
		t.Errorf("probe says FQCodel=%v but tc says %q", caps.FQCodel, probe)
	}
	t.Logf("kernel capabilities: %+v", caps)

	t.Run("tree matches plan", func(t *testing.T) {
		assertTree(t, ns, cfg, caps)
	})

	t.Run("rates are bits per second", func(t *testing.T) {
		out := tcIn(t, ns, false, "class", "show", "dev", "rmq0", "classid", "524d:10")
		if !strings.Contains(out, "rate 10Mbit ceil 20Mbit") {
			t.Errorf("media class: want rate 10Mbit ceil 20Mbit, tc shows:\n%s", out)
		}
	})

	t.Run("apply twice is idempotent", func(t *testing.T) {
		before := tcIn(t, ns, false, "filter", "show", "dev", "rmq0") // includes u32 handles
		if err := tc.apply(ctx, cfg, nil); err != nil {
			t.Fatalf("second Apply: %v", err)
		}
		assertTree(t, ns, cfg, caps)
		if after := tcIn(t, ns, false, "filter", "show", "dev", "rmq0"); after != before {
			t.Errorf("second Apply rebuilt the filters:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("changed config is reconciled", func(t *testing.T) {
		changed := cfg
		changed.Rate = 40_000_000
		changed.MediaShare = 0.6
		changed.MediaDSCP = 46
		changed.MediaPorts = []uint16{9100}
		if err := tc.apply(ctx, changed, nil); err != nil {
			t.Fatalf("Apply changed config: %v", err)
		}
		assertTree(t, ns, changed, caps)
		if err := tc.apply(ctx, cfg, nil); err != nil {
			t.Fatalf("Apply back: %v", err)
		}
		assertTree(t, ns, cfg, caps)
	})

	t.Run("pfifo fallback path", func(t *testing.T) {
		pf := Capabilities{FQCodel: false}
		if err := tc.apply(ctx, cfg, &pf); err != nil {
			t.Fatalf("Apply with pfifo leaves: %v", err)
		}
		assertTree(t, ns, cfg, pf)
		if err := tc.apply(ctx, cfg, &caps); err != nil {
			t.Fatalf("Apply with probed leaves: %v", err)
		}
		assertTree(t, ns, cfg, caps)
	})

	t.Run("class stats", func(t *testing.T) {
		st, err := tc.classStats("rmq0")
		if err != nil {
			t.Fatalf("ClassStats: %v", err)
		}
		var names []string
		for _, s := range st {
			names = append(names, s.Class)
		}
		if !slices.Equal(names, []string{"media", "control", "bulk"}) {
			t.Errorf("ClassStats classes = %v, want [media control bulk]", names)
		}
	})

	t.Run("remove keeps foreign qdiscs", func(t *testing.T) {
		tcIn(t, ns, false, "qdisc", "add", "dev", "rmq0", "ingress")
		tcIn(t, ns, false, "qdisc", "replace", "dev", "rmq1", "root", "handle", "1:", "htb", "default", "1")

		// Apply refuses to take over someone else's root qdisc.
		other := cfg
		other.Interface = "rmq1"
		if err := tc.apply(ctx, other, nil); !errors.Is(err, ErrForeignQdisc) {
			t.Errorf("Apply over a foreign root qdisc = %v, want ErrForeignQdisc", err)
		}

		for _, dev := range []string{"rmq0", "rmq1", "rmq0", "no-such-dev"} {
			if err := tc.remove(dev); err != nil {
				t.Fatalf("Remove(%s): %v", dev, err)
			}
		}
		q0 := tcIn(t, ns, false, "qdisc", "show", "dev", "rmq0")
		if strings.Contains(q0, "524d:") || strings.Contains(q0, "htb") {
			t.Errorf("Remove left the agent's tree on rmq0:\n%s", q0)
		}
		if !strings.Contains(q0, "qdisc ingress ffff:") {
			t.Errorf("Remove deleted the foreign ingress qdisc on rmq0:\n%s", q0)
		}
		if q1 := tcIn(t, ns, false, "qdisc", "show", "dev", "rmq1"); !strings.Contains(q1, "qdisc htb 1: root") {
			t.Errorf("Remove deleted the foreign root qdisc on rmq1:\n%s", q1)
		}
		st, err := tc.classStats("rmq0")
		if err != nil || len(st) != 0 {
			t.Errorf("ClassStats after Remove = %v, %v; want nothing", st, err)
		}
	})

	t.Run("disabled config removes the tree", func(t *testing.T) {
		if err := tc.apply(ctx, cfg, nil); err != nil {
			t.Fatalf("Apply: %v", err)
		}
		off := cfg
		off.Enabled = false
		if err := tc.apply(ctx, off, nil); err != nil {
			t.Fatalf("Apply disabled: %v", err)
		}
		if q := tcIn(t, ns, false, "qdisc", "show", "dev", "rmq0"); strings.Contains(q, "524d:") {
			t.Errorf("disabled Apply left the tree:\n%s", q)
		}
	})
}

func TestApplyInvalidConfig(t *testing.T) {
	cfg := enabledQoS()
	cfg.Rate = 0
	err := Apply(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "qos.rate:") {
		t.Errorf("Apply(invalid) = %v, want the qos.rate error", err)
	}
}

func TestApplyWithoutNetAdmin(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	addVeth(t, ns, "rmq0", "", ns, "rmq1", "")
	cfg := enabledQoS()
	cfg.Interface = "rmq0"

	errc := make(chan [2]error, 1)
	go func() {
		// This thread loses CAP_NET_ADMIN and is never unlocked, so it is
		// thrown away when the goroutine ends.
		runtime.LockOSThread()
		if err := nettest.DropNetAdmin(); err != nil {
			errc <- [2]error{fmt.Errorf("drop CAP_NET_ADMIN: %w", err)}
			return
		}
		tc, err := openTC(ns)
		if err != nil {
			errc <- [2]error{err}
			return
		}
		defer tc.close()
		errc <- [2]error{nil, tc.apply(context.Background(), cfg, &Capabilities{})}
	}()
	res := <-errc
	if res[0] != nil {
		t.Fatal(res[0])
	}
	if !errors.Is(res[1], ErrNoNetAdmin) {
		t.Fatalf("Apply without CAP_NET_ADMIN = %v, want ErrNoNetAdmin", res[1])
	}
	t.Logf("error a user sees: %v", res[1])
	if q := tcIn(t, ns, false, "qdisc", "show", "dev", "rmq0"); strings.Contains(q, "524d:") {
		t.Errorf("tree installed despite EPERM:\n%s", q)
	}
}
