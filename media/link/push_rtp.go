package link

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaymesh/relaymesh/media/srt"
)

// Message is one SRT message shared by the legs that send it (a dual-path
// RTP packet goes out on two links); the last Release recycles it.
type Message struct {
	B    []byte
	refs atomic.Int32
	at   time.Time // when it was made (MessageSenderConfig.MaxAge)
}

var messages = sync.Pool{New: func() any { return &Message{B: make([]byte, 0, srt.MessageSize)} }}

// NewMessage copies b into a pooled message that refs senders release.
func NewMessage(b []byte, refs int) *Message {
	m := messages.Get().(*Message)
	m.B = append(m.B[:0], b...)
	m.refs.Store(int32(refs))
	m.at = time.Now()
	return m
}

// Release drops one reference.
func (m *Message) Release() {
	if m.refs.Add(-1) == 0 {
		messages.Put(m)
	}
}

// MessageSenderConfig configures a MessageSender.
type MessageSenderConfig struct {
	Key        string                                           // the stream, for logs
	Next       func(attempt int, lastErr error) (Target, error) // before each (re)connect: an srt:// target
	Queue      int                                              // messages waiting while the link is slow or down (default 512)
	MinBackoff time.Duration
	MaxBackoff time.Duration
	OnState    func(Status)
	// MaxAge drops (counted in Dropped) a message that waited longer
	// than this in the queue, and a full queue drops its oldest message
	// rather than the new one, so a link that was down or slow to come
	// up resumes near the live edge, without a hole, instead of
	// replaying the queue: a dual-path leg whose center came up 3 s
	// after the stream's start sent the stream's first 512 messages,
	// then what came after the queue filled, and the merge it started
	// there had a hole of seconds (TestClusterDualPath). 0 = neither.
	MaxAge time.Duration
	// SessionMaxAge, when set, is asked as each session starts: a
	// positive duration below MaxAge bounds the age of what that
	// session sends instead (a dual-path leg that comes up while the
	// other leg has long been delivering sends only what a merge can
	// still use).
	SessionMaxAge func() time.Duration
}

// MessageSender sends messages over SRT as they are queued, reconnecting
// as a Pusher does. A full queue drops the newest message (counted): a
// dual-path leg never holds up its stream, the other leg covers.
type MessageSender struct {
	loop
	cfg     MessageSenderConfig
	q       chan *Message
	dropped atomic.Uint64
	sent    atomic.Uint64
}

// NewMessageSender returns a sender; Run starts it.
func NewMessageSender(cfg MessageSenderConfig, log *slog.Logger) *MessageSender {
	if cfg.Queue <= 0 {
		cfg.Queue = 512
	}
	s := &MessageSender{cfg: cfg, q: make(chan *Message, cfg.Queue)}
	s.setup("push", "target", cfg.Key, cfg.Next, cfg.MinBackoff, cfg.MaxBackoff, cfg.OnState, log)
	return s
}

// Send queues m; it never blocks. The sender releases m. A full queue
// drops m, or with MaxAge its oldest message (the newest are the ones a
// link that comes back can still use).
func (s *MessageSender) Send(m *Message) {
	if s.enqueue(m) {
		return
	}
	if s.cfg.MaxAge > 0 {
		select {
		case old := <-s.q:
			s.dropped.Add(1)
			old.Release()
		default:
		}
		if s.enqueue(m) {
			return
		}
	}
	s.dropped.Add(1)
	m.Release()
}

// enqueue queues m if the queue has room.
func (s *MessageSender) enqueue(m *Message) bool {
	select {
	case s.q <- m:
		return true
	default:
		return false
	}
}

// Status returns the link's status.
func (s *MessageSender) Status() Status { return s.tr.status() }

// Pending is the number of queued messages.
func (s *MessageSender) Pending() int { return len(s.q) }

// Sent and Dropped count messages written to SRT and dropped (a full
// queue, or older than MaxAge).
func (s *MessageSender) Sent() uint64    { return s.sent.Load() }
func (s *MessageSender) Dropped() uint64 { return s.dropped.Load() }

// Run sends until ctx ends or Next returns ErrStop. What is queued at the
// end is released.
func (s *MessageSender) Run(ctx context.Context) error {
	if s.cfg.Next == nil {
		return fmt.Errorf("send %s: no Next function", s.cfg.Key)
	}
	defer func() {
		s.tr.set(StateStopped, "", nil)
		for {
			select {
			case m := <-s.q:
				m.Release()
			default:
				return
			}
		}
	}()
	return s.run(ctx, func(ctx context.Context, t Target) sessionEnd {
		ran, err := s.session(ctx, t)
		return sessionEnd{ran: ran, err: err}
	})
}

func (s *MessageSender) session(ctx context.Context, t Target) (time.Duration, error) {
	sch, u, err := scheme(t.URL)
	if err != nil {
		return 0, err
	}
	if sch != "srt" {
		return 0, fmt.Errorf("send to %s: %w %q (want srt)", Redact(t.URL), ErrUnsupportedScheme, sch)
	}
	target := Redact(t.URL)
	s.tr.newSession()
	s.tr.set(StateConnecting, target, nil)
	if err := pinSRTHost(ctx, t, u); err != nil {
		return 0, err
	}
	return s.sendSRT(ctx, t, u)
}

func (s *MessageSender) sendSRT(ctx context.Context, t Target, u *url.URL) (time.Duration, error) {
	c, err := dialSRTSender(ctx, t, u, &s.tr, s.log)
	if err != nil {
		return 0, err
	}
	defer c.close()
	start := time.Now()
	maxAge := s.cfg.MaxAge
	if f := s.cfg.SessionMaxAge; f != nil && maxAge > 0 {
		if d := f(); d > 0 && d < maxAge {
			maxAge = d
		}
	}
	for {
		select {
		case <-ctx.Done():
			c.linger = true // the peer gets what was sent
			return time.Since(start), nil
		case <-c.conn.Done():
			return time.Since(start), c.gone()
		case m := <-s.q:
			if maxAge > 0 && time.Since(m.at) > maxAge {
				s.dropped.Add(1)
				m.Release()
				continue
			}
			err := c.send(ctx, m.B)
			m.Release()
			switch {
			case err != nil:
				return time.Since(start), err
			case ctx.Err() != nil:
				return time.Since(start), nil
			}
			s.sent.Add(1)
		}
	}
}
