package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/unit"
	"github.com/relaymesh/relaymesh/netutil"
)

// Deps are what a task needs from the node.
type Deps struct {
	Hub *media.Hub
	Log *slog.Logger
	// Local maps a destination URL that is this node's own ingest to its
	// hub stream key, so the task publishes there directly.
	Local func(dest string) (key string, ok bool)
	// CacheDir holds downloaded playlist items.
	CacheDir string
	// Policy is the outbound fetch policy of downloads, live sources and
	// destinations (nil or a nil result: none).
	Policy func() *netutil.FetchPolicy
	// MaxDownload caps one downloaded item in bytes and DownloadTimeout
	// its time (nil or 0: no cap).
	MaxDownload     func() int64
	DownloadTimeout func() time.Duration
}

func (d *Deps) policy() *netutil.FetchPolicy {
	if d.Policy == nil {
		return nil
	}
	return d.Policy()
}

// Probe fetches and opens every playlist item, so an unreadable file or
// an unsupported codec is refused before the task starts. The error names
// the item as source.playlist[i].
func Probe(ctx context.Context, d *Deps, s *Spec) ([]string, error) {
	paths := make([]string, len(s.Source.Playlist))
	for i, p := range s.Source.Playlist {
		lp, err := d.fetch(ctx, p)
		if err == nil {
			var it item
			if it, err = openItem(lp); err == nil {
				err = checkAudio(it.Info())
				it.Close()
			}
		}
		if err != nil {
			return nil, itemError(i, p, lp, err)
		}
		paths[i] = lp
	}
	return paths, nil
}

// AAC sample rates a task carries (the live-center console's range).
const (
	MinSampleRate = 16000
	MaxSampleRate = 44100
)

// ErrSampleRate is returned for AAC outside MinSampleRate..MaxSampleRate.
var ErrSampleRate = errors.New("AAC sample rate out of range")

// checkAudio refuses AAC at a sample rate the task does not carry.
func checkAudio(ci unit.CodecInfo) error {
	if ci.Audio == "AAC" && ci.SampleRate != 0 && (ci.SampleRate < MinSampleRate || ci.SampleRate > MaxSampleRate) {
		return fmt.Errorf("%w: %d Hz; tasks take %d to %d Hz (resample it, e.g. ffmpeg -ar 44100)", ErrSampleRate, ci.SampleRate, MinSampleRate, MaxSampleRate)
	}
	return nil
}

// itemError names playlist item i by what the user wrote (its URL),
// never by the local cache file it was downloaded to.
func itemError(i int, item, local string, err error) error {
	msg := err.Error()
	if local != "" && local != item {
		msg = strings.ReplaceAll(msg, local, item)
	}
	if !strings.Contains(msg, item) {
		msg = item + ": " + msg
	}
	return &namedError{msg: fmt.Sprintf("source.playlist[%d]: %s", i, msg), err: err}
}

type namedError struct {
	msg string
	err error
}

func (e *namedError) Error() string { return e.msg }
func (e *namedError) Unwrap() error { return e.err }

// Event is a webhook payload.
type Event struct {
	Event  string    `json:"event"` // started, item-changed, stopped, failed, finished
	Task   string    `json:"task"`
	State  string    `json:"state"`
	Time   time.Time `json:"time"`
	Item   *int      `json:"item,omitempty"` // playlist index
	URL    string    `json:"url,omitempty"`  // the item
	Loop   int       `json:"loop,omitempty"` // 1-based pass through the playlist
	Reason string    `json:"reason,omitempty"`
}

// player plays one task until ctx ends or the playlist is done.
type player struct {
	spec   Spec
	paths  []string
	deps   *Deps
	onItem func(i, loop int)
	from   Position // where to begin (a resumed task); zero: the start

	pusher *link.Pusher
	puller *link.Puller
}

func (p *player) destKey() (string, bool) {
	if p.deps.Local != nil {
		if k, ok := p.deps.Local(p.spec.Destination.URL); ok {
			return k, true
		}
	}
	return p.spec.Key(), false
}

// newPlayer builds a player and its push/pull clients.
func newPlayer(spec Spec, paths []string, deps *Deps) *player {
	p := &player{spec: spec, paths: paths, deps: deps}
	key, local := p.destKey()
	if !local {
		d := spec.Destination
		t := link.Target{URL: d.URL, Passphrase: d.Passphrase, PBKeyLen: d.PBKeyLen, Latency: time.Duration(d.LatencyMS) * time.Millisecond}
		p.pusher = link.NewPusher(deps.Hub, link.PushConfig{Key: key, Persistent: true,
			Next: func(int, error) (link.Target, error) { t.Policy = deps.policy(); return t, nil }}, deps.Log)
	}
	if spec.Source.URL != "" {
		t := link.Target{URL: spec.Source.URL}
		p.puller = link.NewPuller(deps.Hub, link.PullConfig{Key: key,
			Next: func(int, error) (link.Target, error) { t.Policy = deps.policy(); return t, nil }}, deps.Log)
	}
	return p
}

// run returns nil when the playlist is done, ctx.Err() when stopped.
func (p *player) run(ctx context.Context) error {
	key, _ := p.destKey()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	pusher, puller := p.pusher, p.puller
	go func() {
		defer close(done)
		if pusher != nil {
			pusher.Run(ctx)
		}
	}()
	if puller != nil {
		puller.Run(ctx)
		return ctx.Err()
	}
	pub, err := p.deps.Hub.Publish(key, media.PublisherInfo{Protocol: "task", Remote: "task " + p.spec.ID})
	if err != nil {
		return fmt.Errorf("publish %s: %w", key, err)
	}
	defer pub.Close()
	start := time.Now()
	var base int64
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	first, from := max(p.from.Pass, 1), p.from.Item
	for loop := first; p.spec.Loop < 0 || loop <= p.spec.Loop; loop++ {
		for i, path := range p.paths {
			if loop == first && i < from {
				continue
			}
			it, err := openItem(path)
			if err != nil {
				return itemError(i, p.spec.Source.Playlist[i], path, err)
			}
			if p.onItem != nil {
				p.onItem(i, loop)
			}
			last, err := p.play(ctx, it, pub, start, base, timer)
			it.Close()
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				return itemError(i, p.spec.Source.Playlist[i], path, err)
			}
			base = last + 40 // one frame after the item's last packet
		}
	}
	return nil
}

// play writes one item paced at real time from base (ms on the task's
// timeline) and returns the last timestamp written.
func (p *player) play(ctx context.Context, it item, pub *media.Publisher, start time.Time, base int64, timer *time.Timer) (int64, error) {
	last := base
	for _, h := range it.Headers() {
		if err := pub.Write(&unit.Packet{Kind: h.Kind, Time: base, Header: true, Payload: h.Payload}); err != nil {
			return last, err
		}
	}
	for {
		pkt, err := it.Next()
		if err == io.EOF {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		t := base + max(pkt.Time, 0)
		if wait := time.Until(start.Add(time.Duration(t) * time.Millisecond)); wait > 2*time.Millisecond {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return last, ctx.Err()
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return last, ctx.Err()
		}
		pkt.Time = t
		if err := pub.Write(pkt); err != nil {
			return last, err
		}
		last = max(last, t)
	}
}
