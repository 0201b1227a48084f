package webrtc

// IngestDrop is one total of what the server's WHIP sessions dropped.
type IngestDrop struct {
	Track  string // "video" or "audio"
	Reason string // bad_header, payload_type, lost, ... (see dropNames)
	Count  uint64 // packets, or frames for broken_frame and waiting_keyframe
}

// trackReasons are the reasons each track drops for.
var trackReasons = [numTracks][]int{
	trackVideo: {dropHeader, dropPadding, dropPayloadType, dropLate, dropStray, dropLost, dropBroken, dropWaitKey},
	trackAudio: {dropHeader, dropPadding, dropPayloadType, dropBadOpus},
}

// IngestDrops returns what every WHIP session since the start dropped,
// one total for each track and reason it can drop for (zeros included).
func (s *Server) IngestDrops() []IngestDrop {
	var out []IngestDrop
	for tr, reasons := range trackReasons {
		for _, r := range reasons {
			out = append(out, IngestDrop{Track: trackNames[tr], Reason: dropNames[r], Count: s.drops[tr][r].Load()})
		}
	}
	return out
}
