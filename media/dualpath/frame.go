// Package dualpath is the data plane of hitless dual-path (SMPTE 2022-7
// style) backbone links: the sender frames a stream's MPEG-TS packets as
// RTP (github.com/pion/rtp) with extended sequence numbers and sends every
// RTP packet over two links; the receiver merges the two legs by sequence
// number inside a bounded reorder window, drops duplicates and emits one
// ordered stream, counting per leg what it contributed. It knows nothing
// of the cluster.
package dualpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// TSPerPacket is how many 188-byte TS packets one RTP packet carries: six
// keep the RTP packet inside SRT's 1316-byte live-mode payload.
const TSPerPacket = 6

const (
	tsSize      = 188
	payloadType = 33 // MP2T (RFC 3551)
	// rocExtID is the one-byte header extension carrying the upper 32
	// bits of the extended sequence number (the rollover counter).
	rocExtID = 1
	// headerSize is the RTP header with its one-byte-profile extension
	// holding the rollover counter: 12 + 4 + 1 + 4, padded to 24.
	headerSize = 24
)

// QueueMaxAge is how long a sender of dual-path packets (an edge's leg, a
// center's forward of its leg to the other center) keeps a packet queued
// while its link is down or connecting, for a receiver whose reorder
// window is about window: a link that comes up late, or comes back,
// resumes near the live edge instead of replaying seconds of the stream
// (link.MessageSenderConfig.MaxAge). Not sooner than queueAllowance past
// twice the window: the stream's first burst (the GOP cache) waits in the
// queues for the links' handshakes, and at twice the window alone (638 ms)
// the leg to tyo dropped its first 197 packets, so a packet the other leg
// lost had no copy (TestClusterDualPath loss).
func QueueMaxAge(window time.Duration) time.Duration { return 2*window + queueAllowance }

// queueAllowance is what QueueMaxAge adds for the links' handshakes.
const queueAllowance = 2 * time.Second

// MaxPacket is the size of the largest RTP packet a Packetizer makes.
const MaxPacket = headerSize + TSPerPacket*tsSize

// ErrBadPacket is wrapped by every Parse error.
var ErrBadPacket = errors.New("bad dual-path RTP packet")

// Frame is one RTP packet of a dual-path link.
type Frame struct {
	SSRC uint32 // the sender's session: a new one when the sender restarts
	// Seq is the extended sequence number: the RTP sequence number plus
	// the rollover counter << 16.
	Seq uint64
	// Timestamp is the sender's clock at framing, 90 kHz.
	Timestamp uint32
	// Payload is whole TS packets; it aliases the parsed buffer.
	Payload []byte
}

// Packetizer frames TS packets as RTP with consecutive extended sequence
// numbers. One Packetizer feeds both legs, so both carry the same numbers.
type Packetizer struct {
	ssrc  uint32
	next  uint64
	start time.Time
	now   func() time.Time
	pend  []byte // TS bytes of the next packet
	pkt   rtp.Packet
	roc   [4]byte
	out   []byte
}

// NewPacketizer returns a Packetizer for session ssrc whose first packet
// has extended sequence number first.
func NewPacketizer(ssrc uint32, first uint64) *Packetizer {
	p := &Packetizer{ssrc: ssrc, next: first, now: time.Now, pend: make([]byte, 0, TSPerPacket*tsSize), out: make([]byte, MaxPacket)}
	p.start = p.now()
	return p
}

// Next returns the extended sequence number of the next packet.
func (p *Packetizer) Next() uint64 { return p.next }

// Add appends TS packets (a multiple of 188 bytes) and calls emit with
// every RTP packet that is full. emit's buffer is valid during the call.
func (p *Packetizer) Add(ts []byte, emit func(pkt []byte) error) error {
	if len(ts)%tsSize != 0 {
		return fmt.Errorf("dualpath: %d bytes are not whole TS packets", len(ts))
	}
	for len(ts) > 0 {
		k := min(cap(p.pend)-len(p.pend), len(ts))
		p.pend = append(p.pend, ts[:k]...)
		ts = ts[k:]
		if len(p.pend) == cap(p.pend) {
			if err := p.Flush(emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush sends what Add holds as a (short) RTP packet.
func (p *Packetizer) Flush(emit func(pkt []byte) error) error {
	if len(p.pend) == 0 {
		return nil
	}
	seq := p.next
	p.next++
	h := &p.pkt.Header
	h.Version = 2
	h.PayloadType = payloadType
	h.SequenceNumber = uint16(seq)
	h.Timestamp = uint32(p.now().Sub(p.start).Microseconds() * 9 / 100) // 90 kHz
	h.SSRC = p.ssrc
	binary.BigEndian.PutUint32(p.roc[:], uint32(seq>>16))
	if err := h.SetExtension(rocExtID, p.roc[:]); err != nil {
		return fmt.Errorf("dualpath: rtp extension: %w", err)
	}
	p.pkt.Payload = p.pend
	n, err := p.pkt.MarshalTo(p.out)
	p.pend = p.pend[:0]
	if err != nil {
		return fmt.Errorf("dualpath: rtp marshal: %w", err)
	}
	return emit(p.out[:n])
}

// Parser reads the RTP packets of one leg. It keeps its scratch between
// calls, so parsing does not allocate.
type Parser struct {
	pkt rtp.Packet
}

// Parse reads one RTP packet. The Frame's payload aliases b.
func (ps *Parser) Parse(b []byte) (Frame, error) {
	bad := func(format string, a ...any) (Frame, error) {
		return Frame{}, fmt.Errorf("%w: "+format, append([]any{ErrBadPacket}, a...)...)
	}
	if err := ps.pkt.Unmarshal(b); err != nil {
		return bad("%v", err)
	}
	h := &ps.pkt.Header
	if h.Version != 2 || h.PayloadType != payloadType {
		return bad("version %d payload type %d (want 2 and %d)", h.Version, h.PayloadType, payloadType)
	}
	roc := h.GetExtension(rocExtID)
	if len(roc) != 4 {
		return bad("no rollover counter extension")
	}
	pl := ps.pkt.Payload
	if len(pl) == 0 || len(pl)%tsSize != 0 || len(pl) > TSPerPacket*tsSize {
		return bad("payload of %d bytes is not 1..%d TS packets", len(pl), TSPerPacket)
	}
	for i := 0; i < len(pl); i += tsSize {
		if pl[i] != 0x47 {
			return bad("TS packet %d has no sync byte", i/tsSize)
		}
	}
	return Frame{
		SSRC:      h.SSRC,
		Seq:       uint64(binary.BigEndian.Uint32(roc))<<16 | uint64(h.SequenceNumber),
		Timestamp: h.Timestamp,
		Payload:   pl,
	}, nil
}
