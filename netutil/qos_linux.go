//go:build linux

package netutil

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
)

// Apply makes the egress of cfg.Interface shaped as cfg says (see the
// package doc), in the network namespace of the calling process. It is
// idempotent: every object is replaced, not added, so a second call leaves
// the same tree, and a changed config (rates, ports, DSCP) is reconciled in
// place. With cfg.Enabled false it removes the agent's tree from
// cfg.Interface, if any.
//
// Errors: a config that fails Validate; ErrForeignQdisc when the interface
// has a root qdisc the agent did not create; ErrNoNetAdmin when the kernel
// refuses with EPERM.
func Apply(ctx context.Context, cfg QoSConfig) error {
	t, err := openTC(netns.None())
	if err != nil {
		return err
	}
	defer t.close()
	return t.apply(ctx, cfg, nil)
}

// Remove deletes the root qdisc that Apply installed on ifname (and with it
// its classes, leaves and filters). A root qdisc it did not create, or a
// missing interface, is left alone and is not an error.
func Remove(ifname string) error {
	t, err := openTC(netns.None())
	if err != nil {
		return err
	}
	defer t.close()
	return t.remove(ifname)
}

// RemoveTree is Remove that says what it found: the tree removed, no tree
// of the agent's, or no such interface.
func RemoveTree(ifname string) (Removal, error) {
	t, err := openTC(netns.None())
	if err != nil {
		return NoTree, err
	}
	defer t.close()
	return t.removeTree(ifname)
}

// InterfaceIndex returns the index of ifname, or an error wrapping
// ErrNoInterface.
func InterfaceIndex(ifname string) (int, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return 0, fmt.Errorf("%q: %w", ifname, ErrNoInterface)
		}
		return 0, err
	}
	return l.Attrs().Index, nil
}

// ClassStats returns the counters of the media, control and bulk classes on
// ifname, in that order. It returns nothing (and no error) when the agent's
// tree is not installed there.
func ClassStats(ifname string) ([]ClassStat, error) {
	t, err := openTC(netns.None())
	if err != nil {
		return nil, err
	}
	defer t.close()
	return t.classStats(ifname)
}

// tcConn runs tc operations in one network namespace.
type tcConn struct {
	h  *netlink.Handle
	ns netns.NsHandle // netns.None() for the caller's
}

func openTC(ns netns.NsHandle) (*tcConn, error) {
	h, err := netlink.NewHandleAt(ns, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, nlErr("qos: open netlink socket", err)
	}
	return &tcConn{h: h, ns: ns}, nil
}

func (t *tcConn) close() { t.h.Close() }

// nlErr wraps a netlink error; EPERM and EACCES also wrap ErrNoNetAdmin.
func nlErr(what string, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s: %w: %w", what, ErrNoNetAdmin, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// opErr describes a failed op in one line: "qos: class media on eth0: ...".
func opErr(op Op, err error) error {
	what := fmt.Sprintf("qos: %s %s on %s", op.Object, op.Name, op.Dev)
	if op.Match != "" {
		what += " (" + op.Match + ")"
	}
	return nlErr(what, err)
}

// fqCodelCache remembers, per process, whether the kernel has fq_codel.
var fqCodelCache struct {
	sync.Mutex
	known bool
	caps  Capabilities
}

func cachedCaps() (Capabilities, bool) {
	fqCodelCache.Lock()
	defer fqCodelCache.Unlock()
	return fqCodelCache.caps, fqCodelCache.known
}

func storeCaps(c Capabilities) {
	fqCodelCache.Lock()
	defer fqCodelCache.Unlock()
	fqCodelCache.caps, fqCodelCache.known = c, true
}

func (t *tcConn) link(ifname string) (netlink.Link, error) {
	link, err := t.h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("qos.interface %q: %w", ifname, ErrNoInterface)
		}
		return nil, nlErr(fmt.Sprintf("qos: look up interface %q", ifname), err)
	}
	return link, nil
}

// rootQdisc returns the root qdisc of link, or nil.
func (t *tcConn) rootQdisc(link netlink.Link) (netlink.Qdisc, error) {
	qs, err := t.h.QdiscList(link)
	if err != nil {
		return nil, nlErr("qos: list qdiscs of "+link.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			return q, nil
		}
	}
	return nil, nil
}

// ours says whether q is the root qdisc Apply installs.
func ours(q netlink.Qdisc) bool {
	return q != nil && q.Attrs().Handle == rootHandle && q.Type() == "htb"
}

// apply implements Apply; caps, when not nil, replaces the probed
// capabilities (tests use it to force the pfifo path).
func (t *tcConn) apply(ctx context.Context, cfg QoSConfig, caps *Capabilities) error {
	if !cfg.Enabled {
		if cfg.Interface == "" {
			return nil
		}
		return t.remove(cfg.Interface)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	link, err := t.link(cfg.Interface)
	if err != nil {
		return err
	}
	root, err := t.rootQdisc(link)
	if err != nil {
		return err
	}
	// Kernel default root qdiscs (noqueue, pfifo_fast, mq, ...) have
	// handle 0:; anything else was set up by someone and is not ours to
	// replace.
	if root != nil && !ours(root) && root.Attrs().Handle>>16 != 0 {
		return fmt.Errorf("%w: %s has root qdisc %s %s; remove it or disable [qos]",
			ErrForeignQdisc, cfg.Interface, root.Type(), fmtHandle(root.Attrs().Handle))
	}

	c, known := cachedCaps()
	if caps != nil {
		c, known = *caps, true
	}
	ops := Plan(cfg, c)
	if !known {
		// The probe needs the classes in place: set them up first.
		for _, op := range ops {
			if op.Object == "class" || op.Name == "root" {
				if err := t.exec(ctx, link, op); err != nil {
					return err
				}
			}
		}
		if c, err = t.probeFQCodel(link); err != nil {
			return err
		}
		storeCaps(c)
		ops = Plan(cfg, c)
	}

	var filters []Op
	for _, op := range ops {
		if op.Object == "filter" {
			filters = append(filters, op)
			continue
		}
		if err := t.exec(ctx, link, op); err != nil {
			return err
		}
	}
	return t.reconcileFilters(link, filters)
}

// exec runs one qdisc or class op with replace semantics.
func (t *tcConn) exec(ctx context.Context, link netlink.Link, op Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	idx := link.Attrs().Index
	switch {
	case op.Object == "qdisc" && op.Kind == "htb":
		root, err := t.rootQdisc(link)
		if err != nil {
			return err
		}
		if ours(root) {
			// htb has no change operation: keep it if it matches, else
			// rebuild (the classes follow in the plan).
			if root.(*netlink.Htb).Defcls == op.DefaultClass {
				return nil
			}
			if err := t.h.QdiscDel(root); err != nil {
				return nlErr("qos: delete root qdisc "+fmtHandle(rootHandle), err)
			}
		}
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Parent: op.Parent, Handle: op.Handle})
		q.Defcls, q.Rate2Quantum = op.DefaultClass, op.R2Q
		if err := t.h.QdiscReplace(q); err != nil {
			return opErr(op, err)
		}
		return nil
	case op.Object == "class":
		// HtbClassAttrs takes bits/s; NewHtbClass turns them into the bytes/s
		// the kernel wants (HtbClass.Rate and Ceil are bytes/s).
		c := netlink.NewHtbClass(
			netlink.ClassAttrs{LinkIndex: idx, Parent: op.Parent, Handle: op.Handle},
			netlink.HtbClassAttrs{Rate: op.Rate, Ceil: op.Ceil, Prio: op.Prio, Quantum: op.Quantum})
		if err := t.h.ClassReplace(c); err != nil {
			return opErr(op, err)
		}
		return nil
	case op.Object == "qdisc":
		if err := t.dropMismatchedLeaf(link, op.Handle, op.Kind); err != nil {
			return err
		}
		var err error
		switch op.Kind {
		case "fq_codel":
			q := netlink.NewFqCodel(netlink.QdiscAttrs{LinkIndex: idx, Parent: op.Parent, Handle: op.Handle})
			q.Limit = op.Limit
			q.ECN = 0
			if op.ECN {
				q.ECN = 1
			}
			err = t.h.QdiscReplace(q)
		case "pfifo":
			err = t.replacePfifo(idx, op.Parent, op.Handle, op.Limit)
		default:
			return fmt.Errorf("qos: unknown leaf qdisc kind %q", op.Kind)
		}
		if err != nil {
			return opErr(op, err)
		}
		return nil
	}
	return fmt.Errorf("qos: cannot execute %s", op)
}

// dropMismatchedLeaf deletes the qdisc with the given handle if it has
// another kind: a replace cannot change the kind of a qdisc in place.
func (t *tcConn) dropMismatchedLeaf(link netlink.Link, handle uint32, kind string) error {
	qs, err := t.h.QdiscList(link)
	if err != nil {
		return nlErr("qos: list qdiscs of "+link.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Attrs().Handle == handle && q.Type() != kind {
			if err := t.h.QdiscDel(q); err != nil {
				return nlErr("qos: delete qdisc "+fmtHandle(handle), err)
			}
		}
	}
	return nil
}

// replacePfifo replaces a pfifo qdisc with an explicit packet limit. The
// netlink package sends pfifo without options, which makes the kernel use
// the interface's txqueuelen (0 on some virtual interfaces).
func (t *tcConn) replacePfifo(ifindex int, parent, handle, limit uint32) error {
	s, err := nl.GetNetlinkSocketAt(t.ns, netns.None(), syscall.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer s.Close()
	req := nl.NewNetlinkRequest(syscall.RTM_NEWQDISC, syscall.NLM_F_CREATE|syscall.NLM_F_REPLACE|syscall.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{syscall.NETLINK_ROUTE: {Socket: s}}
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(ifindex), Handle: handle, Parent: parent})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("pfifo")))
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, nl.Uint32Attr(limit))) // struct tc_fifo_qopt
	_, err = req.Execute(syscall.NETLINK_ROUTE, 0)
	return err
}

// probeFQCodel finds out whether the kernel has fq_codel by creating one as
// the leaf of the bulk class (where the plan wants it anyway).
func (t *tcConn) probeFQCodel(link netlink.Link) (Capabilities, error) {
	var bulk qosClass
	for _, c := range qosClasses {
		if c.name == "bulk" {
			bulk = c
		}
	}
	if err := t.dropMismatchedLeaf(link, bulk.leaf, "fq_codel"); err != nil {
		return Capabilities{}, err
	}
	q := netlink.NewFqCodel(netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Parent: bulk.classID, Handle: bulk.leaf})
	q.Limit = fqCodelLimit
	err := t.h.QdiscReplace(q)
	switch {
	case err == nil:
		return Capabilities{FQCodel: true}, nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EOPNOTSUPP):
		// "Specified qdisc kind is unknown": no sch_fq_codel.
		return Capabilities{FQCodel: false}, nil
	default:
		return Capabilities{}, nlErr("qos: probe fq_codel", err)
	}
}

// u32Rule is a filter reduced to what the plan sets, for comparison.
type u32Rule struct {
	proto, pref uint16
	flowID      uint32
	keys        []U32Key
}

func (a u32Rule) equal(b u32Rule) bool {
	return a.proto == b.proto && a.pref == b.pref && a.flowID == b.flowID && slices.Equal(a.keys, b.keys)
}

// listRules returns the u32 classification rules on our root qdisc, in
// kernel order.
func (t *tcConn) listRules(link netlink.Link) ([]u32Rule, []netlink.Filter, error) {
	fs, err := t.h.FilterList(link, rootHandle)
	if err != nil {
		return nil, nil, nlErr("qos: list filters of "+link.Attrs().Name, err)
	}
	var rules []u32Rule
	for _, f := range fs {
		u, ok := f.(*netlink.U32)
		if !ok || u.Sel == nil || u.ClassId == 0 {
			continue // hash table heads
		}
		r := u32Rule{proto: u.Protocol, pref: u.Priority, flowID: u.ClassId}
		for _, k := range u.Sel.Keys {
			r.keys = append(r.keys, U32Key{Val: k.Val, Mask: k.Mask, Off: k.Off})
		}
		rules = append(rules, r)
	}
	return rules, fs, nil
}

// reconcileFilters makes the filters on our root qdisc exactly the planned
// ones. u32 cannot replace a rule without a handle we do not control, so
// when the set differs the filter instances are deleted and rebuilt; when it
// matches nothing is touched.
func (t *tcConn) reconcileFilters(link netlink.Link, ops []Op) error {
	want := make([]u32Rule, len(ops))
	for i, op := range ops {
		want[i] = u32Rule{proto: op.Protocol, pref: op.Pref, flowID: op.FlowID, keys: op.Keys}
	}
	have, fs, err := t.listRules(link)
	if err != nil {
		return err
	}
	if slices.EqualFunc(have, want, u32Rule.equal) {
		return nil
	}
	type inst struct{ proto, pref uint16 }
	deleted := map[inst]bool{}
	for _, f := range fs {
		a := f.Attrs()
		k := inst{a.Protocol, a.Priority}
		if deleted[k] {
			continue
		}
		del := &netlink.U32{FilterAttrs: netlink.FilterAttrs{
			LinkIndex: link.Attrs().Index, Parent: rootHandle, Priority: a.Priority, Protocol: a.Protocol}}
		if err := t.h.FilterDel(del); err != nil && !errors.Is(err, syscall.ENOENT) {
			return nlErr(fmt.Sprintf("qos: delete filters pref %d of %s", a.Priority, link.Attrs().Name), err)
		}
		deleted[k] = true
	}
	for _, op := range ops {
		// Exact capacity: netlink v1.3.1 serializes cap(Keys) keys on
		// little-endian hosts, which would add 00000000/00000000 keys.
		sel := &nl.TcU32Sel{Flags: nl.TC_U32_TERMINAL, Keys: make([]nl.TcU32Key, len(op.Keys))}
		for i, k := range op.Keys {
			sel.Keys[i] = nl.TcU32Key{Val: k.Val, Mask: k.Mask, Off: k.Off}
		}
		f := &netlink.U32{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: link.Attrs().Index, Parent: op.Parent,
				Priority: op.Pref, Protocol: op.Protocol},
			Sel:     sel,
			ClassId: op.FlowID,
		}
		if err := t.h.FilterAdd(f); err != nil {
			return opErr(op, err)
		}
	}
	return nil
}

func (t *tcConn) remove(ifname string) error {
	_, err := t.removeTree(ifname)
	return err
}

func (t *tcConn) removeTree(ifname string) (Removal, error) {
	link, err := t.h.LinkByName(ifname)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return NoInterface, nil
		}
		return NoTree, nlErr(fmt.Sprintf("qos: look up interface %q", ifname), err)
	}
	root, err := t.rootQdisc(link)
	if err != nil || !ours(root) {
		return NoTree, err
	}
	if err := t.h.QdiscDel(root); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return NoTree, nil
		}
		return NoTree, nlErr(fmt.Sprintf("qos: delete root qdisc %s of %s", fmtHandle(rootHandle), ifname), err)
	}
	return Removed, nil
}

func (t *tcConn) classStats(ifname string) ([]ClassStat, error) {
	link, err := t.link(ifname)
	if err != nil {
		return nil, err
	}
	root, err := t.rootQdisc(link)
	if err != nil || !ours(root) {
		return nil, err
	}
	cs, err := t.h.ClassList(link, 0)
	if err != nil {
		return nil, nlErr("qos: list classes of "+ifname, err)
	}
	byID := map[uint32]netlink.Class{}
	for _, c := range cs {
		byID[c.Attrs().Handle] = c
	}
	var out []ClassStat
	for _, qc := range qosClasses {
		c, ok := byID[qc.classID]
		if !ok {
			continue
		}
		s := ClassStat{Class: qc.name}
		if st := c.Attrs().Statistics; st != nil {
			if st.Basic != nil {
				s.Bytes, s.Packets = st.Basic.Bytes, uint64(st.Basic.Packets)
			}
			if st.Queue != nil {
				s.Drops, s.Overlimits = uint64(st.Queue.Drops), uint64(st.Queue.Overlimits)
			}
		}
		out = append(out, s)
	}
	return out, nil
}
