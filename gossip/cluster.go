// Package gossip is the relaymesh cluster: memberlist membership with
// encrypted gossip, node metadata (role, site, addresses, load, capacity),
// RTT measurement with network coordinates, a replicated stream directory,
// center selection and nearest-edge location.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/coordinate"
)

// Errors callers test with errors.Is.
var (
	ErrClosed      = errors.New("gossip cluster closed")
	ErrKeyMismatch = errors.New("gossip key mismatch")
	ErrUnreachable = errors.New("peer unreachable")
	ErrBadStream   = errors.New("invalid stream name")
)

// Cluster is this node's membership in the relaymesh gossip cluster.
type Cluster struct {
	cfg    Config
	logger *slog.Logger
	key    []byte
	ml     *memberlist.Memberlist
	queue  *memberlist.TransmitLimitedQueue
	dir    *directory
	flows  *flowDir
	coord  *coordinate.Client
	port   int

	metaMu    sync.Mutex
	meta      NodeMeta
	metaBytes []byte
	loadDirty bool

	mu      sync.Mutex
	members map[string]*memberRec
	// unreachable: when this node's data path last failed to reach a
	// member (MarkUnreachable)
	unreachable map[string]time.Time

	evMu     sync.Mutex
	evQ      []Event
	evSignal chan struct{}

	// synced is closed after the first directory exchange with a peer
	// (the join's push/pull), or at once for a node with no seeds.
	synced     chan struct{}
	syncedOnce sync.Once

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
	// left: Leave was called; no more metadata updates (they would wait
	// TCPTimeout for a broadcast nobody takes, holding up the shutdown)
	// and no rejoin
	left atomic.Bool
}

// New validates cfg, reads the key file and binds the gossip port (TCP and
// UDP), so "address already in use" surfaces here. The node is alone until
// Join succeeds.
func New(cfg Config, logger *slog.Logger) (*Cluster, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Timings = fillTimings(cfg.Timings)
	cfg.Meta.Name = cfg.NodeName
	if cfg.BindAddr == "" {
		cfg.BindAddr = "0.0.0.0"
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gossip config: %w", err)
	}
	c := &Cluster{
		cfg:      cfg,
		logger:   logger,
		dir:      newDirectory(),
		flows:    newFlowDir(),
		members:  make(map[string]*memberRec),
		meta:     cfg.Meta,
		evSignal: make(chan struct{}, 1),
		synced:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	if len(cfg.Seeds) == 0 {
		c.markSynced()
	}
	var err error
	if c.metaBytes, err = cfg.Meta.encode(); err != nil {
		return nil, fmt.Errorf("gossip config: meta: %w", err)
	}
	if cfg.KeyFile != "" {
		if c.key, err = LoadKey(cfg.KeyFile); err != nil {
			return nil, err
		}
	} else {
		logger.Warn("gossip encryption is off: set a key file so other hosts cannot join or read the cluster")
	}
	if c.coord, err = coordinate.NewClient(coordinate.DefaultConfig()); err != nil {
		return nil, fmt.Errorf("gossip coordinates: %w", err)
	}
	// Directory entries are sent dirRetransmitFactor times as often as
	// membership gossip. memberlist counts every send to one peer as a
	// transmit, so with RetransmitMult 4 in a 5-node cluster each holder
	// sends an entry to 4 peers in two rounds (3 + 1), and one node missed
	// every holder's sends about once in 800 publishes: its directory then
	// lacked a live stream until the next push/pull (15 s), and a player
	// there got "not found". With 8 sends (3 + 3 + 2) that is about 1 in
	// 10^6. An entry is ~40 bytes, so the cost is a few hundred bytes per
	// publish.
	c.queue = &memberlist.TransmitLimitedQueue{NumNodes: c.numAlive, RetransmitMult: dirRetransmitFactor * cfg.Timings.RetransmitMult}

	t := cfg.Timings
	mlc := memberlist.DefaultLANConfig()
	mlc.Name = cfg.NodeName
	mlc.BindAddr = cfg.BindAddr
	mlc.BindPort = cfg.BindPort
	mlc.AdvertiseAddr = cfg.AdvertiseAddr
	mlc.AdvertisePort = cfg.AdvertisePort
	if mlc.AdvertisePort == 0 {
		mlc.AdvertisePort = cfg.BindPort
	}
	mlc.ProbeInterval = t.ProbeInterval
	mlc.ProbeTimeout = t.ProbeTimeout
	mlc.SuspicionMult = t.SuspicionMult
	mlc.SuspicionMaxTimeoutMult = t.SuspicionMaxMult
	mlc.GossipInterval = t.GossipInterval
	mlc.GossipNodes = t.GossipNodes
	mlc.RetransmitMult = t.RetransmitMult
	mlc.PushPullInterval = t.PushPullInterval
	mlc.TCPTimeout = t.TCPTimeout
	mlc.GossipToTheDeadTime = 4 * t.PushPullInterval
	mlc.DeadNodeReclaimTime = 0 // a restarted node may come back under its name at once
	mlc.Logger = newStdLogger(logger.With("component", "memberlist"))
	d := &delegate{c: c}
	mlc.Delegate = d
	mlc.Events = d
	mlc.Ping = d
	if c.key != nil {
		if mlc.Keyring, err = memberlist.NewKeyring(nil, c.key); err != nil {
			return nil, fmt.Errorf("gossip key file %s: %w", cfg.KeyFile, err)
		}
	}
	if c.ml, err = memberlist.Create(mlc); err != nil {
		return nil, fmt.Errorf("gossip: bind %s: %w", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	c.port = mlc.BindPort
	c.wg.Add(1)
	go c.dispatch()
	logger.Info("gossip listening", "addr", c.Addr().String(), "encrypted", c.key != nil)
	return c, nil
}

func fillTimings(t Timings) Timings {
	d := DefaultTimings()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&t.ProbeInterval, d.ProbeInterval)
	set(&t.ProbeTimeout, d.ProbeTimeout)
	seti(&t.SuspicionMult, d.SuspicionMult)
	seti(&t.SuspicionMaxMult, d.SuspicionMaxMult)
	set(&t.GossipInterval, d.GossipInterval)
	seti(&t.GossipNodes, d.GossipNodes)
	seti(&t.RetransmitMult, d.RetransmitMult)
	set(&t.PushPullInterval, d.PushPullInterval)
	set(&t.TCPTimeout, d.TCPTimeout)
	set(&t.MetaMinInterval, d.MetaMinInterval)
	set(&t.RejoinInterval, d.RejoinInterval)
	set(&t.TombstoneTTL, d.TombstoneTTL)
	return t
}

// Name returns this node's name.
func (c *Cluster) Name() string { return c.cfg.NodeName }

// Addr returns the gossip address other nodes use to reach this one; pass
// it as a seed.
func (c *Cluster) Addr() netip.AddrPort {
	return addrPort(c.ml.LocalNode())
}

// Join contacts the seeds ("host", "host:port" or "name/host:port") and
// syncs state with every one that answers. It succeeds if any seed answered.
// A seed that accepts the TCP connection but not the handshake is reported
// as ErrKeyMismatch, one that cannot be reached as ErrUnreachable.
func (c *Cluster) Join(seeds []string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(seeds) == 0 {
		return nil
	}
	n, err := c.ml.Join(seeds)
	if n > 0 {
		c.logger.Info("joined gossip cluster", "seeds_answered", n, "members", c.numAlive())
		return nil
	}
	errs := make([]error, 0, len(seeds))
	for _, s := range seeds {
		errs = append(errs, c.diagnose(s))
	}
	c.logger.Debug("join failed", "err", err)
	return fmt.Errorf("join gossip cluster: no seed accepted us: %w", errors.Join(errs...))
}

// diagnose tells a seed that is down from one that refuses our handshake.
func (c *Cluster) diagnose(seed string) error {
	addr := seed
	if i := strings.LastIndex(addr, "/"); i >= 0 {
		addr = addr[i+1:]
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(c.port))
	}
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return fmt.Errorf("%s: %w: %v; check the address and that its gossip port is open", seed, ErrUnreachable, err)
	}
	_ = conn.Close()
	if c.key == nil {
		return fmt.Errorf("%s: %w or peer unreachable: the seed accepted a TCP connection but refused the gossip handshake; it probably uses encryption: set key_file to the cluster's key", seed, ErrKeyMismatch)
	}
	return fmt.Errorf("%s: %w or peer unreachable: the seed accepted a TCP connection but refused the encrypted gossip handshake; check that key file %s holds the same key as the cluster", seed, ErrKeyMismatch, c.cfg.KeyFile)
}

// Run refreshes the advertised load (at most every MetaMinInterval),
// retries the configured seeds while this node is alone, and expires
// tombstones. It blocks until ctx ends; cancellation is not an error.
func (c *Cluster) Run(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	t := c.cfg.Timings
	metaT := time.NewTicker(t.MetaMinInterval)
	defer metaT.Stop()
	rejoinT := time.NewTicker(t.RejoinInterval)
	defer rejoinT.Stop()
	gcT := time.NewTicker(min(t.TombstoneTTL/4, time.Minute))
	defer gcT.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.done:
			return nil
		case <-metaT.C:
			c.metaMu.Lock()
			dirty := c.loadDirty
			c.metaMu.Unlock()
			if dirty && !c.left.Load() {
				if err := c.pushMeta(); err != nil {
					c.logger.Warn("advertise load", "err", err)
				}
			}
		case <-rejoinT.C:
			if len(c.cfg.Seeds) > 0 && c.numAlive() <= 1 && !c.left.Load() {
				if err := c.Join(c.cfg.Seeds); err != nil {
					c.logger.Warn("alone in the gossip cluster; rejoin failed", "err", err)
				}
			}
		case <-gcT.C:
			c.dir.gc(t.TombstoneTTL)
			c.flows.gc(t.TombstoneTTL)
			c.reap(t.TombstoneTTL)
		}
	}
}

// Leave tells the cluster this node is going away and waits up to timeout
// for the message to spread. Others drop its directory entries at once.
func (c *Cluster) Leave(timeout time.Duration) error {
	if c.closed.Load() {
		return ErrClosed
	}
	c.left.Store(true)
	c.announceLeave(timeout / 2)
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave gossip cluster: %w", err)
	}
	return nil
}

// announceLeave tells every alive peer, directly over TCP and by gossip,
// that this node is leaving, so they report "left" rather than "failed".
// It waits at most wait.
func (c *Cluster) announceLeave(wait time.Duration) {
	msg := encodeLeave(c.cfg.NodeName)
	c.queue.QueueBroadcast(&leaveBroadcast{node: c.cfg.NodeName, msg: msg})
	var peers []*memberlist.Node
	c.mu.Lock()
	for _, r := range c.members {
		if r.state == StateAlive && r.name != c.cfg.NodeName {
			peers = append(peers, &memberlist.Node{Name: r.name, Addr: r.addr.Addr().AsSlice(), Port: r.addr.Port()})
		}
	}
	c.mu.Unlock()
	done := make(chan struct{}, len(peers))
	for _, p := range peers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.ml.SendReliable(p, msg); err != nil {
				c.logger.Debug("leave intent not delivered", "node", p.Name, "err", err)
			}
			done <- struct{}{}
		}()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range peers {
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}

// Close stops gossiping without a leave message (others will declare this
// node dead). It is idempotent and safe on a nil Cluster.
func (c *Cluster) Close() error {
	if c == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.done)
		if c.ml != nil {
			err = c.ml.Shutdown()
		}
		c.wg.Wait()
	})
	return err
}

// SetLoad records the current load; it is advertised within
// Timings.MetaMinInterval by Run (rate limited).
func (c *Cluster) SetLoad(l Load) {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	if c.meta.Load != l {
		c.meta.Load = l
		c.loadDirty = true
	}
}

// SetMeta replaces the advertised metadata (the name stays) and spreads it
// at once. It fails if the encoding exceeds MetaMaxSize.
func (c *Cluster) SetMeta(m NodeMeta) error {
	if c.closed.Load() {
		return ErrClosed
	}
	m.Name = c.cfg.NodeName
	if err := m.Validate(); err != nil {
		return fmt.Errorf("gossip meta: %w", err)
	}
	c.metaMu.Lock()
	c.meta = m
	c.metaMu.Unlock()
	return c.pushMeta()
}

// LocalMeta returns the metadata this node advertises.
func (c *Cluster) LocalMeta() NodeMeta {
	c.metaMu.Lock()
	defer c.metaMu.Unlock()
	return c.meta
}

func (c *Cluster) pushMeta() error {
	c.metaMu.Lock()
	b, err := c.meta.encode()
	if err == nil {
		c.metaBytes = b
		c.loadDirty = false
	}
	c.metaMu.Unlock()
	if err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.ml.UpdateNode(c.cfg.Timings.TCPTimeout); err != nil {
		return fmt.Errorf("gossip meta update: %w", err)
	}
	return nil
}

// Members returns every known member, this node included, sorted by name.
// Dead and left members stay listed for Timings.TombstoneTTL.
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	out := make([]Member, 0, len(c.members))
	alive := c.numAliveLocked()
	for _, r := range c.members {
		out = append(out, c.memberLocked(r, alive))
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Member returns one member by name.
func (c *Cluster) Member(name string) (Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[name]
	if !ok {
		return Member{}, false
	}
	return c.memberLocked(r, c.numAliveLocked()), true
}

// RTT returns the round trip time to size a link to node by (its SRT
// latency, its connect timeout): the larger of the member's estimate (a
// recent ping, else network coordinates, which start far too low after a
// join) and the two sites' great-circle estimate, so that a link dialed
// before anything was measured does not get the 120 ms latency floor over
// a 160 ms path. false when neither is known.
func (c *Cluster) RTT(node string) (time.Duration, bool) {
	m, ok := c.Member(node)
	if !ok {
		return 0, false
	}
	self, _ := c.Member(c.cfg.NodeName)
	return linkRTT(self.Meta, m)
}

// linkRTT is the largest of m's RTT estimate, its latest ping when
// fresh (the estimate is the least of the recent pings: pathRTT) and the
// sites' great-circle estimate from self; false when none is known.
func linkRTT(self NodeMeta, m Member) (time.Duration, bool) {
	rtt, known := m.RTT, m.RTTKnown
	if !m.MeasuredAt.IsZero() && time.Since(m.MeasuredAt) < measuredRTTFresh {
		rtt, known = max(rtt, m.MeasuredRTT), true
	}
	if self.HasLocation() && m.Meta.HasLocation() {
		rtt, known = max(rtt, EstimateRTT(Haversine(self.Lat, self.Lon, m.Meta.Lat, m.Meta.Lon))), true
	}
	return rtt, known
}

func (c *Cluster) memberLocked(r *memberRec, alive int) Member {
	m := Member{
		Name:        r.name,
		Addr:        r.addr,
		Meta:        r.meta,
		MetaErr:     r.metaErr,
		State:       r.state,
		Local:       r.name == c.cfg.NodeName,
		MeasuredRTT: r.measured,
		MeasuredAt:  r.lastAck,
		Updated:     r.updated,
		Unreachable: c.unreachableLocked(r),
	}
	if m.Local {
		c.metaMu.Lock()
		m.Meta = c.meta
		c.metaMu.Unlock()
		m.RTT, m.RTTKnown = 0, true
		return m
	}
	// A recent direct measurement (memberlist's ping ack) wins: network
	// coordinates take many rounds to settle and start far off (seen:
	// 45 ms estimated for a 160 ms link), which would pick the wrong
	// center and too low an SRT latency. Coordinates cover peers this
	// node has not pinged lately.
	switch {
	case !r.lastAck.IsZero() && time.Since(r.lastAck) < measuredRTTFresh:
		m.RTT, m.RTTKnown = r.pathRTT(time.Now()), true
	case r.coord != nil:
		m.RTT, m.RTTKnown = c.coord.DistanceTo(r.coord), true
	case !r.lastAck.IsZero():
		m.RTT, m.RTTKnown = r.measured, true
	}
	if m.State == StateAlive {
		t := c.cfg.Timings
		window := 2*time.Duration(max(alive, 1))*t.ProbeInterval + t.ProbeTimeout
		last := r.since
		if r.lastAck.After(last) {
			last = r.lastAck
		}
		if time.Since(last) > window {
			m.State = StateSuspect
		}
	}
	return m
}

// measuredRTTFresh is how long a ping measurement is preferred to the
// coordinate estimate.
const measuredRTTFresh = 30 * time.Second

func (c *Cluster) numAlive() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.numAliveLocked()
}

func (c *Cluster) numAliveLocked() int {
	n := 0
	for _, r := range c.members {
		if r.state == StateAlive {
			n++
		}
	}
	return n
}

// gone reports whether node is known to be dead or to have left.
func (c *Cluster) gone(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.members[node]
	return ok && (r.state == StateDead || r.state == StateLeft)
}

// reap forgets members that have been dead or left for longer than ttl.
func (c *Cluster) reap(ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.members {
		if (r.state == StateDead || r.state == StateLeft) && time.Since(r.updated) > ttl {
			delete(c.members, name)
			delete(c.unreachable, name)
		}
	}
}

// Publish records in the directory that this node hosts stream and gossips
// it to the cluster.
func (c *Cluster) Publish(stream string) error {
	if err := checkStream(stream); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	c.broadcast(c.dir.claim(stream, c.cfg.NodeName))
	return nil
}

// Unpublish removes stream from the directory if this node hosts it (a
// tombstone is gossiped). It is a no-op otherwise.
func (c *Cluster) Unpublish(stream string) error {
	if err := checkStream(stream); err != nil {
		return err
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if e, ok := c.dir.release(stream, c.cfg.NodeName); ok {
		c.broadcast(e)
	}
	return nil
}

func checkStream(stream string) error {
	if stream == "" || len(stream) > maxStreamName {
		return fmt.Errorf("%w: %q: must be 1 to %d bytes", ErrBadStream, stream, maxStreamName)
	}
	return nil
}

func (c *Cluster) broadcast(e DirEntry) {
	c.queue.QueueBroadcast(&dirBroadcast{stream: e.Stream, msg: encodeEntry(e)})
}

// dirRetransmitFactor multiplies Timings.RetransmitMult for directory
// entries (see New).
const dirRetransmitFactor = 2

// Lookup returns the node hosting stream, if a live member does.
func (c *Cluster) Lookup(stream string) (DirEntry, bool) {
	e, ok := c.dir.lookup(stream)
	if !ok || e.Deleted || c.gone(e.Node) {
		return DirEntry{}, false
	}
	return e, true
}

// markSynced records that this node's directory has been merged with a
// peer's whole directory at least once.
func (c *Cluster) markSynced() { c.syncedOnce.Do(func() { close(c.synced) }) }

// Synced is closed once this node's directory has been merged with a
// peer's (the join's push/pull), or at start for a node with no seeds:
// before, a stream missing from the directory may only not be known yet.
func (c *Cluster) Synced() <-chan struct{} { return c.synced }

// WaitLookup is Lookup that waits, until ctx ends, first for the
// directory's first sync (Synced) and then for stream to have a live host.
func (c *Cluster) WaitLookup(ctx context.Context, stream string) (DirEntry, bool) {
	select {
	case <-c.synced:
	case <-ctx.Done():
		return c.Lookup(stream)
	case <-c.done:
		return DirEntry{}, false
	}
	for {
		changed := c.dir.watch()
		if e, ok := c.Lookup(stream); ok {
			return e, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return DirEntry{}, false
		case <-c.done:
			return DirEntry{}, false
		}
	}
}

// DirectoryChanged returns a channel closed at the next change of any
// directory entry.
func (c *Cluster) DirectoryChanged() <-chan struct{} { return c.dir.watch() }

// Directory returns the live directory entries sorted by stream.
func (c *Cluster) Directory() []DirEntry {
	all := c.dir.snapshot()
	out := all[:0]
	for _, e := range all {
		if !e.Deleted && !c.gone(e.Node) {
			out = append(out, e)
		}
	}
	return out
}

func (c *Cluster) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	c.evMu.Lock()
	c.evQ = append(c.evQ, ev)
	c.evMu.Unlock()
	select {
	case c.evSignal <- struct{}{}:
	default:
	}
}

// dispatch delivers events to OnEvent in order, off memberlist's locks.
func (c *Cluster) dispatch() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.evSignal:
		}
		for {
			c.evMu.Lock()
			q := c.evQ
			c.evQ = nil
			c.evMu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, ev := range q {
				select {
				case <-c.done:
					return
				default:
				}
				c.cfg.OnEvent(ev)
			}
		}
	}
}
