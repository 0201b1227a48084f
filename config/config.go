package config

// The node's configuration: a strict TOML file plus drop-ins.
//
// Adding a section is one field in Config (with its toml tag and a default
// in Default) and one validate method on its type, called from
// Config.Validate. Arrays of tables ([[name]]) are appended across
// drop-ins automatically; Diff and the unknown-key check find new fields by
// reflection.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/relaymesh/relaymesh/auth"
	"github.com/relaymesh/relaymesh/netutil"
)

// SchemaVersion is the schema version this build reads.
const SchemaVersion = 1

// Node roles.
const (
	RoleStandalone = "standalone" // edge and center on one host
	RoleEdge       = "edge"
	RoleCenter     = "center"
)

// Config is the node-local configuration. Field tags are the TOML keys.
type Config struct {
	Version    int               `toml:"version"`
	Node       NodeConfig        `toml:"node"`
	RTMP       RTMPConfig        `toml:"rtmp"`
	HTTP       HTTPConfig        `toml:"http"`
	HLS        HLSConfig         `toml:"hls"`
	SRT        SRTConfig         `toml:"srt"`
	API        APIConfig         `toml:"api"`
	Limits     LimitsConfig      `toml:"limits"`
	Auth       AuthConfig        `toml:"auth"`
	SRTStreams []SRTStreamConfig `toml:"srt_stream"`
	WebRTC     WebRTCConfig      `toml:"webrtc"` // webrtc.go

	// The cluster: cluster.go.
	Cluster   ClusterConfig    `toml:"cluster"`
	Routes    []RouteConfig    `toml:"route"`
	Locations []LocationConfig `toml:"location"`
	// Operations: ops.go.
	QoS      QoSConfig      `toml:"qos"`
	Webhooks WebhooksConfig `toml:"webhooks"`
	// Flows, relays and pseudo-live tasks: objects.go.
	Objects ObjectsConfig `toml:"objects"`
	Flows   []FlowConfig  `toml:"flow"`
	Relays  []RelayConfig `toml:"relay"`
	Tasks   []TaskConfig  `toml:"task"`

	// Sources lists the files Load read, main file first. Not a TOML key.
	Sources []string `toml:"-"`
}

// NodeConfig is [node]: what and where this node is.
type NodeConfig struct {
	Name     string  `toml:"name"`      // "" = the host name; see ResolveName
	Role     string  `toml:"role"`      // standalone | edge | center
	Site     string  `toml:"site"`      // e.g. "sin", "fra"
	Region   string  `toml:"region"`    // e.g. "apac", "eu"
	Lat      float64 `toml:"lat"`       // -90..90
	Lon      float64 `toml:"lon"`       // -180..180
	DataDir  string  `toml:"data_dir"`  // "" = see ResolveDataDir
	LogLevel string  `toml:"log_level"` // debug | info | warn | error
}

// RTMPConfig is [rtmp].
type RTMPConfig struct {
	Listen string `toml:"listen"` // host:port; "" disables
}

// HTTPConfig is [http]: HTTP media (HTTP-FLV).
type HTTPConfig struct {
	Listen string `toml:"listen"` // host:port; "" disables
}

// SRTConfig is [srt]: the SRT listener and its defaults for every stream.
type SRTConfig struct {
	Listen          string   `toml:"listen"` // host:port (UDP); "" disables
	Latency         Duration `toml:"latency"`
	PeerIdleTimeout Duration `toml:"peer_idle_timeout"`
	// Passphrases ("" = no encryption; else 10..79 bytes). The key length
	// (16, 24 or 32) is the caller's choice, as with every SRT listener:
	// the caller's pbkeylen decides it.
	PublishPassphrase string `toml:"publish_passphrase"`
	ReadPassphrase    string `toml:"read_passphrase"`
	MaxConnections    int    `toml:"max_connections"` // 0 = unlimited
	// MaxReceiveMemory bounds the receive buffers of every accepted SRT
	// connection of the node ("" or "0" = a quarter of the node's
	// memory); a handshake beyond it is refused. The backbone's links
	// (members only) are counted in it but never refused.
	MaxReceiveMemory ByteSize `toml:"max_receive_memory"`
}

// SRTStreamConfig is one [[srt_stream]]: the passphrases of one stream
// key ("" inherits [srt]'s, "-" means unencrypted for this stream) and
// its latency (0 inherits [srt]'s), which the listener sets per
// connection in libsrt's handshake callback; the larger of it and the
// caller's latency is used.
type SRTStreamConfig struct {
	Key               string   `toml:"key"` // "app/name"
	PublishPassphrase string   `toml:"publish_passphrase"`
	ReadPassphrase    string   `toml:"read_passphrase"`
	Latency           Duration `toml:"latency"`
}

// APIConfig is [api]: the JSON API and /metrics.
type APIConfig struct {
	Listen    string `toml:"listen"`     // host:port; "" disables
	TokenFile string `toml:"token_file"` // bearer token for every call beyond loopback, for mutating calls on loopback; required beyond loopback
	// ReadTokenFile: a second token that grants the read-only routes (GET,
	// /metrics) but no change and no pprof; "" = none.
	ReadTokenFile string `toml:"read_token_file"`
	// MetricsOpen serves /metrics without a token beyond loopback (for a
	// scraper on a trusted network); off by default.
	MetricsOpen bool `toml:"metrics_open"`
}

// LimitsConfig is [limits]. Counts are 0 for unlimited.
type LimitsConfig struct {
	MaxPublishers       int      `toml:"max_publishers"`
	MaxReadersPerStream int      `toml:"max_readers_per_stream"`
	MaxConnections      int      `toml:"max_connections"` // per listener
	MaxBitrate          Bitrate  `toml:"max_bitrate"`     // per publisher; 0 = unlimited
	ReconnectGrace      Duration `toml:"reconnect_grace"`
	Takeover            bool     `toml:"takeover"` // a second publisher replaces the first
	HandshakeTimeout    Duration `toml:"handshake_timeout"`
	ReadTimeout         Duration `toml:"read_timeout"`   // publisher silence before disconnect
	WriteTimeout        Duration `toml:"write_timeout"`  // a reader blocked this long is disconnected
	MaxReaderLag        Duration `toml:"max_reader_lag"` // a reader this far behind skips or is dropped
	WriteCoalesce       Duration `toml:"write_coalesce"` // RTMP/HTTP-FLV players get packets at most once per window
}

// AuthConfig is [auth]: signed URLs and CIDR allowlists.
type AuthConfig struct {
	Publish      bool     `toml:"publish"`  // require signed URLs to publish
	Play         bool     `toml:"play"`     // require signed URLs to play
	KeyFile      string   `toml:"key_file"` // HMAC key; see auth.LoadKey
	PublishAllow []string `toml:"publish_allow"`
	PlayAllow    []string `toml:"play_allow"`
	// LocateSigns: /v1/locate answers with signed publish URLs (when
	// publish is on) to any caller it admits; unset = true when the API
	// listens on loopback, false beyond. A caller with the API token or
	// the locate token always gets signed URLs.
	LocateSigns *bool `toml:"locate_signs"`
	// LocateTokenFile: a token that grants /v1/locate only, with signed
	// URLs (for a broadcaster portal); "" = none.
	LocateTokenFile string `toml:"locate_token_file"`
}

// Default returns the built-in standalone configuration; configs/
// standalone.toml spells it out. Each call returns a fresh value.
func Default() *Config {
	return &Config{
		Version: SchemaVersion,
		Node: NodeConfig{
			Role:     RoleStandalone,
			Site:     "local",
			Region:   "local",
			LogLevel: "info",
		},
		RTMP:   RTMPConfig{Listen: ":1935"},
		HTTP:   HTTPConfig{Listen: ":8080"},
		HLS:    defaultHLS(),
		WebRTC: defaultWebRTC(),
		SRT: SRTConfig{
			Listen:          ":8890",
			Latency:         Duration(120 * time.Millisecond),
			PeerIdleTimeout: Duration(5 * time.Second),
		},
		API: APIConfig{Listen: "127.0.0.1:9997"},
		Limits: LimitsConfig{
			ReconnectGrace:   Duration(5 * time.Second),
			HandshakeTimeout: Duration(5 * time.Second),
			ReadTimeout:      Duration(10 * time.Second),
			WriteTimeout:     Duration(10 * time.Second),
			MaxReaderLag:     Duration(4 * time.Second),
		},
		Auth:    AuthConfig{PublishAllow: []string{}, PlayAllow: []string{}},
		Cluster: ClusterConfig{Replace: DefaultReplace()},
	}
}

// ---------------------------------------------------------------------------
// Errors

// FieldError is one problem in a config: a key path, what is wrong, and
// where (file:line) when known. Load and Validate return them joined with
// errors.Join; print err.Error() for one problem per line.
type FieldError struct {
	Pos  string // "file:line" or "file:line:col" or "file"; may be ""
	Path string // key path such as "srt_stream[1].latency"; "" for syntax errors
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Pos != "" {
		b.WriteString(e.Pos)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors returns the FieldErrors inside err (as joined by Load or
// Validate), in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var add func(error)
	add = func(e error) {
		for ; e != nil; e = errors.Unwrap(e) {
			if fe, ok := e.(*FieldError); ok {
				out = append(out, fe)
				return
			}
			if _, ok := e.(interface{ Unwrap() []error }); ok {
				walkJoined(e, add)
				return
			}
		}
	}
	walkJoined(err, add)
	return out
}

// Problems unpacks a config error (an errors.Join tree, as Load,
// Validate, CheckFiles and CheckServiceUser return) into one line per
// problem.
func Problems(err error) []string {
	var out []string
	walkJoined(err, func(e error) { out = append(out, e.Error()) })
	return out
}

// walkJoined calls leaf for every error in the errors.Join tree err that
// is not itself a join, in order.
func walkJoined(err error, leaf func(error)) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			walkJoined(e, leaf)
		}
		return
	}
	leaf(err)
}

// cfgPath is a key path as users write it: "limits.max_bitrate",
// "flow[2].outputs[0].url". Sections build their children's paths with Key
// and Index, so every message names the exact key.
type cfgPath string

func (p cfgPath) Key(name string) cfgPath {
	if p == "" {
		return cfgPath(name)
	}
	return p + "." + cfgPath(name)
}

func (p cfgPath) Index(i int) cfgPath { return p + cfgPath("["+strconv.Itoa(i)+"]") }

// cfgProblems collects validation problems; each check appends and goes on.
type cfgProblems struct{ errs []error }

func (ps *cfgProblems) add(at cfgPath, format string, args ...any) {
	ps.errs = append(ps.errs, &FieldError{Path: string(at), Msg: fmt.Sprintf(format, args...)})
}

func (ps *cfgProblems) err() error { return errors.Join(ps.errs...) }

// ---------------------------------------------------------------------------
// Load

// DropInDir returns the drop-in directory of a main config file:
// conf.d beside it.
func DropInDir(mainPath string) string {
	return filepath.Join(filepath.Dir(mainPath), "conf.d")
}

// Load reads the main config file paths[0] onto Default(), then every
// conf.d/*.toml beside it in name order, then any further paths in order,
// and validates the result. A later file overrides scalars and lists and
// appends entries to arrays of tables ([[srt_stream]] …). Unknown keys,
// wrong types and bad values are reported together, each with file:line
// and key path. With no paths, Load returns the validated Default().
// Load does not look at the files the config names (key files…); see
// CheckFiles.
func Load(paths ...string) (*Config, error) {
	c := Default()
	if len(paths) == 0 {
		return c, c.Validate()
	}
	files := []string{paths[0]}
	dropins, err := filepath.Glob(filepath.Join(DropInDir(paths[0]), "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("config drop-ins: %w", err)
	}
	slices.Sort(dropins)
	files = append(files, dropins...)
	files = append(files, paths[1:]...)

	var problems []error
	locs := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		errs, fatal := c.decodeFile(f, data, locs)
		problems = append(problems, errs...)
		if fatal {
			return nil, cfgSortByPos(problems, files)
		}
		c.Sources = append(c.Sources, f)
	}
	if err := c.Validate(); err != nil {
		for _, fe := range FieldErrors(err) {
			fe.Pos = cfgLookupPos(locs, fe.Path)
		}
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return nil, cfgSortByPos(problems, files)
	}
	return c, nil
}

// cfgSortByPos flattens problems to FieldErrors ordered by file (in load
// order) and line, so the report reads top to bottom.
func cfgSortByPos(problems []error, files []string) error {
	fes := FieldErrors(errors.Join(problems...))
	rank := func(fe *FieldError) (int, int) {
		for i, f := range files {
			rest, ok := strings.CutPrefix(fe.Pos, f)
			if !ok || (rest != "" && rest[0] != ':') {
				continue
			}
			lineStr, _, _ := strings.Cut(strings.TrimPrefix(rest, ":"), ":")
			line, _ := strconv.Atoi(lineStr)
			return i, line
		}
		return len(files), 0
	}
	slices.SortStableFunc(fes, func(a, b *FieldError) int {
		fa, la := rank(a)
		fb, lb := rank(b)
		if fa != fb {
			return fa - fb
		}
		return la - lb
	})
	errs := make([]error, len(fes))
	for i, fe := range fes {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

// cfgAllDecodeErrors reports every wrong-typed or refused value of a file, not just
// the first: the TOML decoder stops at the first, so the line it names is
// blanked and the file decoded again (into a scratch config), up to a
// bound. clean is the source without the bad lines when it decodes, else "".
func cfgAllDecodeErrors(name, src string, first error, keyPos []cfgKeyPos) (probs []error, clean string) {
	probs = []error{cfgDecodeError(name, first, keyPos)}
	lines := strings.Split(src, "\n")
	seen := map[int]bool{}
	for range 32 {
		var fe *FieldError
		if !errors.As(probs[len(probs)-1], &fe) {
			break
		}
		i := strings.LastIndexByte(fe.Pos, ':')
		line, err := strconv.Atoi(fe.Pos[i+1:])
		if i < 0 || err != nil || line < 1 || line > len(lines) || seen[line] {
			break
		}
		seen[line] = true
		lines[line-1] = ""
		text := strings.Join(lines, "\n")
		_, err = toml.Decode(text, Default())
		if err == nil {
			return probs, text
		}
		// the decoder reports a value its type refuses (a Duration's
		// "fast") as a ParseError too: only a text that no longer parses
		// as TOML at all (a blanked line opened a multi-line value) ends
		// the search
		var generic map[string]any
		if _, serr := toml.Decode(text, &generic); serr != nil {
			break // blanking made the rest unreadable: report what we have
		}
		probs = append(probs, cfgDecodeError(name, err, keyPos))
	}
	return probs, ""
}

// decodeFile decodes one file onto c. It returns the problems found and
// whether decoding stopped (syntax or type error: c is then half-updated
// and must be dropped). locs gets "file:line" for every key path the file
// sets, for later Validate messages.
func (c *Config) decodeFile(name string, data []byte, locs map[string]string) (problems []error, fatal bool) {
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, &FieldError{Pos: name, Msg: fmt.Sprintf("the TOML decoder failed: %v", r)})
			fatal = true
		}
	}()
	src := string(data)

	// Syntax first, into a generic map, so a syntax error is told apart
	// from a value error.
	var generic map[string]any
	if _, err := toml.Decode(src, &generic); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return []error{&FieldError{Pos: fmt.Sprintf("%s:%d:%d", name, pe.Position.Line, pe.Position.Col), Msg: pe.Message}}, true
		}
		return []error{&FieldError{Pos: name, Msg: err.Error()}}, true
	}

	// Arrays of tables are appended across files: decode them into empty
	// slices and put the earlier entries in front afterwards.
	arrays := cfgTableArrays(c)
	offsets := map[string]int{}
	saved := make([]reflect.Value, len(arrays))
	for i, a := range arrays {
		saved[i] = reflect.ValueOf(a.ptr).Elem()
		offsets[a.key] = saved[i].Len()
		cp := reflect.New(saved[i].Type()).Elem()
		cp.Set(saved[i])
		saved[i] = cp
		reflect.ValueOf(a.ptr).Elem().Set(reflect.Zero(saved[i].Type()))
	}
	keyPos := cfgLocateKeys(src, offsets)

	md, err := toml.Decode(src, c)
	var typeProbs []error
	if err != nil {
		// Keep going past a wrong type so one run reports everything: the
		// rest of the file is decoded (and validated) without the bad lines.
		var clean string
		typeProbs, clean = cfgAllDecodeErrors(name, src, err, keyPos)
		if clean == "" {
			return typeProbs, true
		}
		for i, a := range arrays {
			reflect.ValueOf(a.ptr).Elem().Set(reflect.Zero(saved[i].Type()))
		}
		if md, err = toml.Decode(clean, c); err != nil {
			return typeProbs, true
		}
	}
	for i, a := range arrays {
		v := reflect.ValueOf(a.ptr).Elem()
		if saved[i].Len() > 0 {
			v.Set(reflect.AppendSlice(saved[i], v))
		}
	}
	for _, kp := range keyPos {
		locs[kp.path] = fmt.Sprintf("%s:%d", name, kp.line)
	}
	return append(typeProbs, cfgUnknownKeys(name, &md, keyPos)...), false
}

type cfgTableArray struct {
	key string
	ptr any // *[]T
}

// cfgTableArrays lists c's top-level arrays of tables.
func cfgTableArrays(c *Config) []cfgTableArray {
	var out []cfgTableArray
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := cfgTagName(f)
		if key == "" || f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Struct {
			continue
		}
		out = append(out, cfgTableArray{key: key, ptr: v.Field(i).Addr().Interface()})
	}
	return out
}

func cfgTagName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

var (
	cfgLibErrRe      = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)
	cfgIncompatRe    = regexp.MustCompile(`^incompatible types: TOML value has type (.*); destination has type (.*)$`)
	cfgTypeMismatchR = regexp.MustCompile(`^type mismatch for .*: expected table but found (.*)$`)
)

// cfgDecodeError turns an error from decoding into Config into one
// FieldError line: "file:line: key.path: message".
func cfgDecodeError(name string, err error, keyPos []cfgKeyPos) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &FieldError{
			Pos:  fmt.Sprintf("%s:%d", name, pe.Position.Line),
			Path: cfgIndexedPath(pe.LastKey, pe.Position.Line, keyPos),
			Msg:  pe.Message,
		}
	}
	msg := err.Error()
	m := cfgLibErrRe.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{Pos: name, Msg: strings.TrimPrefix(msg, "toml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	key, uerr := strconv.Unquote(m[2])
	if uerr != nil {
		key = m[2]
	}
	detail := m[3]
	if mm := cfgIncompatRe.FindStringSubmatch(detail); mm != nil {
		detail = fmt.Sprintf("want %s, got %s", cfgGoTypeName(mm[2]), cfgGoTypeName(mm[1]))
		if mm[2] == "slice" && cfgGoTypeName(mm[1]) == "table" {
			detail += fmt.Sprintf("; write [[%s]] for each entry", key)
		}
	} else if mm := cfgTypeMismatchR.FindStringSubmatch(detail); mm != nil {
		detail = fmt.Sprintf("want a table, got %s", cfgGoTypeName(mm[1]))
	}
	pos := name
	if line > 0 {
		pos = fmt.Sprintf("%s:%d", name, line)
	}
	return &FieldError{Pos: pos, Path: cfgIndexedPath(key, line, keyPos), Msg: detail}
}

func cfgGoTypeName(s string) string {
	switch s {
	case "int64", "integer":
		return "integer"
	case "float64", "float":
		return "float"
	case "bool", "boolean":
		return "boolean"
	case "string":
		return "string"
	case "slice", "[]any", "[]interface {}", "[]map[string]any", "[]map[string]interface {}":
		return "array"
	case "map", "map[string]any", "map[string]interface {}":
		return "table"
	case "time.Time":
		return "datetime"
	}
	return s
}

// cfgIndexedPath returns the array-indexed path ("srt_stream[1].latency")
// of a dotted key seen at line, or key itself when unknown.
func cfgIndexedPath(key string, line int, keyPos []cfgKeyPos) string {
	for _, kp := range keyPos {
		if kp.key == key && kp.line == line {
			return kp.path
		}
	}
	return key
}

// cfgUnknownKeys reports the keys the decoder did not store (and those it
// matched only by ignoring case), outermost first: an unknown table is
// reported once, not once per key inside it.
func cfgUnknownKeys(name string, md *toml.MetaData, keyPos []cfgKeyPos) []error {
	bad := map[string]bool{}
	for _, k := range md.Undecoded() {
		bad[k.String()] = true
	}
	for _, k := range md.Keys() {
		if !cfgSchemaHas(reflect.TypeFor[Config](), k) {
			bad[k.String()] = true
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var out []error
	seen := map[string]int{}
	for _, k := range md.Keys() {
		ks := k.String()
		if !bad[ks] {
			continue
		}
		n := seen[ks]
		seen[ks]++
		outer := false
		for i := 1; i < len(k); i++ {
			if bad[toml.Key(k[:i]).String()] {
				outer = true
				break
			}
		}
		if outer {
			continue
		}
		fe := &FieldError{Pos: name, Path: ks, Msg: "unknown key"}
		// The n-th occurrence of this key in the file.
		m := 0
		for _, kp := range keyPos {
			if kp.key == ks {
				if m == n {
					fe.Pos = fmt.Sprintf("%s:%d", name, kp.line)
					fe.Path = kp.path
					break
				}
				m++
			}
		}
		if s := cfgSuggest(k); s != "" {
			// Keep the array indexes of fe.Path: replace its last part.
			parent := ""
			if len(k) > 1 {
				parent = strings.TrimSuffix(fe.Path, "."+toml.Key{k[len(k)-1]}.String()) + "."
			}
			fe.Msg += "; did you mean " + parent + toml.Key{s}.String() + "?"
		}
		out = append(out, fe)
	}
	return out
}

// cfgSchemaField finds the struct field for key name in t: exact match, or
// a case-insensitive one (reported as not exact).
func cfgSchemaField(t reflect.Type, name string) (f reflect.StructField, exact, ok bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if tag := cfgTagName(sf); tag == name {
			return sf, true, true
		} else if tag != "" && strings.EqualFold(tag, name) {
			f, ok = sf, true
		}
	}
	return f, false, ok
}

var cfgUnmarshalerType = reflect.TypeFor[toml.Unmarshaler]()

// cfgSchemaHas reports whether key names a field of t exactly (the TOML
// decoder also accepts keys that differ in case; the config does not).
func cfgSchemaHas(t reflect.Type, key toml.Key) bool {
	for _, k := range key {
		for t.Kind() == reflect.Pointer || (t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8) {
			t = t.Elem()
		}
		if reflect.PointerTo(t).Implements(cfgUnmarshalerType) {
			return true // it takes whatever is below
		}
		switch t.Kind() {
		case reflect.Struct:
			f, exact, ok := cfgSchemaField(t, k)
			if !ok || !exact {
				return false
			}
			t = f.Type
		case reflect.Map:
			t = t.Elem()
		case reflect.Interface:
			return true
		default:
			return false
		}
	}
	return true
}

// cfgSuggest proposes a known sibling key name close to an unknown key's
// last part, or "".
func cfgSuggest(key toml.Key) string {
	t := reflect.TypeFor[Config]()
	for _, k := range key[:len(key)-1] {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, exact, ok := cfgSchemaField(t, k)
		if !ok || !exact {
			return ""
		}
		t = f.Type
	}
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	last := key[len(key)-1]
	best, bestD := "", 3
	for i := range t.NumField() {
		tag := cfgTagName(t.Field(i))
		if tag == "" {
			continue
		}
		d := cfgEditDistance(strings.ToLower(last), tag)
		if d < bestD {
			best, bestD = tag, d
		}
	}
	return best
}

func cfgEditDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// cfgLookupPos finds where path (or its nearest parent) was set.
func cfgLookupPos(locs map[string]string, path string) string {
	for p := path; p != ""; {
		if pos, ok := locs[p]; ok {
			return pos
		}
		switch i := strings.LastIndexAny(p, ".["); {
		case i < 0:
			p = ""
		default:
			p = p[:i]
		}
	}
	return ""
}

// ---------------------------------------------------------------------------
// Key locations. toml.MetaData keeps key positions private, so a small
// scanner walks the (already parsed, hence valid) source and records the
// line of every table header and key, with array indexes resolved.

type cfgKeyPos struct {
	key  string // dotted key as toml.Key.String() gives it: "srt_stream.latency"
	path string // with array indexes: "srt_stream[1].latency"
	line int
}

type cfgSeg struct {
	name string
	idx  int // index in an array of tables, or -1
}

func cfgRender(segs []cfgSeg) (key, path string) {
	var kb, pb strings.Builder
	for i, s := range segs {
		if i > 0 {
			kb.WriteByte('.')
			pb.WriteByte('.')
		}
		q := toml.Key{s.name}.String()
		kb.WriteString(q)
		pb.WriteString(q)
		if s.idx >= 0 {
			pb.WriteString("[" + strconv.Itoa(s.idx) + "]")
		}
	}
	return kb.String(), pb.String()
}

type cfgScanner struct {
	s      string
	i      int
	line   int
	table  []cfgSeg
	counts map[string]int // path of an array of tables -> entries so far
	out    []cfgKeyPos
}

// cfgLocateKeys scans src. offsets gives, per top-level array of tables,
// how many entries earlier files made, so indexes continue across files.
func cfgLocateKeys(src string, offsets map[string]int) []cfgKeyPos {
	sc := &cfgScanner{s: src, line: 1, counts: map[string]int{}}
	for k, n := range offsets {
		sc.counts[k] = n
	}
	for sc.i < len(sc.s) {
		start := sc.i
		sc.skipSpace(true)
		if sc.i >= len(sc.s) {
			break
		}
		line := sc.line
		if sc.s[sc.i] == '[' {
			array := strings.HasPrefix(sc.s[sc.i:], "[[")
			sc.i++
			if array {
				sc.i++
			}
			names := sc.key()
			for sc.i < len(sc.s) && (sc.s[sc.i] == ']' || sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
				sc.i++
			}
			if len(names) > 0 {
				sc.header(names, array, line)
			}
		} else {
			names := sc.key()
			sc.skipSpace(false)
			if sc.i < len(sc.s) && sc.s[sc.i] == '=' {
				sc.i++
				if len(names) > 0 {
					segs := slices.Clone(sc.table)
					for _, n := range names {
						segs = append(segs, cfgSeg{name: n, idx: -1})
					}
					sc.record(segs, line)
				}
				sc.value()
			}
		}
		if sc.i == start {
			sc.i++ // never stall on input the scanner does not understand
		}
	}
	return sc.out
}

func (sc *cfgScanner) record(segs []cfgSeg, line int) {
	k, p := cfgRender(segs)
	sc.out = append(sc.out, cfgKeyPos{key: k, path: p, line: line})
}

func (sc *cfgScanner) header(names []string, array bool, line int) {
	var segs []cfgSeg
	for j, n := range names {
		seg := cfgSeg{name: n, idx: -1}
		_, p := cfgRender(append(slices.Clone(segs), seg))
		if array && j == len(names)-1 {
			sc.counts[p]++
			seg.idx = sc.counts[p] - 1
		} else if cnt, ok := sc.counts[p]; ok && cnt > 0 {
			seg.idx = cnt - 1
		}
		segs = append(segs, seg)
	}
	sc.table = segs
	sc.record(segs, line)
}

// skipSpace skips blanks and comments, and newlines when nl is set.
func (sc *cfgScanner) skipSpace(nl bool) {
	for sc.i < len(sc.s) {
		switch c := sc.s[sc.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			sc.i++
		case c == '\n' && nl:
			sc.line++
			sc.i++
		case c == '#':
			for sc.i < len(sc.s) && sc.s[sc.i] != '\n' {
				sc.i++
			}
		default:
			return
		}
	}
}

// key reads a dotted key: bare, "basic" or 'literal' parts.
func (sc *cfgScanner) key() []string {
	var names []string
	for sc.i < len(sc.s) {
		sc.skipSpace(false)
		if sc.i >= len(sc.s) {
			break
		}
		var name string
		switch c := sc.s[sc.i]; c {
		case '"', '\'':
			start := sc.i
			sc.str()
			raw := sc.s[start:sc.i]
			if c == '"' {
				if u, err := strconv.Unquote(raw); err == nil {
					name = u
				} else {
					name = strings.Trim(raw, `"`)
				}
			} else {
				name = strings.Trim(raw, "'")
			}
		default:
			start := sc.i
			for sc.i < len(sc.s) && !strings.ContainsRune(" \t\r\n=.[]#\"'", rune(sc.s[sc.i])) {
				sc.i++
			}
			if sc.i == start {
				return names
			}
			name = sc.s[start:sc.i]
		}
		names = append(names, name)
		sc.skipSpace(false)
		if sc.i < len(sc.s) && sc.s[sc.i] == '.' {
			sc.i++
			continue
		}
		break
	}
	return names
}

// str skips one string of any of TOML's four kinds, counting newlines.
func (sc *cfgScanner) str() {
	s := sc.s
	for _, delim := range []string{`"""`, `'''`} {
		if strings.HasPrefix(s[sc.i:], delim) {
			sc.i += 3
			for sc.i < len(s) {
				if delim[0] == '"' && s[sc.i] == '\\' {
					if sc.i+1 < len(s) && s[sc.i+1] == '\n' {
						sc.line++
					}
					sc.i += 2
					continue
				}
				if strings.HasPrefix(s[sc.i:], delim) {
					sc.i += 3
					for n := 0; n < 2 && sc.i < len(s) && s[sc.i] == delim[0]; n++ {
						sc.i++
					}
					return
				}
				if s[sc.i] == '\n' {
					sc.line++
				}
				sc.i++
			}
			return
		}
	}
	q := s[sc.i]
	sc.i++
	for sc.i < len(s) && s[sc.i] != q && s[sc.i] != '\n' {
		if q == '"' && s[sc.i] == '\\' {
			sc.i++
		}
		sc.i++
	}
	if sc.i < len(s) && s[sc.i] == q {
		sc.i++
	}
}

// value skips a value: a string, a (multi-line) array or inline table, or
// a scalar up to the end of the line.
func (sc *cfgScanner) value() {
	sc.skipSpace(false)
	depth := 0
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"' || c == '\'':
			sc.str()
			if depth == 0 {
				return
			}
			continue
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
			if depth <= 0 {
				sc.i++
				return
			}
		case c == '#':
			if depth == 0 {
				return
			}
			sc.skipSpace(false)
			continue
		case c == '\n':
			if depth == 0 {
				return
			}
			sc.line++
		}
		sc.i++
	}
}

// ---------------------------------------------------------------------------
// Validate

// Validate checks every value and returns all problems joined, each a
// *FieldError naming its key path. It does not touch the file system; see
// CheckFiles.
func (c *Config) Validate() error {
	var ps cfgProblems
	if c.Version != SchemaVersion {
		ps.add("version", "%d is not supported: this relaymesh reads version %d", c.Version, SchemaVersion)
	}
	c.Node.validate(&ps, "node")
	c.RTMP.validate(&ps, "rtmp")
	c.HTTP.validate(&ps, "http")
	c.HLS.validate(&ps, "hls")
	c.SRT.validate(&ps, "srt")
	c.API.validate(&ps, "api")
	c.Limits.validate(&ps, "limits")
	c.Auth.validate(&ps, "auth")
	c.WebRTC.validate(&ps, "webrtc", c)
	keys := map[string]int{}
	for i := range c.SRTStreams {
		at := cfgPath("srt_stream").Index(i)
		c.SRTStreams[i].validate(&ps, at)
		if j, dup := keys[c.SRTStreams[i].Key]; dup && c.SRTStreams[i].Key != "" {
			ps.add(at.Key("key"), "%q is already configured by srt_stream[%d]", c.SRTStreams[i].Key, j)
		} else {
			keys[c.SRTStreams[i].Key] = i
		}
	}
	c.validateListeners(&ps)
	c.validateCluster(&ps)
	c.validateOps(&ps)
	c.validateObjects(&ps)
	return ps.err()
}

func (n *NodeConfig) validate(ps *cfgProblems, at cfgPath) {
	if n.Name != "" {
		ps.name(at.Key("name"), n.Name)
	}
	ps.oneOf(at.Key("role"), n.Role, RoleStandalone, RoleEdge, RoleCenter)
	if n.Site == "" {
		ps.add(at.Key("site"), "must not be empty: name the site, e.g. \"fra\"")
	} else {
		ps.name(at.Key("site"), n.Site)
	}
	if n.Region == "" {
		ps.add(at.Key("region"), "must not be empty: name the region, e.g. \"eu\"")
	} else {
		ps.name(at.Key("region"), n.Region)
	}
	if !(n.Lat >= -90 && n.Lat <= 90) {
		ps.add(at.Key("lat"), "%v is not a latitude between -90 and 90", n.Lat)
	}
	if !(n.Lon >= -180 && n.Lon <= 180) {
		ps.add(at.Key("lon"), "%v is not a longitude between -180 and 180", n.Lon)
	}
	if n.DataDir != "" && !filepath.IsAbs(n.DataDir) {
		ps.add(at.Key("data_dir"), "%q is not an absolute path", n.DataDir)
	}
	ps.oneOf(at.Key("log_level"), n.LogLevel, "debug", "info", "warn", "error")
}

func (r *RTMPConfig) validate(ps *cfgProblems, at cfgPath) { ps.listen(at.Key("listen"), r.Listen) }
func (h *HTTPConfig) validate(ps *cfgProblems, at cfgPath) { ps.listen(at.Key("listen"), h.Listen) }

func (s *SRTConfig) validate(ps *cfgProblems, at cfgPath) {
	ps.listen(at.Key("listen"), s.Listen)
	if s.Latency > Duration(10*time.Second) {
		ps.add(at.Key("latency"), "%s is more than 10s", s.Latency)
	}
	ps.positive(at.Key("peer_idle_timeout"), s.PeerIdleTimeout)
	ps.passphrase(at.Key("publish_passphrase"), s.PublishPassphrase)
	ps.passphrase(at.Key("read_passphrase"), s.ReadPassphrase)
	ps.count(at.Key("max_connections"), s.MaxConnections)
	if s.MaxReceiveMemory != 0 && s.MaxReceiveMemory < MinSRTReceiveMemory {
		ps.add(at.Key("max_receive_memory"), "%s is below %s, too little for a few SRT connections: leave it unset for a quarter of the node's memory", s.MaxReceiveMemory, MinSRTReceiveMemory)
	}
}

// MinSRTReceiveMemory is the least srt.max_receive_memory accepted.
const MinSRTReceiveMemory = ByteSize(1 << 20)

func (s *SRTStreamConfig) validate(ps *cfgProblems, at cfgPath) {
	ps.streamKey(at.Key("key"), s.Key)
	if s.Latency < 0 || s.Latency > Duration(10*time.Second) {
		ps.add(at.Key("latency"), "%s is outside 0..10s", s.Latency)
	}
	for _, p := range []struct{ key, val string }{
		{"publish_passphrase", s.PublishPassphrase}, {"read_passphrase", s.ReadPassphrase},
	} {
		if p.val != "-" {
			ps.passphrase(at.Key(p.key), p.val)
		}
	}
}

func (a *APIConfig) validate(ps *cfgProblems, at cfgPath) {
	if !ps.listen(at.Key("listen"), a.Listen) || a.Listen == "" {
		return
	}
	if a.TokenFile == "" && !IsLoopback(a.Listen) {
		ps.add(at.Key("token_file"), "required when api.listen (%q) is not a loopback address: set token_file, or listen on 127.0.0.1", a.Listen)
	}
	if a.ReadTokenFile != "" && !filepath.IsAbs(a.ReadTokenFile) {
		ps.add(at.Key("read_token_file"), "%q is not an absolute path", a.ReadTokenFile)
	}
	if a.ReadTokenFile != "" && a.TokenFile == "" {
		ps.add(at.Key("read_token_file"), "needs token_file: a read-only token is only useful when the other routes need the full one")
	}
}

func (l *LimitsConfig) validate(ps *cfgProblems, at cfgPath) {
	ps.count(at.Key("max_publishers"), l.MaxPublishers)
	ps.count(at.Key("max_readers_per_stream"), l.MaxReadersPerStream)
	ps.count(at.Key("max_connections"), l.MaxConnections)
	ps.positive(at.Key("handshake_timeout"), l.HandshakeTimeout)
	ps.positive(at.Key("read_timeout"), l.ReadTimeout)
	ps.positive(at.Key("write_timeout"), l.WriteTimeout)
	ps.positive(at.Key("max_reader_lag"), l.MaxReaderLag)
}

func (a *AuthConfig) validate(ps *cfgProblems, at cfgPath) {
	if (a.Publish || a.Play) && a.KeyFile == "" {
		ps.add(at.Key("key_file"), "required when auth.publish or auth.play is true: point it at a file made with `head -c 32 /dev/urandom | base64 > /etc/relaymesh/auth.key`")
	}
	if a.KeyFile != "" && !filepath.IsAbs(a.KeyFile) {
		ps.add(at.Key("key_file"), "%q is not an absolute path", a.KeyFile)
	}
	ps.cidrs(at.Key("publish_allow"), a.PublishAllow)
	ps.cidrs(at.Key("play_allow"), a.PlayAllow)
	if a.LocateTokenFile != "" && !filepath.IsAbs(a.LocateTokenFile) {
		ps.add(at.Key("locate_token_file"), "%q is not an absolute path", a.LocateTokenFile)
	}
}

// validateListeners refuses two TCP listeners on the same port and host.
func (c *Config) validateListeners(ps *cfgProblems) {
	type l struct {
		at   cfgPath
		addr string
	}
	tcp := []l{{"rtmp.listen", c.RTMP.Listen}, {"http.listen", c.HTTP.Listen}, {"api.listen", c.API.Listen}}
	for i := range tcp {
		for j := 0; j < i; j++ {
			if cfgListenersClash(tcp[i].addr, tcp[j].addr) {
				ps.add(tcp[i].at, "%q uses the same TCP port as %s (%q)", tcp[i].addr, tcp[j].at, tcp[j].addr)
			}
		}
	}
}

func cfgListenersClash(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if a == "" || b == "" || err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// Shared checks, for every section.

var cfgNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (ps *cfgProblems) name(at cfgPath, s string) {
	if !cfgNameRe.MatchString(s) {
		ps.add(at, "%q must be 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit", s)
	}
}

func (ps *cfgProblems) oneOf(at cfgPath, s string, options ...string) {
	if !slices.Contains(options, s) {
		ps.add(at, "%q is not one of %s", s, strings.Join(options, ", "))
	}
}

// listen checks a host:port listen address; "" (disabled) is fine.
func (ps *cfgProblems) listen(at cfgPath, s string) bool {
	if s == "" {
		return true
	}
	host, port, err := net.SplitHostPort(s)
	bad := err != nil
	if !bad {
		n, perr := strconv.Atoi(port)
		bad = perr != nil || n < 0 || n > 65535 || port == ""
	}
	if !bad && host != "" {
		if _, aerr := netip.ParseAddr(host); aerr != nil {
			bad = !cfgHostRe.MatchString(host)
		}
	}
	if bad {
		ps.add(at, "%q is not host:port: write e.g. \":1935\" or \"127.0.0.1:1935\", or \"\" to disable", s)
	}
	return !bad
}

var cfgHostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)

// IsLoopback reports whether a host:port listen address is on loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (ps *cfgProblems) count(at cfgPath, n int) {
	if n < 0 {
		ps.add(at, "%d is negative: use 0 for unlimited", n)
	}
}

// countOrDefault is count for a key whose 0 means its default def, not
// unlimited.
func (ps *cfgProblems) countOrDefault(at cfgPath, n, def int) {
	if n < 0 {
		ps.add(at, "%d is negative: use 0 for the default (%d)", n, def)
	}
}

func (ps *cfgProblems) positive(at cfgPath, d Duration) {
	if d <= 0 {
		ps.add(at, "must be greater than 0, e.g. \"10s\"")
	}
}

func (ps *cfgProblems) passphrase(at cfgPath, s string) {
	if s != "" && (len(s) < 10 || len(s) > 79) {
		ps.add(at, "is %d bytes long: SRT passphrases have 10 to 79", len(s))
	}
}

func (ps *cfgProblems) cidrs(at cfgPath, list []string) {
	for i, e := range list {
		if _, err := netutil.ParseAllowEntry(e); err != nil {
			ps.add(at.Index(i), "%v", err)
		}
	}
}

// CheckStreamKey checks an "app/name" stream key, as the config does for
// every key it names; at names it in the error.
func CheckStreamKey(at, key string) error {
	var ps cfgProblems
	ps.streamKey(cfgPath(at), key)
	return ps.err()
}

// streamKey checks an "app/name" stream key.
func (ps *cfgProblems) streamKey(at cfgPath, s string) {
	app, name, ok := strings.Cut(s, "/")
	if !ok || app == "" || name == "" || strings.ContainsAny(s, " \t\r\n?#&|") || strings.Contains(name, "/") {
		ps.add(at, "%q is not a stream key: write \"app/name\", e.g. \"live/cam1\"", s)
	}
}

// ---------------------------------------------------------------------------
// Files the config points at

// CheckFiles checks the files the config names: the auth key
// (auth.key_file) and the API token (api.token_file) must exist, be
// readable and hold a usable secret, and node.data_dir, when set and
// present, must be a directory. `relaymesh check` and `run` call it after
// Load; it is separate so the shipped examples validate on machines without
// those files. See FileWarnings for what does not fail.
func (c *Config) CheckFiles() error {
	var ps cfgProblems
	if c.Auth.KeyFile != "" {
		if _, err := auth.LoadKey(c.Auth.KeyFile); err != nil {
			ps.add("auth.key_file", "%v", err)
		}
	}
	toks := map[string]string{}
	for _, f := range []struct{ key, path string }{{"api.token_file", c.API.TokenFile}, {"api.read_token_file", c.API.ReadTokenFile}, {"auth.locate_token_file", c.Auth.LocateTokenFile}} {
		tok, err := LoadTokenFile(f.path)
		if err != nil {
			ps.add(cfgPath(f.key), "%v", err)
		} else if tok != "" {
			if other, dup := toks[tok]; dup {
				ps.add(cfgPath(f.key), "holds the same token as %s: each token grants different rights, so they must differ", other)
			}
			toks[tok] = f.key
		}
	}
	if c.Node.DataDir != "" {
		if fi, err := os.Stat(c.Node.DataDir); err == nil && !fi.IsDir() {
			ps.add("node.data_dir", "%s is not a directory", c.Node.DataDir)
		}
	}
	c.checkClusterFiles(&ps)
	return ps.err()
}

// LoadToken reads the API bearer token from token_file: the file's content
// without surrounding whitespace, at least 16 bytes. "" when no file is set.
func (a APIConfig) LoadToken() (string, error) { return LoadTokenFile(a.TokenFile) }

// LoadTokenFile reads a bearer token file (api.token_file,
// api.read_token_file, auth.locate_token_file); "" when path is "".
func LoadTokenFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < 16 {
		return "", fmt.Errorf("%s holds %d bytes: put a token of at least 16 in it, e.g. `head -c 24 /dev/urandom | base64 > %s`", path, len(tok), path)
	}
	return tok, nil
}

// ---------------------------------------------------------------------------
// Derived values

// RunsEdge reports whether the node ingests (edge or standalone).
func (n NodeConfig) RunsEdge() bool { return n.Role == RoleEdge || n.Role == RoleStandalone }

// RunsCenter reports whether the node serves players (center or standalone).
func (n NodeConfig) RunsCenter() bool { return n.Role == RoleCenter || n.Role == RoleStandalone }

// ResolveName returns node.name, or the host name when it is empty.
func (n NodeConfig) ResolveName() string {
	if n.Name != "" {
		return n.Name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "relaymesh"
}

// ResolveDataDir returns node.data_dir, or when empty: the first entry of
// $STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/relaymesh
// when it is a writable directory, else relaymesh under os.UserCacheDir.
func (n NodeConfig) ResolveDataDir() string {
	if n.DataDir != "" {
		return n.DataDir
	}
	if s := os.Getenv("STATE_DIRECTORY"); s != "" {
		first, _, _ := strings.Cut(s, ":")
		return first
	}
	const system = "/var/lib/relaymesh"
	if fi, err := os.Stat(system); err == nil && fi.IsDir() {
		if f, err := os.CreateTemp(system, ".writable-*"); err == nil {
			name := f.Name()
			f.Close()
			os.Remove(name)
			return system
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "relaymesh")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("relaymesh-%d", os.Getuid()))
}

// SlogLevel returns node.log_level as a slog.Level (info when unknown).
func (c *Config) SlogLevel() slog.Level {
	switch c.Node.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// ---------------------------------------------------------------------------
// Diff

// Changes says what changed between two configs (Diff), for reload.
type Changes struct {
	// Sections lists the top-level keys whose values differ, in schema
	// order: "node", "rtmp", "http", "srt", "api", "limits", "auth",
	// "srt_stream", and later sections as they are added.
	Sections []string
	// Listeners lists the protocols whose listen address changed and so
	// need a new socket: "rtmp", "http", "srt", "api".
	Listeners []string
	// NeedsRestart lists the changed key paths that cannot change while
	// running (the restartRequired table). A reload with any of them is
	// refused and the old config stays in force.
	NeedsRestart []string
	// LogLevel is set when node.log_level changed.
	LogLevel bool
}

// Changed returns the changed top-level sections (Sections), for logs.
func (d Changes) Changed() []string { return d.Sections }

// Section reports whether the top-level section changed.
func (d Changes) Section(name string) bool { return slices.Contains(d.Sections, name) }

// Empty reports whether nothing changed.
func (d Changes) Empty() bool { return len(d.Sections) == 0 }

// String is a one-line summary for logs.
func (d Changes) String() string {
	if d.Empty() {
		return "no changes"
	}
	s := "changed: " + strings.Join(d.Sections, ", ")
	if len(d.Listeners) > 0 {
		s += "; listeners: " + strings.Join(d.Listeners, ", ")
	}
	if len(d.NeedsRestart) > 0 {
		s += "; needs a restart: " + strings.Join(d.NeedsRestart, ", ")
	}
	return s
}

// restartRequired is the one table of the keys a reload cannot change
// while running: a reload that changes any of them is refused with the
// keys named, and nothing of it is applied. Every other key is applied by
// the reload (agent.reload's prepare/commit steps).
var restartRequired = []struct {
	key   string
	value func(*Config) any
	// when, if set, limits the entry to configs where it matters
	// (the cluster keys only while the cluster is on); nil = always.
	when func(next *Config) bool
}{
	{"node.name", func(c *Config) any { return c.Node.Name }, nil},
	{"node.role", func(c *Config) any { return c.Node.Role }, nil},
	{"node.data_dir", func(c *Config) any { return c.Node.DataDir }, nil},
	{"hls.enabled", func(c *Config) any { return c.HLS.Enabled }, nil},
	{"webrtc.enabled", func(c *Config) any { return c.WebRTC.Enabled }, nil},
	{"webrtc.udp_listen", func(c *Config) any { return c.WebRTC.UDPListen }, nil},
	{"webrtc.additional_hosts", func(c *Config) any { return c.WebRTC.AdditionalHosts }, nil},
	{"webrtc.ice_servers", func(c *Config) any { return c.WebRTC.ICEServers }, nil},
	{"cluster.enabled", func(c *Config) any { return c.Cluster.Enabled }, nil},
	{"cluster.bind", func(c *Config) any { return c.Cluster.Bind }, clusterOn},
	{"cluster.advertise", func(c *Config) any { return c.Cluster.Advertise }, clusterOn},
	{"cluster.key_file", func(c *Config) any { return c.Cluster.KeyFile }, clusterOn},
	{"cluster.backbone_listen", func(c *Config) any { return c.Cluster.BackboneListen }, clusterOn},
	{"cluster.backbone_key_file", func(c *Config) any { return c.Cluster.BackboneKeyFile }, clusterOn},
	{"node.site", func(c *Config) any { return c.Node.Site }, clusterOn},
	{"node.region", func(c *Config) any { return c.Node.Region }, clusterOn},
	{"node.lat", func(c *Config) any { return c.Node.Lat }, clusterOn},
	{"node.lon", func(c *Config) any { return c.Node.Lon }, clusterOn},
}

func clusterOn(c *Config) bool { return c.Cluster.Enabled }

// Diff compares two configs. Sources is ignored; a nil config counts as
// the zero Config.
func Diff(old, new *Config) Changes {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var d Changes
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		key := cfgTagName(t.Field(i))
		if key == "" {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			d.Sections = append(d.Sections, key)
		}
	}
	for _, l := range []struct {
		name     string
		old, new string
	}{
		{"rtmp", old.RTMP.Listen, new.RTMP.Listen},
		{"http", old.HTTP.Listen, new.HTTP.Listen},
		{"srt", old.SRT.Listen, new.SRT.Listen},
		{"api", old.API.Listen, new.API.Listen},
	} {
		if l.old != l.new {
			d.Listeners = append(d.Listeners, l.name)
		}
	}
	for _, r := range restartRequired {
		if (r.when == nil || r.when(new)) && !reflect.DeepEqual(r.value(old), r.value(new)) {
			d.NeedsRestart = append(d.NeedsRestart, r.key)
		}
	}
	d.LogLevel = old.Node.LogLevel != new.Node.LogLevel
	return d
}
