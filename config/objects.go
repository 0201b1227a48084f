package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/netutil"
	"github.com/relaymesh/relaymesh/relay"
	"github.com/relaymesh/relaymesh/task"
)

// Defaults of [objects] (a 0 in the file means the default).
const (
	defaultMaxRelays       = 200
	defaultMaxRunningTasks = 100
	defaultMaxAPIBody      = 1 << 20
	defaultMaxOutputs      = 32
	defaultMaxDownload     = 4 << 30
	defaultDownloadTimeout = 30 * time.Minute
)

// ObjectsConfig is [objects]: limits for flows, relays and tasks.
type ObjectsConfig struct {
	MaxRelays       int      `toml:"max_relays"`        // relay rules per node; 0 = 200
	MaxRunningTasks int      `toml:"max_running_tasks"` // tasks running at once; 0 = 100
	MaxFlows        int      `toml:"max_flows"`         // 0 = unlimited
	MaxAPIBody      ByteSize `toml:"max_api_body"`      // largest API request body; 0 = 1MiB
	MaxOutputs      int      `toml:"max_outputs"`       // outputs per flow; 0 = 32
	// FetchAllow and FetchDeny are CIDRs for the outbound fetch policy
	// (playlists, callbacks, pull sources, push destinations): deny wins,
	// then allow; by default loopback, link-local (metadata) and the
	// node's own listeners are denied, the rest allowed.
	FetchAllow []string `toml:"fetch_allow"`
	FetchDeny  []string `toml:"fetch_deny"`
	// MaxDownload caps one downloaded playlist item; 0 = 4GiB.
	MaxDownload ByteSize `toml:"max_download"`
	// DownloadTimeout caps one item's download; 0 = 30m.
	DownloadTimeout Duration `toml:"download_timeout"`
}

// OutputLimit is max_outputs with its default: outputs per flow.
func (o ObjectsConfig) OutputLimit() int { return orDefault(o.MaxOutputs, defaultMaxOutputs) }

// DownloadLimit is max_download with its default, in bytes.
func (o ObjectsConfig) DownloadLimit() int64 {
	return orDefault(int64(o.MaxDownload), defaultMaxDownload)
}

// DownloadTimeLimit is download_timeout with its default.
func (o ObjectsConfig) DownloadTimeLimit() time.Duration {
	return orDefault(time.Duration(o.DownloadTimeout), defaultDownloadTimeout)
}

// prefixes parses validated CIDR entries.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if n, err := netutil.ParseAllowEntry(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// FetchPolicy builds the outbound policy; ownPorts are the node's
// listener ports. The CIDRs were validated with the config.
func (o ObjectsConfig) FetchPolicy(ownPorts []uint16) *netutil.FetchPolicy {
	return &netutil.FetchPolicy{OwnPorts: ownPorts, Allow: prefixes(o.FetchAllow), Deny: prefixes(o.FetchDeny)}
}

// FetchPolicy is the outbound policy of the node: [objects] fetch_allow
// and fetch_deny, and as its own ports those of the listening addresses
// given (the bound ones; "" for one that is off) and, in a cluster, of
// the gossip and backbone listeners.
func (c *Config) FetchPolicy(listening ...string) *netutil.FetchPolicy {
	addrs := listening
	if c.Cluster.Enabled {
		addrs = append(slices.Clip(addrs), c.Cluster.GossipBind(), c.Cluster.BackboneListen)
	}
	var ports []uint16
	for _, addr := range addrs {
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
				ports = append(ports, uint16(n))
			}
		}
	}
	return c.Objects.FetchPolicy(ports)
}

// orDefault is v, or def when v is zero (a 0 in the file means the default).
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// RelayLimit is max_relays with its default.
func (o ObjectsConfig) RelayLimit() int { return orDefault(o.MaxRelays, defaultMaxRelays) }

// RunningTaskLimit is max_running_tasks with its default.
func (o ObjectsConfig) RunningTaskLimit() int {
	return orDefault(o.MaxRunningTasks, defaultMaxRunningTasks)
}

// APIBodyLimit is max_api_body with its default, in bytes.
func (o ObjectsConfig) APIBodyLimit() int64 { return orDefault(int64(o.MaxAPIBody), defaultMaxAPIBody) }

// FlowSourceConfig is a flow's source or backup.
type FlowSourceConfig struct {
	Name       string   `toml:"name"`
	Type       string   `toml:"type"` // rtmp-push | rtmp-pull | srt-listener | srt-caller | httpflv-pull | flow
	URL        string   `toml:"url"`
	Stream     string   `toml:"stream"`
	Flow       string   `toml:"flow"`
	Output     string   `toml:"output"`
	Node       string   `toml:"node"` // type flow: the node the named flow runs on (optional)
	Allow      []string `toml:"allow"`
	MaxBitrate Bitrate  `toml:"max_bitrate"`
	MinBitrate Bitrate  `toml:"min_bitrate"` // health floor: less over 2 s is unhealthy ("" = none)
	// MaxCCErrors: more MPEG-TS continuity errors over 2 s is unhealthy (0 = off)
	MaxCCErrors int      `toml:"max_cc_errors"`
	Latency     Duration `toml:"latency"`
	Passphrase  string   `toml:"passphrase"`
	PBKeyLen    int      `toml:"pbkeylen"`
}

// FlowOutputConfig is one [[flow.outputs]].
type FlowOutputConfig struct {
	Name       string   `toml:"name"`
	Type       string   `toml:"type"` // rtmp-pull | rtmp-push | srt-listener | srt-caller | httpflv | flow
	URL        string   `toml:"url"`
	BackupURL  string   `toml:"backup_url"` // push types with a backup source: the backup tunnel's destination
	Flow       string   `toml:"flow"`       // type flow: another node's flow this output delivers to (optional)
	Node       string   `toml:"node"`       // and that flow's node (optional)
	Allow      []string `toml:"allow"`
	MaxBitrate Bitrate  `toml:"max_bitrate"`
	Latency    Duration `toml:"latency"`
	Passphrase string   `toml:"passphrase"`
	PBKeyLen   int      `toml:"pbkeylen"`
}

// FlowConfig is one [[flow]].
type FlowConfig struct {
	ID           string             `toml:"id"`
	Description  string             `toml:"description"`
	Start        bool               `toml:"start"`         // run it when the agent starts
	StartTime    time.Time          `toml:"start_time"`    // or start it by itself then (scheduled until then)
	EndTime      time.Time          `toml:"end_time"`      // and stop it then (finished)
	MaxBandwidth Bitrate            `toml:"max_bandwidth"` // "10M", "20M" or "50M" per source
	Source       FlowSourceConfig   `toml:"source"`
	Backup       FlowSourceConfig   `toml:"backup"` // type "" = no backup
	Outputs      []FlowOutputConfig `toml:"outputs"`
}

// RelayConfig is one [[relay]].
type RelayConfig struct {
	ID         string    `toml:"id"`
	Pattern    string    `toml:"pattern"` // app/name, * and ? match within a part
	URL        string    `toml:"url"`
	Passphrase string    `toml:"passphrase"`
	PBKeyLen   int       `toml:"pbkeylen"`
	Latency    Duration  `toml:"latency"`
	Start      time.Time `toml:"start_time"`
	End        time.Time `toml:"end_time"`
}

// TaskConfig is one [[task]].
type TaskConfig struct {
	ID          string    `toml:"id"`
	Name        string    `toml:"name"`     // shown and filtered on; "" = the id
	URL         string    `toml:"url"`      // live source
	Playlist    []string  `toml:"playlist"` // or files
	Loop        int       `toml:"loop"`     // 1.. times, -1 forever; 0 = 1
	Destination string    `toml:"destination"`
	Passphrase  string    `toml:"passphrase"` // SRT destination
	PBKeyLen    int       `toml:"pbkeylen"`
	Latency     Duration  `toml:"latency"`
	Start       time.Time `toml:"start_time"` // zero: never by itself
	End         time.Time `toml:"end_time"`
	Callback    string    `toml:"callback"`
}

// Spec is the source as the flow package takes it.
func (s FlowSourceConfig) Spec() flow.Source {
	return flow.Source{Name: s.Name, Type: s.Type, URL: s.URL, Stream: s.Stream, Flow: s.Flow, Output: s.Output, Node: s.Node,
		Allow: s.Allow, MaxBitrate: int64(s.MaxBitrate), MinBitrate: int64(s.MinBitrate), MaxCCErrors: s.MaxCCErrors, LatencyMS: int(s.Latency.Duration().Milliseconds()),
		Passphrase: s.Passphrase, PBKeyLen: s.PBKeyLen}
}

// Spec is the [[flow]] as the flow package takes it.
func (f *FlowConfig) Spec() flow.Spec {
	s := flow.Spec{ID: f.ID, Description: f.Description, Source: f.Source.Spec(), Outputs: []flow.Output{},
		Start: optTime(f.StartTime), End: optTime(f.EndTime), MaxBandwidth: int64(f.MaxBandwidth)}
	if f.Backup.Type != "" {
		b := f.Backup.Spec()
		s.Backup = &b
	}
	for _, o := range f.Outputs {
		s.Outputs = append(s.Outputs, flow.Output{Name: o.Name, Type: o.Type, URL: o.URL, BackupURL: o.BackupURL, Flow: o.Flow, Node: o.Node, Allow: o.Allow,
			MaxBitrate: int64(o.MaxBitrate), LatencyMS: int(o.Latency.Duration().Milliseconds()),
			Passphrase: o.Passphrase, PBKeyLen: o.PBKeyLen})
	}
	s.Normalize()
	return s
}

// Spec is the [[relay]] as the relay package takes it.
func (r *RelayConfig) Spec() relay.Spec {
	return relay.Spec{ID: r.ID, Pattern: r.Pattern, URL: r.URL, Passphrase: r.Passphrase, PBKeyLen: r.PBKeyLen,
		LatencyMS: int(r.Latency.Duration().Milliseconds()), Start: r.Start, End: r.End}
}

// Spec is the [[task]] as the task package takes it.
func (t *TaskConfig) Spec() task.Spec {
	s := task.Spec{ID: t.ID, Name: t.Name, Source: task.Source{URL: t.URL, Playlist: t.Playlist}, Loop: t.Loop,
		Destination: task.Destination{URL: t.Destination, Passphrase: t.Passphrase, PBKeyLen: t.PBKeyLen,
			LatencyMS: int(t.Latency.Duration().Milliseconds())},
		Callback: t.Callback, Start: optTime(t.Start), End: optTime(t.End)}
	s.Normalize()
	return s
}

// optTime is nil for the zero time (not set in the file).
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// tomlField turns a spec's JSON field path into the TOML key path under at.
func tomlField(at cfgPath, field string) cfgPath {
	if field == "" {
		return at
	}
	field = strings.NewReplacer("latency_ms", "latency", "source.url", "url", "source.playlist", "playlist",
		"destination.url", "destination", "destination.", "").Replace(field)
	return cfgPath(string(at) + "." + field)
}

func (c *Config) validateObjects(ps *cfgProblems) {
	o := c.Objects
	ps.countOrDefault("objects.max_relays", o.MaxRelays, defaultMaxRelays)
	ps.countOrDefault("objects.max_running_tasks", o.MaxRunningTasks, defaultMaxRunningTasks)
	ps.count("objects.max_flows", o.MaxFlows)
	if o.MaxAPIBody < 0 {
		ps.add("objects.max_api_body", "is negative")
	}
	ps.countOrDefault("objects.max_outputs", o.MaxOutputs, defaultMaxOutputs)
	ps.cidrs("objects.fetch_allow", o.FetchAllow)
	ps.cidrs("objects.fetch_deny", o.FetchDeny)
	if o.MaxDownload < 0 {
		ps.add("objects.max_download", "is negative")
	}
	if o.DownloadTimeout < 0 {
		ps.add("objects.download_timeout", "is negative")
	}
	for i := range c.Flows {
		if n := len(c.Flows[i].Outputs); n > o.OutputLimit() {
			ps.add(cfgPath("flow").Index(i).Key("outputs"), "%d outputs is more than objects.max_outputs (%d)", n, o.OutputLimit())
		}
	}
	flows := map[string]*FlowConfig{}
	for i := range c.Flows {
		flows[c.Flows[i].ID] = &c.Flows[i]
	}
	seen := map[string]int{}
	for i := range c.Flows {
		at := cfgPath("flow").Index(i)
		s := c.Flows[i].Spec()
		// a flow source may name a flow of another node: not checked here
		if err := s.Validate(nil); err != nil {
			p := lifecycle.AsProblem(err)
			ps.add(tomlField(at, p.Field), "%s", p.Msg)
		}
		if c.Flows[i].Start && !c.Flows[i].StartTime.IsZero() {
			ps.add(at.Key("start"), "start = true runs the flow at once; start_time schedules it: set one of them")
		}
		if j, dup := seen[s.ID]; dup {
			ps.add(at.Key("id"), "%q is already the id of flow[%d]", s.ID, j)
		}
		seen[s.ID] = i
	}
	c.checkFlowCycles(ps)
	if o.MaxRelays >= 0 && len(c.Relays) > o.RelayLimit() { // a negative one is refused above
		ps.add("relay", "%d relays is more than objects.max_relays (%d)", len(c.Relays), o.RelayLimit())
	}
	seen = map[string]int{}
	for i := range c.Relays {
		at := cfgPath("relay").Index(i)
		s := c.Relays[i].Spec()
		// a file's window may lie in the past: it is then simply finished
		if err := s.Validate(time.Time{}); err != nil {
			p := lifecycle.AsProblem(err)
			ps.add(tomlField(at, p.Field), "%s", p.Msg)
		}
		if j, dup := seen[s.ID]; dup {
			ps.add(at.Key("id"), "%q is already the id of relay[%d]", s.ID, j)
		}
		seen[s.ID] = i
	}
	seen = map[string]int{}
	for i := range c.Tasks {
		at := cfgPath("task").Index(i)
		s := c.Tasks[i].Spec()
		if err := s.Validate(time.Time{}); err != nil {
			p := lifecycle.AsProblem(err)
			ps.add(tomlField(at, p.Field), "%s", p.Msg)
		}
		if s.Callback == "" && c.Webhooks.URL == "" {
			ps.add(at.Key("callback"), "required: the http(s) URL that gets the task's state changes (or set [webhooks] url as the default)")
		}
		if j, dup := seen[s.ID]; dup {
			ps.add(at.Key("id"), "%q is already the id of task[%d]", s.ID, j)
		}
		seen[s.ID] = i
	}
}

// checkFlowCycles refuses flows of the file whose flow sources take one
// another round a cycle (the API refuses the same at create, flow.Chain):
// once per cycle, at the source of its first flow in the file.
func (c *Config) checkFlowCycles(ps *cfgProblems) {
	index := map[string]int{}
	for i := range c.Flows {
		index[c.Flows[i].ID] = i
	}
	uses := func(id string) []string {
		i, ok := index[id]
		if !ok {
			return nil // not in this file: another node's, or made through the API
		}
		s := c.Flows[i].Spec()
		var out []string
		for _, u := range s.Uses() {
			out = append(out, u[0])
		}
		return out
	}
	reported := map[string]bool{}
	for i := range c.Flows {
		f := &c.Flows[i]
		for _, src := range []struct {
			key string
			FlowSourceConfig
		}{{"source", f.Source}, {"backup", f.Backup}} {
			if src.Type != flow.SrcFlow || src.Flow == f.ID || reported[f.ID] { // itself: Validate says so
				continue
			}
			path := flow.Chain(src.Flow, f.ID, uses)
			if path == nil {
				continue
			}
			keys := []string{fmt.Sprintf("flow[%d]", i)}
			for _, id := range path {
				reported[id] = true
				keys = append(keys, fmt.Sprintf("flow[%d]", index[id]))
			}
			ps.add(cfgPath("flow").Index(i).Key(src.key).Key("flow"), "%s (%s)", flow.CycleMsg(f.ID, path), strings.Join(keys, " -> "))
		}
	}
}
