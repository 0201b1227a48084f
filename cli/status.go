package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/relaymesh/relaymesh/center"
	"github.com/relaymesh/relaymesh/client"
	"github.com/relaymesh/relaymesh/edge"
	"github.com/relaymesh/relaymesh/media/link"
)

// statusWait bounds each API call of status and locate.
const statusWait = 5 * time.Second

// statusJSON is `relaymesh status --json`.
type statusJSON struct {
	Node    client.Health       `json:"node"`
	Nodes   []client.Node       `json:"nodes"`
	Streams []client.Stream     `json:"streams"`
	Uplinks []edge.Status       `json:"uplinks"`
	Pulls   []center.PullStatus `json:"pulls"`
}

// cmdStatus is `relaymesh status`: the node, its cluster, links and
// streams as tables (or JSON).
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := af.client(stderr)
	if err != nil {
		return 1
	}
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), statusWait)
	}
	ctx, cancel := call()
	health, err := c.Health(ctx)
	cancel()
	if err != nil {
		return apiFailed(stderr, err, true)
	}
	ctx, cancel = call()
	streams, err := c.Streams(ctx)
	cancel()
	if err != nil {
		return apiFailed(stderr, err, true)
	}
	// nodes and links are absent on a standalone node
	ctx, cancel = call()
	nodes, _ := c.Nodes(ctx)
	cancel()
	ctx, cancel = call()
	links, _ := c.Links(ctx)
	cancel()
	if *asJSON {
		out := statusJSON{Node: health, Nodes: nodes.Nodes, Streams: streams, Uplinks: links.Uplinks, Pulls: links.Pulls}
		json.NewEncoder(stdout).Encode(out)
		return 0
	}
	fmt.Fprintf(stdout, "node %v  role %v  version %v  up %vs\n\n", health.Node, health.Role, health.Version, health.UptimeSeconds)
	if len(nodes.Nodes) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tROLE\tSITE\tSTATE\tRTT\tSTREAMS\tMBPS IN\tMBPS OUT")
		for _, n := range nodes.Nodes {
			rtt := "-"
			if n.RTTMs != nil {
				rtt = fmt.Sprint(*n.RTTMs)
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\n", n.Name, n.Role, n.Site, n.State, rtt, n.Streams, n.MbpsIn, n.MbpsOut)
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	if len(links.Uplinks)+len(links.Pulls) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LINK\tSTREAM\tPEER\tSTATE\tRTT MS\tLATENCY MS\tLOST\tRETRANS\tDROPS\tMBPS")
		for _, l := range links.Uplinks {
			linkRow(tw, "uplink", l.Stream, l.Center, string(l.Relay.State), l.Relay.SRT)
		}
		for _, l := range links.Pulls {
			linkRow(tw, "pull", l.Stream, l.From, string(l.Link.State), l.Link.SRT)
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tVIDEO\tAUDIO\tFPS\tKBIT/S\tPUBLISHER\tREADERS\tUPTIME")
	sort.Slice(streams, func(i, j int) bool { return streams[i].Name < streams[j].Name })
	for _, s := range streams {
		pub := "-"
		if s.Publisher != nil {
			pub = s.Publisher.Protocol + " " + s.Publisher.Remote
		}
		video := s.Video
		if s.Width > 0 {
			video = fmt.Sprintf("%s %dx%d", s.Video, s.Width, s.Height)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%d\t%s\t%d\t%s\n", s.Name, video, s.Audio, s.FPS,
			(s.VideoBitrate+s.AudioBitrate)/1000, pub, s.ReaderCount, time.Duration(s.UptimeSeconds)*time.Second)
	}
	tw.Flush()
	return 0
}

// linkRow is one uplink or pull in the links table.
func linkRow(w io.Writer, kind, stream, peer, state string, s *link.SRTStats) {
	if s != nil {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%.2f\n", kind, stream, peer, state,
			s.RTTMs, s.LatencyMs, s.PacketsLost, s.Retransmits, s.Drops, s.RateMbps)
		return
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", kind, stream, peer, state)
}
