// Command hopdelay measures the delay one RTMP server hop adds: it
// publishes an FLV clip at its own rate to rtmp://HOST:PORT/APP/NAME and
// plays the same stream back from the server (over RTMP, or over HTTP-FLV
// with -play http://HOST:PORT/APP/NAME.flv), and for every video frame
// takes the time between the publisher writing it (the tee: the frame as
// it leaves the publisher) and the player receiving it. Frames are matched
// by length and hash of their body, so a server that rebases timestamps
// is measured too. It prints one JSON object with p50/p95/p99/max in ms.
//
//	hopdelay -url rtmp://127.0.0.1:1935/live/delay -clip clip.flv -duration 20s
//	hopdelay -url rtmp://127.0.0.1:1935/live/delay -play http://127.0.0.1:8080/live/delay.flv -clip clip.flv
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relaymesh/relaymesh/bench/rtmpdial"
	"github.com/relaymesh/relaymesh/media/link/flv"
	"github.com/relaymesh/relaymesh/media/unit"
)

// Result is what hopdelay prints.
type Result struct {
	Label    string  `json:"label,omitempty"`
	URL      string  `json:"url"`
	Play     string  `json:"play"`
	Sent     int     `json:"video_frames_sent"`
	Matched  int     `json:"video_frames_matched"`
	P50ms    float64 `json:"p50_ms"`
	P95ms    float64 `json:"p95_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Duration float64 `json:"seconds"`
}

type frameKey struct {
	n int
	h uint64
}

func keyOf(b []byte) frameKey {
	f := fnv.New64a()
	f.Write(b)
	return frameKey{len(b), f.Sum64()}
}

func main() {
	u := flag.String("url", "rtmp://127.0.0.1:1935/live/delay", "stream to publish (and play, without -play)")
	play := flag.String("play", "", "where to play it: an http:// HTTP-FLV URL, or the RTMP -url (default)")
	clip := flag.String("clip", "", "FLV clip to publish (at its own rate)")
	dur := flag.Duration("duration", 20*time.Second, "how long to publish")
	skip := flag.Duration("skip", 3*time.Second, "frames in the first this long are not counted (the player's GOP-cache burst)")
	label := flag.String("label", "", "label copied into the JSON")
	flag.Parse()
	if *play == "" {
		*play = *u
	}
	res, err := run(*u, *play, *clip, *dur, *skip)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hopdelay:", err)
		os.Exit(1)
	}
	res.Label = *label
	json.NewEncoder(os.Stdout).Encode(res)
}

// videoSource yields the bodies of the video frames a player receives.
type videoSource func() ([]byte, error)

// player starts playing play (RTMP or HTTP-FLV) and returns its video
// frames; closing ends it.
func player(ctx context.Context, play string) (videoSource, error) {
	if strings.HasPrefix(play, "http://") || strings.HasPrefix(play, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, play, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("player: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("player: %s", resp.Status)
		}
		go func() { <-ctx.Done(); resp.Body.Close() }()
		fr := flv.NewReader(resp.Body)
		return func() ([]byte, error) {
			for {
				p, err := fr.ReadPacket()
				if err != nil {
					return nil, err
				}
				if p.Kind == unit.KindVideo && !p.Header {
					return p.Payload, nil
				}
			}
		}, nil
	}
	pl, nc, name, err := rtmpdial.Dial(play, 5*time.Second, nil)
	if err != nil {
		return nil, fmt.Errorf("player: %w", err)
	}
	go func() { <-ctx.Done(); nc.Close() }()
	if err := pl.WriteCommand(8, 1, "play", 0, nil, name, float64(-2000)); err != nil {
		return nil, err
	}
	return func() ([]byte, error) {
		for {
			msg, err := pl.Read()
			if err != nil {
				return nil, err
			}
			if msg.Type == uint8(unit.KindVideo) {
				return msg.Body, nil
			}
		}
	}, nil
}

func run(u, play, clip string, dur, skip time.Duration) (*Result, error) {
	c, err := rtmpdial.LoadClip(clip)
	if err != nil {
		return nil, err
	}

	pub, pnc, name, err := rtmpdial.Dial(u, 5*time.Second, nil)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	defer pnc.Close()
	if err := rtmpdial.Publish(pub, name); err != nil {
		return nil, err
	}
	go rtmpdial.Discard(pub) // acks, pings

	var mu sync.Mutex
	sent := map[frameKey]time.Time{}
	var delays []time.Duration
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), dur+10*time.Second)
	defer cancel()

	next, err := player(ctx, play)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			body, err := next()
			if err != nil {
				return
			}
			now := time.Now()
			k := keyOf(body)
			mu.Lock()
			if t, ok := sent[k]; ok && t.Sub(start) > skip {
				delays = append(delays, now.Sub(t))
			}
			mu.Unlock()
		}
	}()

	nsent := 0
	for _, p := range c.Headers {
		if err := pub.Write(rtmpdial.Message(p, 0)); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	pctx, stop := context.WithDeadline(ctx, start.Add(dur))
	defer stop()
	err = c.Replay(pctx, start, 0, true, func(p *unit.Packet, ts int64) error {
		if p.Kind == unit.KindVideo {
			mu.Lock()
			sent[keyOf(p.Payload)] = time.Now()
			mu.Unlock()
			nsent++
		}
		return pub.Write(rtmpdial.Message(p, ts))
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	time.Sleep(time.Second) // the last frames arrive
	cancel()
	mu.Lock()
	defer mu.Unlock()
	res := &Result{URL: u, Play: play, Sent: nsent, Matched: len(delays), Duration: time.Since(start).Seconds()}
	if len(delays) == 0 {
		return res, errors.New("no frame came back through the server")
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	pct := func(q float64) float64 {
		d := delays[min(len(delays)-1, int(q*float64(len(delays))))]
		return float64(d.Microseconds()) / 1000
	}
	res.P50ms, res.P95ms, res.P99ms, res.MaxMs = pct(0.50), pct(0.95), pct(0.99), pct(1)
	return res, nil
}
