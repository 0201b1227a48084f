package link

import "testing"

// TestStatusCounters: Session counts one connection, Total all of them,
// although SRT's own counters restart with each connection.
func TestStatusCounters(t *testing.T) {
	type step struct {
		newSession bool
		srt        *SRTStats // the connection's accumulated counters
		bytes      int
	}
	cases := []struct {
		name                 string
		steps                []step
		wantSession, wantTot Counters
		wantSessions         int
	}{
		{"one session", []step{
			{newSession: true, srt: &SRTStats{PacketsSent: 5, WireBytes: 6800}},
			{bytes: 1316 * 5},
			{srt: &SRTStats{PacketsSent: 11, Retransmits: 1, WireBytes: 14960}},
		}, Counters{Bytes: 6580, PacketsSent: 11, Retransmits: 1, WireBytes: 14960},
			Counters{Bytes: 6580, PacketsSent: 11, Retransmits: 1, WireBytes: 14960}, 1},
		{"second session restarts SRT counters", []step{
			{newSession: true, srt: &SRTStats{}},
			{bytes: 131600},
			{srt: &SRTStats{PacketsSent: 100, Drops: 2, WireBytes: 136000}}, // the last sample at the end
			{newSession: true, srt: &SRTStats{}},
			{bytes: 3948},
			{srt: &SRTStats{PacketsSent: 3, WireBytes: 4080}},
		}, Counters{Bytes: 3948, PacketsSent: 3, WireBytes: 4080},
			Counters{Bytes: 135548, PacketsSent: 103, Drops: 2, WireBytes: 140080}, 2},
		{"a failed attempt keeps the last session", []step{
			{newSession: true, bytes: 700},
			{newSession: true}, // connect failed: nothing counted
		}, Counters{Bytes: 700}, Counters{Bytes: 700}, 1},
		{"SRT bytes are those of the last sample", []step{
			{newSession: true, srt: &SRTStats{}},
			{bytes: 1316},
			{srt: &SRTStats{PacketsSent: 1, WireBytes: 1360}},
			{bytes: 1316}, // sent after the sample
		}, Counters{Bytes: 1316, PacketsSent: 1, WireBytes: 1360},
			Counters{Bytes: 1316, PacketsSent: 1, WireBytes: 1360}, 1},
		{"RTMP: bytes only", []step{
			{newSession: true, bytes: 10},
			{bytes: 20},
			{newSession: true, bytes: 5},
		}, Counters{Bytes: 5}, Counters{Bytes: 35}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr tracker
			for _, s := range c.steps {
				if s.newSession {
					tr.newSession()
				}
				if s.srt != nil {
					tr.setSRT(s.srt)
				}
				if s.bytes > 0 {
					tr.addBytes(s.bytes)
				}
			}
			st := tr.status()
			if st.Session != c.wantSession {
				t.Errorf("Session = %+v, want %+v", st.Session, c.wantSession)
			}
			if st.Total != c.wantTot {
				t.Errorf("Total = %+v, want %+v", st.Total, c.wantTot)
			}
			if st.Bytes != st.Total.Bytes {
				t.Errorf("Bytes = %d, Total.Bytes = %d", st.Bytes, st.Total.Bytes)
			}
			if st.Sessions != c.wantSessions {
				t.Errorf("Sessions = %d, want %d", st.Sessions, c.wantSessions)
			}
		})
	}
}
