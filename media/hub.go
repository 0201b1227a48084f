package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/events"
)

// Errors from Publish and Subscribe.
var (
	ErrStreamBusy      = errors.New("stream is already being published")
	ErrNoStream        = errors.New("no such stream")
	ErrTooManyPubs     = errors.New("too many publishers on this node")
	ErrTooManyReaders  = errors.New("too many readers on this stream")
	ErrTakenOver       = errors.New("another publisher took over the stream")
	ErrBitrate         = errors.New("publisher exceeded the maximum bitrate")
	ErrBadStreamKey    = errors.New("bad stream key: want app/name")
	ErrHubClosed       = errors.New("server is shutting down")
	ErrPublisherClosed = errors.New("publisher is closed")
)

// HubConfig holds the data plane limits.
type HubConfig struct {
	// What a stream keeps per lane: the newest GOP plus the packets of
	// at most RingSlackTime and RingSlack bytes before it (RingSlack
	// negative: none; RingSlackTime 0: no time bound, what a node uses:
	// see listeners.HubConfig), at most
	// RingBytes and RingPackets packets (rounded up to a power of two)
	// in all. Of the slack only what an attached reader has yet to read
	// is kept. A reader further behind than the slack when a keyframe
	// comes skips to it.
	RingPackets      int
	RingBytes        int64
	RingSlack        int64
	RingSlackTime    time.Duration
	MaxReaderLag     time.Duration // a reader further behind than this skips to the newest keyframe
	MaxSkips         int           // skips within SlowReaderWindow before a reader is disconnected
	SlowReaderWindow time.Duration
	ReconnectGrace   time.Duration // readers stay while a publisher reconnects
	Takeover         bool          // a second publisher replaces the first instead of being refused
	MaxPublishers    int           // 0 = unlimited
	MaxReaders       int           // per stream, 0 = unlimited
	MaxBitrate       int64         // bits/s per publisher, 0 = unlimited
	BitrateWindow    time.Duration // averaging window for MaxBitrate
	// Clock, if set, replaces time.Now for the ingest meter (rates and
	// MaxBitrate), so tests can drive it without waiting.
	Clock func() time.Time
	// OnMissing is called (in its own goroutine) when a subscriber waits
	// for a stream that is not live, so the node can pull it on demand.
	OnMissing func(key string)
	// Events receives the streams' StreamPublished, StreamReconnected and
	// StreamEnded, published under the hub lock where the state changes,
	// so they are in order per stream; nil = none.
	Events *events.Bus
}

// DefaultHubConfig returns the built-in defaults.
func DefaultHubConfig() HubConfig {
	return HubConfig{
		RingPackets:      4096,
		RingBytes:        32 << 20,
		RingSlack:        64 << 10,
		MaxReaderLag:     4 * time.Second,
		MaxSkips:         3,
		SlowReaderWindow: 30 * time.Second,
		ReconnectGrace:   5 * time.Second,
		BitrateWindow:    4 * time.Second,
	}
}

// Hub is the registry of live streams on a node.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu      sync.Mutex
	streams map[string]*Stream
	changed chan struct{} // closed and replaced whenever a stream goes live
	closed  bool
	// publishers counts the streams with an attached publisher. It goes
	// up in Publish (under mu) and down where a stream's pub is cleared
	// (under that stream's lock), exactly once per publisher, so a
	// takeover racing the old publisher's own detach cannot count twice.
	publishers atomic.Int64

	// limits read on the publish path without the hub lock
	grace   atomic.Int64
	bitrate atomic.Int64
	lag     atomic.Int64 // MaxReaderLag, which readers consult on every packet
}

// NewHub returns an empty hub.
func NewHub(cfg HubConfig, log *slog.Logger) *Hub {
	d := DefaultHubConfig()
	if cfg.RingPackets <= 0 {
		cfg.RingPackets = d.RingPackets
	}
	if cfg.RingBytes <= 0 {
		cfg.RingBytes = d.RingBytes
	}
	switch {
	case cfg.RingSlack == 0:
		cfg.RingSlack = d.RingSlack
	case cfg.RingSlack < 0: // none: only the GOP
		cfg.RingSlack = 0
	}
	cfg.RingSlackTime = max(cfg.RingSlackTime, 0)
	if cfg.MaxSkips <= 0 {
		cfg.MaxSkips = d.MaxSkips
	}
	if cfg.SlowReaderWindow <= 0 {
		cfg.SlowReaderWindow = d.SlowReaderWindow
	}
	if cfg.BitrateWindow <= 0 {
		cfg.BitrateWindow = d.BitrateWindow
	}
	h := &Hub{cfg: cfg, log: log, streams: map[string]*Stream{}, changed: make(chan struct{})}
	h.grace.Store(int64(cfg.ReconnectGrace))
	h.lag.Store(int64(cfg.MaxReaderLag))
	h.bitrate.Store(cfg.MaxBitrate)
	return h
}

// SetLimits changes the limits that can change live (reload).
func (h *Hub) SetLimits(maxPubs, maxReaders int, maxBitrate int64, takeover bool, grace time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg.MaxPublishers, h.cfg.MaxReaders, h.cfg.MaxBitrate = maxPubs, maxReaders, maxBitrate
	h.cfg.Takeover, h.cfg.ReconnectGrace = takeover, grace
	h.grace.Store(int64(grace))
	h.bitrate.Store(maxBitrate)
}

// MaxBitrate returns the per-publisher bitrate limit in bits/s (0 = none).
func (h *Hub) MaxBitrate() int64 { return h.maxBitrate() }

// SetMaxReaderLag changes MaxReaderLag for every reader, attached or not.
func (h *Hub) SetMaxReaderLag(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg.MaxReaderLag = d
	h.lag.Store(int64(d))
}

// CheckKey validates a stream key of the form app/name.
func CheckKey(key string) error {
	app, name, ok := strings.Cut(key, "/")
	if !ok || app == "" || name == "" || len(key) > 256 {
		return fmt.Errorf("%w (got %q)", ErrBadStreamKey, key)
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e || c == '?' || c == '#' || c == '%' || c == '\\' {
			return fmt.Errorf("%w: %q has a character outside printable ASCII or one of ?#%%\\", ErrBadStreamKey, key)
		}
	}
	if strings.Count(name, "/") > 0 && strings.Contains(key, "..") {
		return fmt.Errorf("%w: %q", ErrBadStreamKey, key)
	}
	return nil
}

// PublisherInfo describes a publisher for the API.
type PublisherInfo struct {
	Protocol string    `json:"protocol"`
	Remote   string    `json:"remote"`
	Since    time.Time `json:"since"`
	// Native is the format the publisher writes.
	Native Format `json:"-"`
	// Takeover replaces a live publisher of the stream even when the hub
	// refuses second publishers (a publisher's own reconnect).
	Takeover bool `json:"-"`
	// Continues says the new session carries the same timeline as the
	// one it replaces (a center's pull moved to another copy of the same
	// upstream): packets the previous session delivered are dropped
	// instead of the session being rebased, and readers go on without
	// waiting for a keyframe, so the switch neither repeats nor skips.
	Continues bool `json:"-"`
}

// Publish attaches a publisher to key. While a publisher is live a second
// one is refused with ErrStreamBusy, or takes over when the hub allows it.
// A publisher that comes back within the reconnect grace keeps the readers.
func (h *Hub) Publish(key string, info PublisherInfo) (*Publisher, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if info.Since.IsZero() {
		info.Since = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	s := h.streams[key]
	if s != nil {
		s.mu.Lock()
		ended := s.ended // its grace ran out just now: start afresh
		s.mu.Unlock()
		if ended {
			h.noteEndedLocked(s, nil) // before the new stream's published
			s = nil
		}
	}
	var old *Publisher
	if s != nil {
		s.mu.Lock()
		old = s.pub
		if old != nil && !h.cfg.Takeover && !info.Takeover {
			s.mu.Unlock()
			return nil, fmt.Errorf("%s: %w by %s since %s", key, ErrStreamBusy, old.info.Remote, old.info.Since.Format(time.RFC3339))
		}
		s.mu.Unlock()
	}
	takeover := old != nil
	// a takeover replaces a publisher and adds none: checked after the
	// detach, a limit lowered by a reload would kick the old publisher
	// and refuse the new one, leaving the stream with neither
	if !takeover && h.cfg.MaxPublishers > 0 && h.publishers.Load() >= int64(h.cfg.MaxPublishers) {
		return nil, fmt.Errorf("%w (limit %d)", ErrTooManyPubs, h.cfg.MaxPublishers)
	}
	if takeover {
		// a false return: old detached by itself meanwhile and counted
		// itself out
		old.detach(ErrTakenOver)
	}
	h.publishers.Add(1) // before attach: p's stream may count it out at once
	var p *Publisher
	var ev events.Event = events.StreamReconnected{Stream: key, Protocol: info.Protocol, Remote: info.Remote, Takeover: takeover}
	if s != nil {
		p = s.attach(info) // nil: it ended since the check above
		if p == nil {
			h.noteEndedLocked(s, nil) // before the new stream's published
		}
	}
	if p == nil {
		s = newStream(h, key)
		h.streams[key] = s
		p = s.attach(info)
		ev = events.StreamPublished{Stream: key, Protocol: info.Protocol, Remote: info.Remote}
	}
	close(h.changed)
	h.changed = make(chan struct{})
	h.cfg.Events.Publish(ev)
	return p, nil
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	Format Format
	Info   ReaderInfo
	// Wait is how long to wait for a publisher when the stream is not live.
	Wait time.Duration
	// Coalesce batches delivery: Next returns at most once per window.
	Coalesce time.Duration
}

// Subscribe attaches a reader to key.
func (h *Hub) Subscribe(ctx context.Context, key string, opt SubscribeOptions) (*Reader, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if opt.Info.Since.IsZero() {
		opt.Info.Since = time.Now()
	}
	var deadline <-chan time.Time
	if opt.Wait > 0 {
		t := time.NewTimer(opt.Wait)
		defer t.Stop()
		deadline = t.C
	}
	asked := false
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		s := h.streams[key]
		changed := h.changed
		maxReaders := h.cfg.MaxReaders
		h.mu.Unlock()
		if s != nil {
			r, err := s.subscribe(opt, maxReaders)
			if err == nil || !errors.Is(err, ErrNoStream) {
				return r, err
			}
		}
		if deadline == nil {
			return nil, fmt.Errorf("%s: %w", key, ErrNoStream)
		}
		if !asked && h.cfg.OnMissing != nil {
			asked = true
			go h.cfg.OnMissing(key)
		}
		select {
		case <-changed:
		case <-deadline:
			return nil, fmt.Errorf("%s: %w (waited %s)", key, ErrNoStream, opt.Wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// TakesOver reports whether a second publisher replaces the first.
func (h *Hub) TakesOver() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg.Takeover
}

// Stream returns the live stream with key, or nil.
func (h *Hub) Stream(key string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[key]
}

// Streams returns all streams sorted by key.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// PublisherCount returns how many publishers are attached.
func (h *Hub) PublisherCount() int {
	return int(h.publishers.Load())
}

// Close ends every stream: readers get ErrStreamEnded after the packets
// already written, publishers get ErrHubClosed on their next write.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	streams := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	for _, s := range streams {
		s.end(ErrHubClosed)
	}
}

func (h *Hub) removeStream(s *Stream, reason error) {
	h.mu.Lock()
	if h.streams[s.key] == s {
		delete(h.streams, s.key)
	}
	h.noteEndedLocked(s, reason)
	h.mu.Unlock()
}

// noteEndedLocked publishes s's StreamEnded once. Publish calls it too,
// when it replaces a stream whose grace ran out before removeStream got
// the lock: the end comes before the next life's StreamPublished.
func (h *Hub) noteEndedLocked(s *Stream, reason error) {
	if s.endNoted {
		return
	}
	s.endNoted = true
	why := "publisher gone"
	if reason != nil {
		why = reason.Error()
	}
	h.cfg.Events.Publish(events.StreamEnded{Stream: s.key, Reason: why})
}
