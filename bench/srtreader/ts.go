package main

// tsPacketSize is the MPEG-TS packet size; SRT live payloads carry seven.
const tsPacketSize = 188

// ccChecker counts MPEG-TS continuity-counter gaps, the packets a reader
// never got whichever hop lost them (the server's SRT link, a server that
// skipped ahead for a slow reader, or the publisher's link of a server
// that passes TS through). It is fed the payloads as they arrive, in any
// split; it keeps a partial packet across calls and resynchronises on the
// 0x47 sync byte after garbage.
type ccChecker struct {
	last    [8192]int8 // per PID: last counter, -1 before the first packet
	partial [tsPacketSize]byte
	npart   int
	init    bool

	Packets  uint64 // TS packets checked
	Gaps     uint64 // continuity-counter discontinuities
	SyncLost uint64 // bytes skipped to find a sync byte
}

// Feed checks the TS packets in b.
func (c *ccChecker) Feed(b []byte) {
	if !c.init {
		for i := range c.last {
			c.last[i] = -1
		}
		c.init = true
	}
	if c.npart > 0 {
		k := copy(c.partial[c.npart:], b)
		c.npart += k
		b = b[k:]
		if c.npart < tsPacketSize {
			return
		}
		c.packet(c.partial[:])
		c.npart = 0
	}
	for len(b) > 0 {
		if b[0] != 0x47 {
			c.SyncLost++
			b = b[1:]
			continue
		}
		if len(b) < tsPacketSize {
			c.npart = copy(c.partial[:], b)
			return
		}
		c.packet(b[:tsPacketSize])
		b = b[tsPacketSize:]
	}
}

func (c *ccChecker) packet(p []byte) {
	c.Packets++
	pid := int(p[1]&0x1f)<<8 | int(p[2])
	if pid == 0x1fff { // null packets carry no meaningful counter
		return
	}
	afc := p[3] >> 4 & 0x3
	cc := int8(p[3] & 0x0f)
	if afc&0x2 != 0 && p[4] > 0 && p[5]&0x80 != 0 {
		// discontinuity_indicator: the counter may restart
		c.last[pid] = cc
		return
	}
	if afc&0x1 == 0 { // no payload: the counter does not advance
		return
	}
	prev := c.last[pid]
	c.last[pid] = cc
	if prev < 0 || cc == prev { // first packet, or an allowed duplicate
		return
	}
	if cc != (prev+1)&0x0f {
		c.Gaps++
	}
}
