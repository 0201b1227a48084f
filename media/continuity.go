package media

// AddContinuityErrors counts n MPEG-TS continuity-counter discontinuities
// that the publisher's demuxer found in its input (lost or reordered TS
// packets): a TS publisher calls it as they are found, so health rules can
// judge a source that is connected but damaged.
func (p *Publisher) AddContinuityErrors(n uint64) {
	if n > 0 {
		p.s.ccErrors.Add(n)
	}
}

// ContinuityErrors returns the MPEG-TS continuity errors counted in the
// stream's input over all its publisher sessions (0 for a stream that is
// not published as MPEG-TS).
func (s *Stream) ContinuityErrors() uint64 { return s.ccErrors.Load() }
