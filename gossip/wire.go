package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/hashicorp/serf/coordinate"
)

// Gossip messages of the stream directory. Every message starts with a kind
// byte; the high nibble is the wire version.
const (
	kindEntry byte = 0x11 // one directory entry (broadcast)
	kindState byte = 0x12 // the whole directory (push/pull)
	kindLeave byte = 0x13 // the sender is leaving gracefully

	maxStreamName = 256
	maxNodeName   = 128
	maxEntries    = 1 << 20

	flagDeleted byte = 1
)

var errShort = errors.New("message truncated")

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEntry(b []byte, e DirEntry) []byte {
	b = binary.AppendUvarint(b, e.Version)
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = appendString(b, e.Stream)
	return appendString(b, e.Node)
}

func encodeEntry(e DirEntry) []byte {
	return appendEntry([]byte{kindEntry}, e)
}

func encodeState(entries []DirEntry) []byte {
	b := []byte{kindState}
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for _, e := range entries {
		b = appendEntry(b, e)
	}
	return b
}

type reader struct {
	b []byte
}

func (r *reader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, errShort
	}
	if n > 1 && r.b[n-1] == 0 {
		return 0, errors.New("non-minimal varint")
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *reader) byte() (byte, error) {
	if len(r.b) < 1 {
		return 0, errShort
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, nil
}

func (r *reader) string(max int) (string, error) {
	n, err := r.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(max) {
		return "", fmt.Errorf("string of %d bytes exceeds %d", n, max)
	}
	if uint64(len(r.b)) < n {
		return "", errShort
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s, nil
}

// head reads what every entry starts with: its version and its flags,
// of which only those in known may be set.
func (r *reader) head(known byte) (version uint64, flags byte, err error) {
	if version, err = r.uvarint(); err != nil {
		return 0, 0, err
	}
	if flags, err = r.byte(); err != nil {
		return 0, 0, err
	}
	if flags&^known != 0 {
		return 0, 0, fmt.Errorf("unknown flags %#x", flags)
	}
	return version, flags, nil
}

func (r *reader) entry() (DirEntry, error) {
	var e DirEntry
	v, flags, err := r.head(flagDeleted)
	if err != nil {
		return e, err
	}
	e.Version, e.Deleted = v, flags&flagDeleted != 0
	if e.Stream, err = r.string(maxStreamName); err != nil {
		return e, fmt.Errorf("stream: %w", err)
	}
	if e.Node, err = r.string(maxNodeName); err != nil {
		return e, fmt.Errorf("node: %w", err)
	}
	if e.Stream == "" || e.Node == "" {
		return e, errors.New("empty stream or node name")
	}
	return e, nil
}

// entries reads a count and that many directory entries (a state).
func (r *reader) entries() ([]DirEntry, error) {
	return readList(r, "directory state", "entry", 5, r.entry)
}

// readList reads a count and that many items of a state (what), each of
// at least min bytes (counts the buffer cannot hold are refused) and read
// by item.
func readList[T any](r *reader, what, name string, min uint64, item func() (T, error)) ([]T, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if n > maxEntries || n > uint64(len(r.b))/min {
		return nil, fmt.Errorf("%s: count %d does not fit %d bytes", what, n, len(r.b))
	}
	out := make([]T, 0, n)
	for i := range n {
		e, err := item()
		if err != nil {
			return nil, fmt.Errorf("%s %s %d: %w", what, name, i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func encodeLeave(node string) []byte {
	return appendString([]byte{kindLeave}, node)
}

// message is a decoded gossip message of ours.
type message struct {
	kind    byte
	entries []DirEntry  // kindEntry (one) and kindState
	flows   []FlowEntry // kindFlow (one) and kindStateFlows
	leaving string      // kindLeave
}

// decodeMessage parses a message received from the network.
func decodeMessage(b []byte) (message, error) {
	r := &reader{b: b}
	kind, err := r.byte()
	if err != nil {
		return message{}, err
	}
	m := message{kind: kind}
	switch kind {
	case kindEntry:
		e, err := r.entry()
		if err != nil {
			return message{}, fmt.Errorf("directory entry: %w", err)
		}
		m.entries = []DirEntry{e}
	case kindState:
		if m.entries, err = r.entries(); err != nil {
			return message{}, err
		}
	case kindFlow, kindStateFlows:
		if err := r.decodeFlows(&m); err != nil {
			return message{}, err
		}
	case kindLeave:
		if m.leaving, err = r.string(maxNodeName); err != nil {
			return message{}, fmt.Errorf("leave: %w", err)
		}
		if m.leaving == "" {
			return message{}, errors.New("leave: empty node name")
		}
	default:
		return message{}, fmt.Errorf("unknown message kind %#x", kind)
	}
	if len(r.b) != 0 {
		return message{}, fmt.Errorf("message kind %#x: %d trailing bytes", kind, len(r.b))
	}
	return m, nil
}

// Ping ack payload: version byte, dimension count, then Vec, Error,
// Adjustment and Height as big-endian float64 — the coordinate serf sends,
// in a fixed binary form instead of msgpack.
const pingVersion byte = 1

func encodeCoordinate(c *coordinate.Coordinate) []byte {
	b := make([]byte, 0, 2+8*(len(c.Vec)+3))
	b = append(b, pingVersion, byte(len(c.Vec)))
	for _, v := range c.Vec {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range []float64{c.Error, c.Adjustment, c.Height} {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func decodeCoordinate(b []byte) (*coordinate.Coordinate, error) {
	if len(b) < 2 {
		return nil, errShort
	}
	if b[0] != pingVersion {
		return nil, fmt.Errorf("unsupported ping payload version %d", b[0])
	}
	dims := int(b[1])
	b = b[2:]
	if len(b) != 8*(dims+3) {
		return nil, fmt.Errorf("ping payload: %d bytes for %d dimensions", len(b), dims)
	}
	f := func() float64 {
		v := math.Float64frombits(binary.BigEndian.Uint64(b))
		b = b[8:]
		return v
	}
	c := &coordinate.Coordinate{Vec: make([]float64, dims)}
	for i := range c.Vec {
		c.Vec[i] = f()
	}
	c.Error, c.Adjustment, c.Height = f(), f(), f()
	if !c.IsValid() {
		return nil, errors.New("ping payload: coordinate has non-finite components")
	}
	return c, nil
}
