// Package testnode runs a media node for tests: a hub with RTMP, HTTP-FLV
// and, if asked, SRT listeners on loopback ports the kernel picks, all
// stopped when the test ends. It is apart from testmedia because the srt
// package's own tests use testmedia and must not import themselves.
package testnode

import (
	"context"
	"sync"
	"testing"

	"github.com/relaymesh/relaymesh/internal/testmedia"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/httpflv"
	"github.com/relaymesh/relaymesh/media/rtmp"
	"github.com/relaymesh/relaymesh/media/srt"
)

// Config says what to run; every Listen is replaced by 127.0.0.1:0.
type Config struct {
	Name string // heads the log printed when the test fails
	Hub  media.HubConfig
	RTMP rtmp.Config
	FLV  httpflv.Config
	SRT  *srt.Config // nil: no SRT listener
}

// Node is a running hub and its listeners.
type Node struct {
	Hub  *media.Hub
	RTMP *rtmp.Server
	FLV  *httpflv.Server
	SRT  *srt.Server // nil unless Config.SRT was set
	Logs *testmedia.LogBuffer

	srtStop context.CancelFunc
	srtDone chan struct{}
}

// Start starts a node; it is stopped when the test ends.
func Start(t testing.TB, cfg Config) *Node {
	t.Helper()
	log, logs := testmedia.Logger(t, cfg.Name)
	if cfg.Name != "" {
		log = log.With("node", cfg.Name)
	}
	n := &Node{Hub: media.NewHub(cfg.Hub, log), Logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		n.Hub.Close()
		cancel()
		wg.Wait()
	})
	var err error
	cfg.RTMP.Listen = "127.0.0.1:0"
	if n.RTMP, err = rtmp.New(cfg.RTMP, n.Hub, log); err != nil {
		t.Fatal(err)
	}
	cfg.FLV.Listen = "127.0.0.1:0"
	if n.FLV, err = httpflv.New(cfg.FLV, n.Hub, log); err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	run(ctx, n.RTMP.Run)
	run(ctx, n.FLV.Run)
	if cfg.SRT != nil {
		scfg := *cfg.SRT
		scfg.Listen = "127.0.0.1:0"
		if n.SRT, err = srt.New(scfg, n.Hub, log); err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithCancel(ctx)
		n.srtStop, n.srtDone = scancel, make(chan struct{})
		run(sctx, func(ctx context.Context) error { defer close(n.srtDone); return n.SRT.Run(ctx) })
	}
	return n
}

// KillSRT closes the SRT listener and its connections while the rest of
// the node runs on.
func (n *Node) KillSRT() {
	n.SRT.Close()
	n.srtStop()
	<-n.srtDone
}

// RTMPBase is rtmp://127.0.0.1:port.
func (n *Node) RTMPBase() string { return "rtmp://" + n.RTMP.Addr().String() }

// FLVBase is http://127.0.0.1:port.
func (n *Node) FLVBase() string { return "http://" + n.FLV.Addr().String() }

// SRTBase is srt://127.0.0.1:port.
func (n *Node) SRTBase() string { return "srt://" + n.SRT.Addr().String() }

// RTMPURL is the RTMP URL of a stream key.
func (n *Node) RTMPURL(key string) string { return n.RTMPBase() + "/" + key }

// FLVURL is the HTTP-FLV URL of a stream key.
func (n *Node) FLVURL(key string) string { return n.FLVBase() + "/" + key + ".flv" }
