// Package flow runs MediaConnect-style flows: one source (or a
// primary/backup pair with failover) feeding a hub stream, plus outputs
// that are players of that stream or pushes to remote URLs.
package flow

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/relaymesh/relaymesh/lifecycle"
	"github.com/relaymesh/relaymesh/media"
	"github.com/relaymesh/relaymesh/media/link"
	"github.com/relaymesh/relaymesh/media/srt/libsrt"
	"github.com/relaymesh/relaymesh/netutil"
)

// Source types.
const (
	SrcRTMPPush    = "rtmp-push"    // a publisher pushes to us over RTMP
	SrcRTMPPull    = "rtmp-pull"    // we pull an RTMP URL
	SrcSRTListener = "srt-listener" // a caller publishes to our SRT listener
	SrcSRTCaller   = "srt-caller"   // we call an SRT URL
	SrcHTTPFLVPull = "httpflv-pull" // we pull an HTTP-FLV URL
	SrcFlow        = "flow"         // another flow's output
)

// Output types.
const (
	OutRTMPPull    = "rtmp-pull"    // players pull over RTMP
	OutRTMPPush    = "rtmp-push"    // we push to an RTMP URL
	OutSRTListener = "srt-listener" // players call our SRT listener
	OutSRTCaller   = "srt-caller"   // we call an SRT URL
	OutHTTPFLV     = "httpflv"      // players pull HTTP-FLV
	OutFlow        = "flow"         // offered to another flow (another node)
)

// SourceTypes and OutputTypes list the known types.
var (
	SourceTypes = []string{SrcRTMPPush, SrcRTMPPull, SrcSRTListener, SrcSRTCaller, SrcHTTPFLVPull, SrcFlow}
	OutputTypes = []string{OutRTMPPull, OutRTMPPush, OutSRTListener, OutSRTCaller, OutHTTPFLV, OutFlow}
)

// wire is the format a source delivers or an output needs.
func wire(typ string) string {
	switch typ {
	case SrcSRTListener, SrcSRTCaller: // OutSRTListener, OutSRTCaller share the names
		return "mpegts"
	case SrcFlow:
		return "any"
	}
	return "flv"
}

// Pairs says how each source type reaches each output type: "pass" (same
// wire format), "remux" (FLV <-> MPEG-TS, done by the hub) or "" (refused).
// Every pair is reachable for H.264/H.265/AAC; the table is the one place
// a refused pair would be written down.
func Pair(src, out string) string {
	ws, wo := wire(src), wire(out)
	if out == OutFlow || ws == "any" || ws == wo {
		return "pass"
	}
	return "remux"
}

// MaxBandwidths are the flow-level max_bandwidth choices, bit/s.
var MaxBandwidths = []int64{10_000_000, 20_000_000, 50_000_000}

// Limit is the bitrate a source may deliver (0: unlimited) and the key
// that sets it: the source's max_bitrate or the flow's max_bandwidth,
// whichever is lower.
func (s *Spec) Limit(src *Source) (int64, string) {
	limit, key := src.MaxBitrate, "max_bitrate"
	if b := s.MaxBandwidth; b > 0 && (limit <= 0 || b < limit) {
		limit, key = b, "the flow's max_bandwidth"
	}
	return limit, key
}

// Source is a flow input.
type Source struct {
	Name       string   `json:"name,omitempty"` // "primary" / "backup" by default
	Type       string   `json:"type"`
	URL        string   `json:"url,omitempty"`    // pull types
	Stream     string   `json:"stream,omitempty"` // push types: the app/name publishers use
	Flow       string   `json:"flow,omitempty"`   // type flow: the flow id
	Output     string   `json:"output,omitempty"` // type flow: its output name
	Node       string   `json:"node,omitempty"`   // type flow: the node it runs on (optional)
	Allow      []string `json:"allow,omitempty"`  // CIDR allowlist of publishers
	MaxBitrate int64    `json:"max_bitrate,omitempty"`
	// MinBitrate is a health floor (bit/s; 0 = none): a source that
	// carries less over 2 s is unhealthy and not used (health: bitrate).
	MinBitrate int64 `json:"min_bitrate,omitempty"`
	// MaxCCErrors (MPEG-TS sources: srt-listener, srt-caller; 0 = off):
	// a source with more continuity errors (lost or reordered TS packets)
	// over 2 s is unhealthy and not used (health: continuity).
	MaxCCErrors int    `json:"max_cc_errors,omitempty"`
	LatencyMS   int    `json:"latency_ms,omitempty"` // SRT
	Passphrase  string `json:"passphrase,omitempty"` // SRT
	PBKeyLen    int    `json:"pbkeylen,omitempty"`   // SRT: 16, 24 or 32
}

// Output is a flow output.
type Output struct {
	Name string `json:"name"`
	Type string `json:"type"`
	URL  string `json:"url,omitempty"` // push types
	// BackupURL (push types, with a backup source): the backup tunnel's
	// destination. With it, url gets the primary source's media and
	// backup_url the backup source's, each on its own; without it, url
	// gets the failover-merged stream.
	BackupURL string `json:"backup_url,omitempty"`
	// Flow (type flow, optional): another node's flow this output
	// delivers to, over the backbone, into its push source (rtmp-push or
	// srt-listener); Node optionally names that flow's node. Without Flow,
	// a flow output is offered to flow sources that name it.
	Flow       string   `json:"flow,omitempty"`
	Node       string   `json:"node,omitempty"`
	Allow      []string `json:"allow,omitempty"` // CIDR allowlist of players
	MaxBitrate int64    `json:"max_bitrate,omitempty"`
	LatencyMS  int      `json:"latency_ms,omitempty"`
	Passphrase string   `json:"passphrase,omitempty"`
	PBKeyLen   int      `json:"pbkeylen,omitempty"`
}

// Spec is what a flow is.
type Spec struct {
	ID          string   `json:"id"`
	Description string   `json:"description,omitempty"`
	Source      Source   `json:"source"`
	Backup      *Source  `json:"backup,omitempty"`
	Outputs     []Output `json:"outputs"`
	// MaxBandwidth caps what each source may deliver, bit/s: one of
	// MaxBandwidths (the console's 10, 20 or 50 Mbit/s), 0 for none. It is
	// enforced like a source's max_bitrate (the lower of the two applies).
	MaxBandwidth int64 `json:"max_bandwidth,omitempty"`
	// Start, when set, starts the flow by itself then (state scheduled
	// until then); End stops it then (state finished).
	Start *time.Time `json:"start_time,omitempty"`
	End   *time.Time `json:"end_time,omitempty"`
}

// Key is the hub stream the flow publishes; rtmp-pull, httpflv and
// srt-listener outputs are players of it on the node's listeners.
func (s *Spec) Key() string { return "flow/" + s.ID }

// SourceKey is the hub stream a source arrives on: the publishers' key
// for push types, an internal key for pulls, the other flow's key for flow.
func (s *Spec) SourceKey(src *Source) string {
	switch src.Type {
	case SrcRTMPPush, SrcSRTListener:
		if src.Stream != "" {
			return src.Stream
		}
	case SrcFlow:
		return "flow/" + src.Flow
	}
	return "flowsrc/" + s.ID + "." + src.Name
}

// Normalize fills default names.
func (s *Spec) Normalize() {
	if s.Source.Name == "" {
		s.Source.Name = "primary"
	}
	if s.Backup != nil && s.Backup.Name == "" {
		s.Backup.Name = "backup"
	}
	if s.Outputs == nil {
		s.Outputs = []Output{}
	}
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckID refuses ids that are not 1-63 letters, digits, '.', '-', '_'.
func CheckID(field, id string) error {
	if !idRe.MatchString(id) {
		return lifecycle.Invalidf(field, "%q must be 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit", id)
	}
	return nil
}

// Lookup answers whether a flow with an output exists (for flow sources).
type Lookup func(flowID, output string) error

// Validate checks a normalized spec; each refusal names the field and the
// rule. lookup may be nil (config files: checked across the file).
func (s *Spec) Validate(lookup Lookup) error {
	if err := CheckID("id", s.ID); err != nil {
		return err
	}
	if s.Start != nil && s.End != nil && !s.End.After(*s.Start) {
		return lifecycle.Invalidf("end_time", "must be after start_time")
	}
	if len(s.Description) > MaxDescLen {
		return lifecycle.Invalidf("description", "is %d bytes long, more than %d", len(s.Description), MaxDescLen)
	}
	if s.MaxBandwidth != 0 && !slices.Contains(MaxBandwidths, s.MaxBandwidth) {
		return lifecycle.Invalidf("max_bandwidth", "%d bit/s is not one of 10000000, 20000000 or 50000000 (10, 20 or 50 Mbit/s)", s.MaxBandwidth)
	}
	if err := s.Source.validate("source", s, lookup); err != nil {
		return err
	}
	if s.Backup != nil {
		if err := s.Backup.validate("backup", s, lookup); err != nil {
			return err
		}
		if s.Backup.Name == s.Source.Name {
			return lifecycle.Invalidf("backup.name", "%q is also the primary source's name", s.Backup.Name)
		}
		if s.SourceKey(s.Backup) == s.SourceKey(&s.Source) {
			return lifecycle.Invalidf("backup.stream", "%q is also the primary source's stream: the backup needs its own", s.SourceKey(s.Backup))
		}
	}
	names := map[string]int{}
	for i := range s.Outputs {
		o := &s.Outputs[i]
		at := fmt.Sprintf("outputs[%d]", i)
		if err := o.validate(at, s.Backup != nil); err != nil {
			return err
		}
		if o.Flow == s.ID && o.Flow != "" {
			return lifecycle.Invalidf(at+".flow", "a flow cannot deliver to itself")
		}
		if j, dup := names[o.Name]; dup {
			return lifecycle.Invalidf(at+".name", "%q is already the name of outputs[%d]", o.Name, j)
		}
		names[o.Name] = i
		for _, src := range s.sources() {
			if Pair(src.Type, o.Type) == "" {
				return lifecycle.Invalidf(at+".type", "a %s source cannot feed a %s output", src.Type, o.Type)
			}
		}
	}
	return s.checkSRTOutputs()
}

func (s *Spec) sources() []*Source {
	if s.Backup != nil {
		return []*Source{&s.Source, s.Backup}
	}
	return []*Source{&s.Source}
}

func (src *Source) validate(at string, s *Spec, lookup Lookup) error {
	if err := CheckID(at+".name", src.Name); err != nil {
		return err
	}
	if !slices.Contains(SourceTypes, src.Type) {
		return lifecycle.Invalidf(at+".type", "%q is not one of %s", src.Type, strings.Join(SourceTypes, ", "))
	}
	switch src.Type {
	case SrcRTMPPull:
		if err := CheckTarget(at+".url", src.URL, "read", "rtmp", "rtmps"); err != nil {
			return err
		}
	case SrcSRTCaller:
		if err := CheckTarget(at+".url", src.URL, "read", "srt"); err != nil {
			return err
		}
	case SrcHTTPFLVPull:
		if err := checkURL(at+".url", src.URL, "http", "https"); err != nil {
			return err
		}
	case SrcRTMPPush, SrcSRTListener:
		if src.URL != "" {
			return lifecycle.Invalidf(at+".url", "a %s source is pushed to this node: set stream (the app/name publishers use), not url", src.Type)
		}
		if src.Stream != "" {
			if err := media.CheckKey(src.Stream); err != nil {
				return lifecycle.Invalidf(at+".stream", "%v", err)
			}
			if strings.HasPrefix(src.Stream, "flow/") || strings.HasPrefix(src.Stream, "flowsrc/") {
				return lifecycle.Invalidf(at+".stream", "%q: the apps flow/ and flowsrc/ are the node's own", src.Stream)
			}
		}
	case SrcFlow:
		if src.Flow == "" || src.Output == "" {
			return lifecycle.Invalidf(at+".flow", "a flow source names another flow and its output: set flow and output")
		}
		if src.Flow == s.ID {
			return lifecycle.Invalidf(at+".flow", "a flow cannot feed itself")
		}
		if err := CheckID(at+".flow", src.Flow); err != nil {
			return err
		}
		if err := CheckID(at+".output", src.Output); err != nil {
			return err
		}
		if src.Node != "" {
			if err := CheckID(at+".node", src.Node); err != nil {
				return err
			}
		}
		if lookup != nil {
			if err := lookup(src.Flow, src.Output); err != nil {
				return lifecycle.Invalidf(at+".flow", "%v", err)
			}
		}
	}
	if src.Type != SrcFlow && (src.Flow != "" || src.Output != "" || src.Node != "") {
		return lifecycle.Invalidf(at+".flow", "only a source of type flow names a flow, output and node")
	}
	if err := checkSRTOnly(at, src.Type, src.LatencyMS, src.Passphrase, src.PBKeyLen); err != nil {
		return err
	}
	if src.Type == SrcSRTListener && src.PBKeyLen != 0 {
		return lifecycle.Invalidf(at+".pbkeylen", "the key length of a publisher's connection is the publisher's choice (the listener takes the caller's): remove pbkeylen; the passphrase is enforced")
	}
	if src.MinBitrate < 0 {
		return lifecycle.Invalidf(at+".min_bitrate", "%d is negative: use 0 for no floor", src.MinBitrate)
	}
	switch {
	case src.MaxCCErrors < 0:
		return lifecycle.Invalidf(at+".max_cc_errors", "%d is negative: use 0 for no limit", src.MaxCCErrors)
	case src.MaxCCErrors > 0 && wire(src.Type) != "mpegts":
		return lifecycle.Invalidf(at+".max_cc_errors", "counts MPEG-TS continuity errors: a %s source delivers no MPEG-TS (remove it, or use srt-listener or srt-caller)", src.Type)
	}
	if src.MaxBitrate > 0 && src.MinBitrate > src.MaxBitrate {
		return lifecycle.Invalidf(at+".min_bitrate", "%d is above max_bitrate %d: the source could never be used", src.MinBitrate, src.MaxBitrate)
	}
	return checkCommon(at, src.Allow, src.MaxBitrate, src.LatencyMS, src.Passphrase, src.PBKeyLen)
}

// checkSRTOnly refuses SRT settings on a source or output that is not
// SRT (they would be kept and never used).
func checkSRTOnly(at, typ string, latencyMS int, pass string, keylen int) error {
	if typ == SrcSRTListener || typ == SrcSRTCaller { // the output types share the names
		return nil
	}
	if key := srtSetting(latencyMS, pass, keylen); key != "" {
		return lifecycle.Invalidf(at+"."+key, "is an SRT setting: a %s has none (remove it, or use srt-listener or srt-caller)", typ)
	}
	return nil
}

// srtSetting names the first SRT setting that is set ("" for none).
func srtSetting(latencyMS int, pass string, keylen int) string {
	switch {
	case pass != "":
		return "passphrase"
	case keylen != 0:
		return "pbkeylen"
	case latencyMS != 0:
		return "latency_ms"
	}
	return ""
}

func (o *Output) validate(at string, hasBackup bool) error {
	if err := CheckID(at+".name", o.Name); err != nil {
		return err
	}
	if !slices.Contains(OutputTypes, o.Type) {
		return lifecycle.Invalidf(at+".type", "%q is not one of %s", o.Type, strings.Join(OutputTypes, ", "))
	}
	switch o.Type {
	case OutRTMPPush, OutSRTCaller:
		schemes := []string{"rtmp", "rtmps"}
		if o.Type == OutSRTCaller {
			schemes = []string{"srt"}
		}
		if err := CheckTarget(at+".url", o.URL, "publish", schemes...); err != nil {
			return err
		}
		if o.BackupURL != "" {
			if err := CheckTarget(at+".backup_url", o.BackupURL, "publish", schemes...); err != nil {
				return err
			}
			if !hasBackup {
				return lifecycle.Invalidf(at+".backup_url", "carries the backup source's media: add a backup source to the flow, or remove backup_url")
			}
			if o.BackupURL == o.URL {
				return lifecycle.Invalidf(at+".backup_url", "is the same destination as url: the backup tunnel needs its own")
			}
		}
	case OutFlow:
		if o.URL != "" || o.BackupURL != "" {
			return lifecycle.Invalidf(at+".url", "a flow output takes another flow's reference (flow, and optionally node), not a url")
		}
		if o.Flow != "" {
			if err := CheckID(at+".flow", o.Flow); err != nil {
				return err
			}
		}
		if o.Node != "" {
			if o.Flow == "" {
				return lifecycle.Invalidf(at+".node", "names the node of the flow this output delivers to: set flow too")
			}
			if err := CheckID(at+".node", o.Node); err != nil {
				return err
			}
		}
	default:
		if o.URL != "" {
			return lifecycle.Invalidf(at+".url", "a %s output is played from this node: it takes no url", o.Type)
		}
		if o.BackupURL != "" {
			return lifecycle.Invalidf(at+".backup_url", "a %s output is played from this node (it serves the failover-merged stream): it takes no backup_url", o.Type)
		}
	}
	if o.Type != OutFlow && (o.Flow != "" || o.Node != "") {
		return lifecycle.Invalidf(at+".flow", "only an output of type flow names a flow and node")
	}
	if err := checkSRTOnly(at, o.Type, o.LatencyMS, o.Passphrase, o.PBKeyLen); err != nil {
		return err
	}
	if o.Type == OutSRTListener && o.PBKeyLen != 0 {
		return lifecycle.Invalidf(at+".pbkeylen", "the key length of a reader's connection is the reader's choice (the listener takes the caller's): remove pbkeylen; the passphrase is enforced")
	}
	return checkCommon(at, o.Allow, o.MaxBitrate, o.LatencyMS, o.Passphrase, o.PBKeyLen)
}

// Caps on what a spec from the API may hold.
const (
	MaxAllow   = 256  // allowlist entries per source or output
	MaxURLLen  = 4096 // bytes of a URL
	MaxDescLen = 1024 // bytes of a description
)

func checkCommon(at string, allow []string, maxBitrate int64, latencyMS int, pass string, keylen int) error {
	if len(allow) > MaxAllow {
		return lifecycle.Invalidf(at+".allow", "%d entries is more than %d", len(allow), MaxAllow)
	}
	for i, a := range allow {
		if _, err := netutil.ParseAllowEntry(a); err != nil {
			return lifecycle.Invalidf(fmt.Sprintf("%s.allow[%d]", at, i), "%v", err)
		}
	}
	if maxBitrate < 0 {
		return lifecycle.Invalidf(at+".max_bitrate", "%d is negative: use 0 for unlimited", maxBitrate)
	}
	if latencyMS < 0 || latencyMS > 10000 {
		return lifecycle.Invalidf(at+".latency_ms", "%d is not between 0 and 10000", latencyMS)
	}
	if pass != "" && (len(pass) < 10 || len(pass) > 79) {
		return lifecycle.Invalidf(at+".passphrase", "is %d bytes long: SRT passphrases have 10 to 79", len(pass))
	}
	if keylen != 0 && keylen != 16 && keylen != 24 && keylen != 32 {
		return lifecycle.Invalidf(at+".pbkeylen", "%d is not 16, 24 or 32 (AES key bytes)", keylen)
	}
	if keylen != 0 && pass == "" {
		return lifecycle.Invalidf(at+".pbkeylen", "is the length of the key made from the passphrase: set passphrase too, or remove pbkeylen")
	}
	return nil
}

// CheckURL refuses a URL whose scheme is not one of schemes or that has no host.
func CheckURL(field, s string, schemes ...string) error { return checkURL(field, s, schemes...) }

// CheckTarget is CheckURL for a remote stream that is published to
// (action "publish") or read from ("read"): it must also be complete. An
// rtmp(s) URL names the app and the stream (key): rtmp://host[:port]/app/stream;
// an srt URL names host:port and a streamid. The refusal says what to add.
func CheckTarget(field, raw, action string, schemes ...string) error {
	if err := checkURL(field, raw, schemes...); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	switch u.Scheme {
	case "rtmp", "rtmps":
		app, name, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
		if app == "" || name == "" {
			return lifecycle.Invalidf(field, "%q names no app and stream: add them after the host, as in /live/STREAM-KEY", link.Redact(raw))
		}
	case "srt":
		if u.Port() == "" {
			return lifecycle.Invalidf(field, "%q has no port: write srt://host:port?streamid=...", link.Redact(raw))
		}
		// the parser the connect uses: what it would refuse is refused now
		_, o, err := libsrt.ParseURL(raw)
		if err != nil {
			return lifecycle.Invalidf(field, "%q: %v", link.Redact(raw), err)
		}
		if o.StreamID == "" {
			return lifecycle.Invalidf(field, "%q has no streamid: add ?streamid=%s:app/name (or the stream id the far end gives)", link.Redact(raw), action)
		}
	}
	return nil
}

// CheckSRTTarget refuses SRT settings for a target URL that is not srt://
// (they would be kept and never used) and a key length without a
// passphrase; prefix is the fields' path ("" or "destination.").
func CheckSRTTarget(prefix, raw string, latencyMS int, pass string, keylen int) error {
	if key := srtSetting(latencyMS, pass, keylen); key != "" && !strings.HasPrefix(raw, "srt://") {
		return lifecycle.Invalidf(prefix+key, "is an SRT setting and the url is not srt://: remove it")
	}
	if keylen != 0 && pass == "" {
		return lifecycle.Invalidf(prefix+"pbkeylen", "is the length of the key made from the passphrase: set passphrase too, or remove pbkeylen")
	}
	return nil
}

func checkURL(field, s string, schemes ...string) error {
	if s == "" {
		return lifecycle.Invalidf(field, "required: write e.g. %s://host:port/...", schemes[0])
	}
	if len(s) > MaxURLLen {
		return lifecycle.Invalidf(field, "is %d bytes long, more than %d", len(s), MaxURLLen)
	}
	// a refusal quotes the URL as the logs do, its secrets masked: the
	// answer may be shown to others than the one who wrote them
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return lifecycle.Invalidf(field, "%q is not a URL: %v", link.Redact(s), err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return lifecycle.Invalidf(field, "scheme %q is not %s", u.Scheme, strings.Join(schemes, " or "))
	}
	if u.Host == "" {
		return lifecycle.Invalidf(field, "%q has no host", link.Redact(s))
	}
	return nil
}
