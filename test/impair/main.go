// Command impair is the userspace WAN emulator of the cluster tests: the
// kernel here has no netem, so packets are sent to it with the iptables
// NFQUEUE target and it delays, drops or passes each one by its IPv4
// source and destination:
//
//	iptables-legacy -A FORWARD -s 10.77.0.0/24 -d 10.77.0.0/24 \
//	    -j NFQUEUE --queue-num 0 --queue-bypass
//	impair -queue 0 -config links.json     # SIGHUP reloads links.json
//	impair -queue 0 -stdin                 # control.Request lines on stdin
//
// A delayed packet stays in the kernel; only its first bytes are copied
// here, and the accept verdict is sent when it is due (a heap of due times
// and one timer, no polling). A constant delay per direction keeps packet
// order; jitter and lowered delays are clamped so that order still holds.
// With -stdin the tool exits when stdin closes, so it never outlives its
// controller. See test/README.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relaymesh/relaymesh/test/impair/control"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("impair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueNum := fs.Uint("queue", 0, "NFQUEUE queue number to bind")
	configPath := fs.String("config", "", "JSON control.Config to load at start and on SIGHUP")
	useStdin := fs.Bool("stdin", false, "read control.Request JSON lines on stdin, reply on stdout; exit at EOF")
	seed := fs.Uint64("seed", 0, "loss and jitter RNG seed (0: from the clock)")
	copyRange := fs.Uint("copy-range", 128, "bytes of each packet copied to userspace (headers only)")
	maxLen := fs.Uint("max-len", 1<<16, "kernel queue length in packets; packets beyond it are dropped")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "impair")
	if *queueNum > 0xffff {
		log.Error("bad -queue: must be 0..65535", "queue", *queueNum)
		return 2
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}

	var initial control.Config
	if *configPath != "" {
		c, err := loadConfig(*configPath)
		if err != nil {
			log.Error("load config", "err", err)
			return 1
		}
		initial = c
	}

	q, err := openQueue(uint16(*queueNum), uint32(*copyRange), uint32(*maxLen))
	if err != nil {
		log.Error("open queue: is this root, and is the nfnetlink_queue module available?", "err", err)
		return 1
	}
	defer q.close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	d := &daemon{
		q:    q,
		eng:  newEngine(*seed),
		out:  json.NewEncoder(stdout),
		log:  log,
		pkts: make(chan packetIn, 4096),
		reqs: make(chan control.Request),
	}
	d.eng.setConfig(initial)
	num := uint16(*queueNum)
	d.kernelDropped = func() uint64 { return kernelDrops(num) }

	go d.recvLoop(q)
	if *useStdin {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ctx = sctx
		go d.readRequests(stdin, cancel)
	}
	log.Info("ready", "queue", *queueNum, "seed", *seed, "links", len(initial.Links))
	if *useStdin {
		_ = d.out.Encode(control.Reply{Ready: true})
	}
	return d.loop(ctx, hup, *configPath)
}

func loadConfig(path string) (control.Config, error) {
	var c control.Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// kernelDrops sums queue_dropped and user_dropped of queue num from
// /proc/net/netfilter/nfnetlink_queue (this network namespace's view).
func kernelDrops(num uint16) uint64 {
	b, err := os.ReadFile("/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return 0
	}
	return parseQueueDrops(b, num)
}

// parseQueueDrops reads the lines of /proc/net/netfilter/nfnetlink_queue:
// queue peer_portid queue_total copy_mode copy_range queue_dropped
// user_dropped id_sequence 1.
func parseQueueDrops(b []byte, num uint16) uint64 {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != strconv.Itoa(int(num)) {
			continue
		}
		q, err1 := strconv.ParseUint(f[5], 10, 64)
		u, err2 := strconv.ParseUint(f[6], 10, 64)
		if err1 == nil && err2 == nil {
			return q + u
		}
	}
	return 0
}

// packetIn is one queued packet as the receive goroutine saw it.
type packetIn struct {
	id   uint32
	hdr  ipv4Header
	ipv4 bool // false: not IPv4, accept untouched
	at   time.Time
}

// verdicter sends verdicts; *nfQueue in the tool, a recorder in tests.
type verdicter interface {
	verdict(id uint32, accept bool) error
}

type daemon struct {
	q         verdicter
	eng       *engine
	out       *json.Encoder
	log       *slog.Logger
	pkts      chan packetIn
	reqs      chan control.Request
	malformed atomic.Uint64
	stats     control.Stats // owned by loop
	// kernelDropped reads the kernel's drop counters of the queue; nil
	// in tests.
	kernelDropped func() uint64
}

// recvLoop reads packets from the kernel and hands them to loop. It ends
// with the process.
func (d *daemon) recvLoop(q *nfQueue) {
	for {
		bodies, err := q.recv()
		if err != nil {
			d.log.Error("receive", "err", err)
			time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			continue
		}
		now := time.Now()
		for _, b := range bodies {
			p, err := parsePacket(b)
			if err != nil {
				d.malformed.Add(1)
				if p.ID == 0 {
					continue // no id: nothing to give a verdict for
				}
			}
			h, err := parseIPv4(p.Payload)
			d.pkts <- packetIn{id: p.ID, hdr: h, ipv4: err == nil, at: now}
		}
	}
}

// readRequests feeds stdin lines to loop and cancels at EOF.
func (d *daemon) readRequests(r io.Reader, cancel context.CancelFunc) {
	defer cancel()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var req control.Request
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			req = control.Request{Op: "bad: " + err.Error()}
		}
		d.reqs <- req
	}
}

// loop owns the engine: it decides, holds and releases packets, applies
// requests and reloads.
func (d *daemon) loop(ctx context.Context, hup <-chan os.Signal, configPath string) int {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var ids []uint32
	for {
		select {
		case <-ctx.Done():
			// Let held packets go rather than have the kernel drop them
			// when the socket closes.
			for _, h := range d.eng.q {
				_ = d.q.verdict(h.id, true)
			}
			d.log.Info("stopped", "stats", d.snapshot())
			return 0
		case p := <-d.pkts:
			d.handle(p)
		case req := <-d.reqs:
			d.apply(req)
		case <-hup:
			if configPath == "" {
				continue
			}
			c, err := loadConfig(configPath)
			if err != nil {
				d.log.Error("reload refused, old config kept", "err", err)
				continue
			}
			d.eng.setConfig(c)
			d.log.Info("reloaded", "links", len(c.Links), "blackhole", len(c.Blackhole))
		case <-timer.C:
		}
		ids = d.eng.release(time.Now(), ids[:0])
		for _, id := range ids {
			d.send(id, true)
			d.stats.Delayed++
		}
		if due, ok := d.eng.next(); ok {
			timer.Reset(time.Until(due))
		} else {
			timer.Stop()
		}
	}
}

func (d *daemon) handle(p packetIn) {
	d.stats.Received++
	if !p.ipv4 {
		d.send(p.id, true)
		return
	}
	f, due := d.eng.decide(p.hdr, p.at)
	switch f {
	case fateAccept:
		d.send(p.id, true)
	case fateDelay:
		d.eng.hold(p.id, due)
	case fateLost:
		d.stats.Lost++
		d.send(p.id, false)
	case fateBlackhole:
		d.stats.Blackholed++
		d.send(p.id, false)
	}
}

func (d *daemon) send(id uint32, accept bool) {
	if accept {
		d.stats.Accepted++
	}
	if err := d.q.verdict(id, accept); err != nil {
		d.log.Error("verdict", "err", err)
	}
}

func (d *daemon) snapshot() control.Stats {
	s := d.stats
	s.Pending = d.eng.pending()
	s.Late = d.eng.late
	s.MaxLateMs = float64(d.eng.maxLate.Microseconds()) / 1000
	s.Malformed = d.malformed.Load()
	if d.kernelDropped != nil {
		s.KernelDropped = d.kernelDropped()
	}
	return s
}

func (d *daemon) apply(req control.Request) {
	rep := control.Reply{ID: req.ID}
	switch req.Op {
	case control.OpSet:
		switch {
		case req.Config == nil:
			rep.Error = "set: no config"
		default:
			if err := req.Config.Validate(); err != nil {
				rep.Error = err.Error()
				break
			}
			d.eng.setConfig(*req.Config)
			d.log.Info("config set", "links", len(req.Config.Links), "blackhole", len(req.Config.Blackhole))
		}
	case control.OpStats:
	default:
		rep.Error = fmt.Sprintf("unknown op %q: want %q or %q", req.Op, control.OpSet, control.OpStats)
	}
	rep.Stats = d.snapshot()
	if err := d.out.Encode(rep); err != nil {
		d.log.Error("reply", "err", err)
	}
}
