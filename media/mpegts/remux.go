package mpegts

import "github.com/relaymesh/relaymesh/media/unit"

// FLVRemuxer turns TS-lane packets back into FLV-lane packets: the hub
// rebuilds the FLV lane of an SRT publisher from its TS lane's GOP when the
// first FLV reader comes (the FLV lane of such a stream is filled only
// while somebody reads it). Packets of other kinds are ignored; TS-lane
// packets the Demuxer produces again are handed to emit as well.
type FLVRemuxer struct{ d *Demuxer }

// NewFLVRemuxer returns an FLVRemuxer waiting for a PAT.
func NewFLVRemuxer() *FLVRemuxer { return &FLVRemuxer{d: NewDemuxer()} }

// Remux feeds one TS-lane packet.
func (r *FLVRemuxer) Remux(p *unit.Packet, emit func(*unit.Packet)) error {
	if p.Kind != unit.KindTS {
		return nil
	}
	return r.d.Feed(p.Payload, emit)
}

// Flush emits what is held back (the last access unit).
func (r *FLVRemuxer) Flush(emit func(*unit.Packet)) error { return r.d.Flush(emit) }
