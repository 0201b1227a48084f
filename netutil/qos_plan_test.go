package netutil

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateGolden regenerates testdata/qos/*.golden: go test ./netutil -run Plan -update
var updateGolden = flag.Bool("update", false, "rewrite the QoS golden files in testdata/qos")

func enabledQoS() QoSConfig {
	c := DefaultQoSConfig()
	c.Enabled = true
	c.Interface = "eth0"
	c.Rate = 100_000_000
	c.MediaPorts = []uint16{9000}
	c.ControlPorts = []uint16{7946}
	return c
}

func TestPlanGolden(t *testing.T) {
	custom := enabledQoS()
	custom.Interface = "bb0"
	custom.Rate = 1_000_000_000
	custom.MediaRate = 600_000_000
	custom.ControlRate = 20_000_000
	custom.MediaDSCP = 46
	custom.MediaPorts = []uint16{9000, 9001}
	custom.ControlPorts = []uint16{7946, 8080}

	noPorts := enabledQoS()
	noPorts.MediaPorts, noPorts.ControlPorts = nil, nil

	tests := []struct {
		name string
		cfg  QoSConfig
		caps Capabilities
	}{
		{"defaults_fq_codel", enabledQoS(), Capabilities{FQCodel: true}},
		{"defaults_pfifo", enabledQoS(), Capabilities{FQCodel: false}},
		{"custom_ports_fq_codel", custom, Capabilities{FQCodel: true}},
		{"custom_ports_pfifo", custom, Capabilities{FQCodel: false}},
		{"dscp_only", noPorts, Capabilities{FQCodel: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatalf("config of the case is invalid: %v", err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# config: %+v\n# caps: %+v\n", tt.cfg, tt.caps)
			for _, op := range Plan(tt.cfg, tt.caps) {
				b.WriteString(op.String())
				b.WriteByte('\n')
			}
			path := filepath.Join("testdata", "qos", tt.name+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("plan differs from %s (run with -update if the change is intended)\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

func TestPlanInvariants(t *testing.T) {
	tests := []struct {
		name string
		cfg  QoSConfig
		caps Capabilities
	}{
		{"fq_codel", enabledQoS(), Capabilities{FQCodel: true}},
		{"pfifo", enabledQoS(), Capabilities{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPlanInvariants(t, tt.cfg, Plan(tt.cfg, tt.caps))
		})
	}
	t.Run("disabled plans nothing", func(t *testing.T) {
		c := enabledQoS()
		c.Enabled = false
		if ops := Plan(c, Capabilities{}); len(ops) != 0 {
			t.Errorf("Plan of a disabled config = %d ops, want 0", len(ops))
		}
	})
}

// checkPlanInvariants asserts what must hold for every valid config: the
// leaf guarantees add up to the link rate, ceilings are the link rate,
// media comes first, and every filter targets one of the leaf classes.
func checkPlanInvariants(t *testing.T, cfg QoSConfig, ops []Op) {
	t.Helper()
	var sum uint64
	classes := map[string]Op{}
	leaves := 0
	for _, op := range ops {
		if op.Dev != cfg.Interface {
			t.Errorf("%s: dev %q, want %q", op, op.Dev, cfg.Interface)
		}
		switch op.Object {
		case "class":
			classes[op.Name] = op
			if op.Ceil != cfg.Rate {
				t.Errorf("%s: ceil %d, want the link rate %d", op, op.Ceil, cfg.Rate)
			}
			if op.Rate == 0 || op.Rate > op.Ceil {
				t.Errorf("%s: rate %d not in (0, ceil]", op, op.Rate)
			}
			if op.Name != "link" {
				sum += op.Rate
			}
		case "qdisc":
			if op.Name != "root" {
				leaves++
			}
		case "filter":
			if n := classNameByID(op.FlowID); n != "media" && n != "control" {
				t.Errorf("%s: flowid %s is not media or control", op, fmtHandle(op.FlowID))
			}
		}
	}
	if sum != cfg.Rate {
		t.Errorf("media+control+bulk rates = %d, want the link rate %d", sum, cfg.Rate)
	}
	if leaves != 3 {
		t.Errorf("%d leaf qdiscs, want 3", leaves)
	}
	if classes["media"].Prio != 0 || classes["control"].Prio != 1 || classes["bulk"].Prio != 2 {
		t.Errorf("prios media/control/bulk = %d/%d/%d, want 0/1/2",
			classes["media"].Prio, classes["control"].Prio, classes["bulk"].Prio)
	}
}

func TestQoSValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*QoSConfig)
		wants []string // substrings of the error; none means valid
	}{
		{"valid", func(*QoSConfig) {}, nil},
		{"disabled skips checks", func(c *QoSConfig) { *c = QoSConfig{} }, nil},
		{"missing interface", func(c *QoSConfig) { c.Interface = "" }, []string{"qos.interface: missing"}},
		{"bad interface", func(c *QoSConfig) { c.Interface = "eth0/../x" }, []string{`qos.interface: "eth0/../x" is not a valid interface name`}},
		{"long interface", func(c *QoSConfig) { c.Interface = "abcdefghijklmnop" }, []string{"qos.interface:"}},
		{"zero rate", func(c *QoSConfig) { c.Rate = 0 }, []string{"qos.rate: 0 bit/s is below the minimum"}},
		{"rate too big", func(c *QoSConfig) { c.Rate = 1 << 60 }, []string{"qos.rate: 1152921504606846976 bit/s is above the maximum"}},
		{"share too big", func(c *QoSConfig) { c.MediaShare = 1 }, []string{"qos.media_share: 1 is not a fraction"}},
		{"share zero", func(c *QoSConfig) { c.MediaShare = 0 }, []string{"qos.media_share: 0 is not a fraction"}},
		{"media rate overrides share", func(c *QoSConfig) { c.MediaShare = 0; c.MediaRate = 10_000_000 }, nil},
		{"media rate too big", func(c *QoSConfig) { c.MediaRate = 100_000_000 }, []string{"qos.media_rate: 100000000 bit/s is not below qos.rate"}},
		{"control rate too big", func(c *QoSConfig) { c.ControlRate = 200_000_000 }, []string{"qos.control_rate: 200000000 bit/s is not below qos.rate"}},
		{"nothing left for bulk", func(c *QoSConfig) { c.MediaShare = 0.96 }, []string{"qos.media_share: media (96000000 bit/s) plus control (5000000 bit/s) leave 0 bit/s for bulk"}},
		{"dscp zero", func(c *QoSConfig) { c.MediaDSCP = 0 }, []string{"qos.media_dscp: 0 is not a DSCP"}},
		{"dscp too big", func(c *QoSConfig) { c.MediaDSCP = 64 }, []string{"qos.media_dscp: 64 is not a DSCP"}},
		{"port zero", func(c *QoSConfig) { c.MediaPorts = []uint16{9000, 0} }, []string{"qos.media_ports[1]: port 0 is not a port"}},
		{"port twice", func(c *QoSConfig) { c.ControlPorts = []uint16{9000} }, []string{"qos.control_ports[0]: port 9000 is already listed as qos.media_ports[0]"}},
		{"several problems at once", func(c *QoSConfig) { c.Interface = ""; c.Rate = 5; c.MediaDSCP = -1 },
			[]string{"qos.interface:", "qos.rate:", "qos.media_dscp:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := enabledQoS()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// FuzzQoSPlan checks that Validate never panics and that Plan of any config
// Validate accepts keeps the tree's invariants.
func FuzzQoSPlan(f *testing.F) {
	f.Add("eth0", uint64(100_000_000), 0.5, uint64(0), uint64(0), 34, uint16(9000), uint16(7946))
	f.Add("bb0", uint64(1_000_000), 0.01, uint64(0), uint64(0), 46, uint16(1), uint16(65535))
	f.Add("x", uint64(1<<62), 0.0, uint64(1<<40), uint64(1<<33), 63, uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, ifname string, rate uint64, share float64, mediaRate, controlRate uint64, dscp int, mport, cport uint16) {
		c := QoSConfig{Enabled: true, Interface: ifname, Rate: rate, MediaShare: share, MediaRate: mediaRate,
			ControlRate: controlRate, MediaDSCP: dscp, MediaPorts: []uint16{mport}, ControlPorts: []uint16{cport}}
		if c.Validate() != nil {
			return
		}
		checkPlanInvariants(t, c, Plan(c, Capabilities{FQCodel: rate%2 == 0}))
	})
}
