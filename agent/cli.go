package agent

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/netutil"
)

const defaultAPI = "http://127.0.0.1:9997"

// apiGet GETs path with the token (when not "").
func apiGet(base, token, path string, v any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the relaymesh API at %s (is the agent running? see --api): %w", base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return fmt.Errorf("%s: %s", path, e.Message)
		}
		return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
	}
	return json.Unmarshal(body, v)
}

const tokenFileUsage = "file holding the API token, needed when the API listens beyond loopback (default: $RELAYMESH_TOKEN, else none)"

// cliToken is the API token a command sends: the file's, else
// $RELAYMESH_TOKEN.
func cliToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("RELAYMESH_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", defaultAPI, "agent API base URL")
	tokenFile := fs.String("token-file", "", tokenFileUsage)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := cliToken(*tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	var health map[string]any
	var streams struct {
		Streams []StreamView `json:"streams"`
	}
	if err := apiGet(*api, token, "/healthz", &health); err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	if err := apiGet(*api, token, "/v1/streams", &streams); err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	var nodes struct {
		Nodes []map[string]any `json:"nodes"`
	}
	_ = apiGet(*api, token, "/v1/nodes", &nodes) // absent on a standalone node
	var links struct {
		Uplinks []linkRow `json:"uplinks"`
		Pulls   []linkRow `json:"pulls"`
	}
	_ = apiGet(*api, token, "/v1/links", &links) // absent on a standalone node
	if *asJSON {
		json.NewEncoder(stdout).Encode(map[string]any{"node": health, "nodes": nodes.Nodes, "streams": streams.Streams,
			"uplinks": links.Uplinks, "pulls": links.Pulls})
		return 0
	}
	fmt.Fprintf(stdout, "node %v  role %v  version %v  up %vs\n\n", health["node"], health["role"], health["version"], health["uptime_seconds"])
	if len(nodes.Nodes) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tROLE\tSITE\tSTATE\tRTT\tSTREAMS\tMBPS IN\tMBPS OUT")
		for _, n := range nodes.Nodes {
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%v\n", n["name"], n["role"], n["site"], n["state"], n["rtt_ms"], n["streams"], n["mbps_in"], n["mbps_out"])
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	if len(links.Uplinks)+len(links.Pulls) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LINK\tSTREAM\tPEER\tSTATE\tRTT MS\tLATENCY MS\tLOST\tRETRANS\tDROPS\tMBPS")
		for _, l := range links.Uplinks {
			l.row(tw, "uplink", l.Center)
		}
		for _, l := range links.Pulls {
			l.row(tw, "pull", l.From)
		}
		tw.Flush()
		fmt.Fprintln(stdout)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tVIDEO\tAUDIO\tFPS\tKBIT/S\tPUBLISHER\tREADERS\tUPTIME")
	sort.Slice(streams.Streams, func(i, j int) bool { return streams.Streams[i].Name < streams.Streams[j].Name })
	for _, s := range streams.Streams {
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

func cmdLocate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("locate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", defaultAPI, "agent API base URL")
	client := fs.String("client", "", "the broadcaster's address (default: this machine)")
	tokenFile := fs.String("token-file", "", tokenFileUsage)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := cliToken(*tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: relaymesh locate [--api URL] [--client ADDR] APP/NAME")
		return 2
	}
	app, name, _ := strings.Cut(fs.Arg(0), "/")
	q := url.Values{"app": {app}, "stream": {name}}
	if *client != "" {
		q.Set("client", *client)
	}
	var out map[string]any
	if err := apiGet(*api, token, "/v1/locate?"+q.Encode(), &out); err != nil {
		fmt.Fprintln(stderr, "relaymesh:", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	return 0
}

func cmdCleanup(args []string, stdout, stderr io.Writer) int {
	path, _, err := configFlag("cleanup", args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg, err := loadConfig(path)
	if err != nil {
		// cleanup must work even with a broken config: nothing to name
		fmt.Fprintf(stderr, "relaymesh cleanup: config unreadable (%v); nothing removed\n", err)
		return 0
	}
	ifname := qosInterface(cfg)
	if ifname == "" {
		fmt.Fprintln(stdout, "relaymesh cleanup: no [qos] interface configured; nothing to remove")
		return 0
	}
	if err := netutil.Remove(ifname); err != nil {
		fmt.Fprintf(stderr, "relaymesh cleanup: %s: %v\n", ifname, err)
		return 1
	}
	fmt.Fprintf(stdout, "relaymesh cleanup: removed relaymesh tc state from %s\n", ifname)
	return 0
}

func cmdSign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "HMAC key file (default: auth.key_file of the config)")
	cfgPath := fs.String("c", "", "config file (for auth.key_file)")
	action := fs.String("action", auth.ActionPublish, "publish or play")
	ttl := fs.Duration("ttl", time.Hour, "how long the URL stays valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: relaymesh sign [-c FILE | --key FILE] [--action publish|play] [--ttl 1h] APP/NAME")
		return 2
	}
	if *action != auth.ActionPublish && *action != auth.ActionPlay {
		fmt.Fprintf(stderr, "relaymesh sign: --action %q: want publish or play\n", *action)
		return 2
	}
	if *keyFile == "" {
		path := *cfgPath
		if path == "" {
			path = DefaultConfigPath
		}
		cfg, err := Load(path)
		if err != nil {
			fmt.Fprintf(stderr, "relaymesh sign: %v (or pass --key FILE)\n", err)
			return 1
		}
		*keyFile = cfg.Auth.KeyFile
	}
	key, err := auth.LoadKey(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "relaymesh sign: %v\n", err)
		return 1
	}
	stream := fs.Arg(0)
	fmt.Fprintf(stdout, "%s?%s\n", stream, auth.Sign(key, *action, stream, time.Now().Add(*ttl)))
	return 0
}

// linkRow is an uplink or a pull in GET /v1/links.
type linkRow struct {
	Stream string `json:"stream"`
	Center string `json:"center"`
	From   string `json:"from"`
	Link   struct {
		State string `json:"state"`
		SRT   *struct {
			RTTMs       float64 `json:"rtt_ms"`
			LatencyMs   uint64  `json:"latency_ms"`
			PacketsLost uint64  `json:"packets_lost"`
			Retransmits uint64  `json:"retransmits"`
			Drops       uint64  `json:"drops"`
			RateMbps    float64 `json:"rate_mbps"`
		} `json:"srt"`
	} `json:"link"`
}

func (l linkRow) row(w io.Writer, kind, peer string) {
	if s := l.Link.SRT; s != nil {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%.2f\n", kind, l.Stream, peer, l.Link.State,
			s.RTTMs, s.LatencyMs, s.PacketsLost, s.Retransmits, s.Drops, s.RateMbps)
		return
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\n", kind, l.Stream, peer, l.Link.State)
}
