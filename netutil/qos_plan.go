package netutil

import (
	"fmt"
	"strings"
)

// Handles of the tc objects the agent owns. The major 0x524d ("RM") marks
// the root qdisc as relaymesh's; Remove deletes nothing else.
const (
	QoSHandleMajor uint32 = 0x524d

	rootHandle     = QoSHandleMajor << 16      // 524d:
	linkClassID    = QoSHandleMajor<<16 | 0x1  // 524d:1
	mediaClassID   = QoSHandleMajor<<16 | 0x10 // 524d:10
	controlClassID = QoSHandleMajor<<16 | 0x20 // 524d:20
	bulkClassID    = QoSHandleMajor<<16 | 0x30 // 524d:30
	tcHandleRoot   = 0xffffffff                // TC_H_ROOT
	ethPIP         = 0x0800                    // ETH_P_IP
	ethPIPv6       = 0x86dd                    // ETH_P_IPV6
	filterPrefV4   = 1                         // u32 filter priority for IPv4
	filterPrefV6   = 2                         // u32 filter priority for IPv6
	pfifoLimit     = 1000                      // packets
	fqCodelLimit   = 10240                     // packets (the kernel default)
	htbR2Q         = 10                        // rate to quantum divisor
	protoTCP       = 6
	protoUDP       = 17
)

// qosClass describes one leaf class of the tree.
type qosClass struct {
	name    string
	classID uint32
	leaf    uint32 // handle of its leaf qdisc
	prio    uint32
}

var qosClasses = []qosClass{
	{"media", mediaClassID, (QoSHandleMajor + 1) << 16, 0},
	{"control", controlClassID, (QoSHandleMajor + 2) << 16, 1},
	{"bulk", bulkClassID, (QoSHandleMajor + 3) << 16, 2},
}

// classNameByID maps a class id of the tree to its name.
func classNameByID(id uint32) string {
	if id == linkClassID {
		return "link"
	}
	for _, c := range qosClasses {
		if c.classID == id {
			return c.name
		}
	}
	return ""
}

// U32Key is one 32-bit match of a u32 filter: the word at byte offset Off
// of the network header, masked with Mask, must equal Val (host order).
type U32Key struct {
	Val  uint32
	Mask uint32
	Off  int32
}

// Op is one traffic-control operation of a plan. Every operation has
// replace semantics: it creates the object or makes an existing one match.
// Rates are in bits/s.
type Op struct {
	Object string // "qdisc", "class" or "filter"
	Name   string // what it is for: "root", "link", "media", "media leaf", ...
	Dev    string // interface name
	Parent uint32 // parent handle; 0xffffffff is the root
	Handle uint32 // qdisc handle, class id; 0 for filters
	Kind   string // "htb", "fq_codel", "pfifo", "u32"

	DefaultClass uint32 // htb qdisc: minor of the default class
	R2Q          uint32 // htb qdisc: rate to quantum divisor

	Rate    uint64 // htb class: guaranteed rate, bits/s
	Ceil    uint64 // htb class: maximum rate, bits/s
	Prio    uint32 // htb class: priority when borrowing, 0 first
	Quantum uint32 // htb class: bytes served per round

	Limit uint32 // leaf qdisc: queue limit in packets
	ECN   bool   // fq_codel: mark ECN instead of dropping

	Protocol uint16   // filter: ethertype (0x0800 ip, 0x86dd ipv6)
	Pref     uint16   // filter: priority of the u32 instance
	Keys     []U32Key // filter: all must match
	FlowID   uint32   // filter: target class
	Match    string   // filter: the match in words
}

// String prints the op like a tc command line, with the name as a comment.
func (o Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s replace dev %s ", o.Object, o.Dev)
	switch o.Object {
	case "qdisc":
		if o.Parent == tcHandleRoot {
			b.WriteString("root ")
		} else {
			fmt.Fprintf(&b, "parent %s ", fmtHandle(o.Parent))
		}
		fmt.Fprintf(&b, "handle %s %s", fmtHandle(o.Handle), o.Kind)
		switch o.Kind {
		case "htb":
			fmt.Fprintf(&b, " default %#x r2q %d", o.DefaultClass, o.R2Q)
		case "fq_codel":
			fmt.Fprintf(&b, " limit %d", o.Limit)
			if o.ECN {
				b.WriteString(" ecn")
			}
		case "pfifo":
			fmt.Fprintf(&b, " limit %d", o.Limit)
		}
	case "class":
		fmt.Fprintf(&b, "parent %s classid %s %s rate %dbit ceil %dbit prio %d quantum %d",
			fmtHandle(o.Parent), fmtHandle(o.Handle), o.Kind, o.Rate, o.Ceil, o.Prio, o.Quantum)
	case "filter":
		proto := fmt.Sprintf("%#04x", o.Protocol)
		switch o.Protocol {
		case ethPIP:
			proto = "ip"
		case ethPIPv6:
			proto = "ipv6"
		}
		fmt.Fprintf(&b, "parent %s protocol %s pref %d %s", fmtHandle(o.Parent), proto, o.Pref, o.Kind)
		for _, k := range o.Keys {
			fmt.Fprintf(&b, " match %08x/%08x at %d", k.Val, k.Mask, k.Off)
		}
		fmt.Fprintf(&b, " flowid %s", fmtHandle(o.FlowID))
	}
	fmt.Fprintf(&b, "  # %s", o.Name)
	if o.Match != "" {
		fmt.Fprintf(&b, ": %s", o.Match)
	}
	return b.String()
}

// fmtHandle prints a tc handle as tc does: "524d:" or "524d:10".
func fmtHandle(h uint32) string {
	if h&0xffff == 0 {
		return fmt.Sprintf("%x:", h>>16)
	}
	return fmt.Sprintf("%x:%x", h>>16, h&0xffff)
}

// htbQuantum is the quantum the kernel would derive from r2q, clamped to the
// range it accepts without warnings.
func htbQuantum(rateBits uint64) uint32 {
	q := rateBits / 8 / htbR2Q
	return uint32(min(max(q, 1600), 200_000))
}

// Plan returns the ordered tc operations that make cfg.Interface shaped as
// cfg says: root htb qdisc, link class, media/control/bulk classes with
// their leaf qdiscs, then the u32 filters (IPv4 first, then IPv6). Plan
// does no I/O; cfg should have passed Validate. A disabled config plans
// nothing.
func Plan(cfg QoSConfig, caps Capabilities) []Op {
	if !cfg.Enabled {
		return nil
	}
	dev := cfg.Interface
	media, control, bulk := cfg.classRates()
	rates := map[string]uint64{"media": media, "control": control, "bulk": bulk}

	ops := []Op{
		{Object: "qdisc", Name: "root", Dev: dev, Parent: tcHandleRoot, Handle: rootHandle, Kind: "htb",
			DefaultClass: bulkClassID & 0xffff, R2Q: htbR2Q},
		{Object: "class", Name: "link", Dev: dev, Parent: rootHandle, Handle: linkClassID, Kind: "htb",
			Rate: cfg.Rate, Ceil: cfg.Rate, Prio: 0, Quantum: htbQuantum(cfg.Rate)},
	}
	for _, c := range qosClasses {
		r := rates[c.name]
		ops = append(ops, Op{Object: "class", Name: c.name, Dev: dev, Parent: linkClassID, Handle: c.classID,
			Kind: "htb", Rate: r, Ceil: cfg.Rate, Prio: c.prio, Quantum: htbQuantum(r)})
	}
	for _, c := range qosClasses {
		leaf := Op{Object: "qdisc", Name: c.name + " leaf", Dev: dev, Parent: c.classID, Handle: c.leaf,
			Kind: "pfifo", Limit: pfifoLimit}
		if caps.FQCodel {
			leaf.Kind, leaf.Limit, leaf.ECN = "fq_codel", fqCodelLimit, true
		}
		ops = append(ops, leaf)
	}
	ops = append(ops, planFilters(cfg, ethPIP)...)
	ops = append(ops, planFilters(cfg, ethPIPv6)...)
	return ops
}

// planFilters returns the u32 filters of one address family.
func planFilters(cfg QoSConfig, proto uint16) []Op {
	var (
		pref   uint16
		family string
		dscp   U32Key
		l4     func(ipProto uint8) U32Key // matches the L4 protocol (and IPv4 IHL 5)
		portOf int32                      // offset of the L4 ports word
		ihl5   = U32Key{Val: 0x05000000, Mask: 0x0f000000, Off: 0}
	)
	ds := uint32(cfg.MediaDSCP)
	switch proto {
	case ethPIP:
		pref, family, portOf = filterPrefV4, "ip", 20
		dscp = U32Key{Val: ds << 18, Mask: 0x00fc0000, Off: 0} // TOS byte, mask 0xfc
		l4 = func(p uint8) U32Key { return U32Key{Val: uint32(p) << 16, Mask: 0x00ff0000, Off: 8} }
	default:
		pref, family, portOf = filterPrefV6, "ipv6", 40
		dscp = U32Key{Val: ds << 22, Mask: 0x0fc00000, Off: 0} // traffic class, mask 0xfc
		l4 = func(p uint8) U32Key { return U32Key{Val: uint32(p) << 8, Mask: 0x0000ff00, Off: 4} }
	}
	base := Op{Object: "filter", Dev: cfg.Interface, Parent: rootHandle, Kind: "u32", Protocol: proto, Pref: pref}

	var ops []Op
	o := base
	o.Name, o.FlowID = "media", mediaClassID
	o.Keys = []U32Key{dscp}
	o.Match = fmt.Sprintf("%s dscp %d", family, cfg.MediaDSCP)
	ops = append(ops, o)

	portOps := func(name string, class uint32, ports []uint16) {
		for _, port := range ports {
			for _, p := range []struct {
				num  uint8
				name string
			}{{protoUDP, "udp"}, {protoTCP, "tcp"}} {
				for _, dir := range []string{"dport", "sport"} {
					pk := U32Key{Val: uint32(port), Mask: 0x0000ffff, Off: portOf}
					if dir == "sport" {
						pk = U32Key{Val: uint32(port) << 16, Mask: 0xffff0000, Off: portOf}
					}
					o := base
					o.Name, o.FlowID = name, class
					if proto == ethPIP {
						o.Keys = []U32Key{ihl5, l4(p.num), pk}
					} else {
						o.Keys = []U32Key{l4(p.num), pk}
					}
					o.Match = fmt.Sprintf("%s %s %s %d", family, p.name, dir, port)
					ops = append(ops, o)
				}
			}
		}
	}
	portOps("media", mediaClassID, cfg.MediaPorts)
	portOps("control", controlClassID, cfg.ControlPorts)
	return ops
}
