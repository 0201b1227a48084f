package task

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relaymesh/relaymesh/flow"
	"github.com/relaymesh/relaymesh/lifecycle"
)

// MaxPlaylist is the longest playlist a task takes.
const MaxPlaylist = 30

// maxItemLen is the longest playlist item (URL or path) a task takes.
const maxItemLen = 4096

// Source is a live URL or a playlist of MP4/FLV files.
type Source struct {
	URL      string   `json:"url,omitempty"`      // rtmp://, srt:// or http(s):// (HTTP-FLV)
	Playlist []string `json:"playlist,omitempty"` // http(s) URLs or absolute local paths
}

// Destination is where the task publishes: an RTMP or SRT URL, the
// node's own ingest included.
type Destination struct {
	URL        string `json:"url"`
	Passphrase string `json:"passphrase,omitempty"`
	PBKeyLen   int    `json:"pbkeylen,omitempty"`
	LatencyMS  int    `json:"latency_ms,omitempty"`
}

// Spec is what a task is.
type Spec struct {
	ID          string      `json:"id"`
	Name        string      `json:"name,omitempty"` // shown and filtered on ("" = the id)
	Source      Source      `json:"source"`
	Loop        int         `json:"loop"` // times the playlist plays: 1 (default) .. N, or -1 forever
	Destination Destination `json:"destination"`
	Start       *time.Time  `json:"start_time,omitempty"` // starts by itself then; none: on the start action
	End         *time.Time  `json:"end_time,omitempty"`   // ends (Finished) then
	Callback    string      `json:"callback,omitempty"`   // webhook URL
}

// Key is the hub stream a task publishes before pushing it to a remote
// destination.
func (s *Spec) Key() string { return "task/" + s.ID }

// Normalize fills defaults.
func (s *Spec) Normalize() {
	if s.Loop == 0 {
		s.Loop = 1
	}
	if s.Name == "" {
		s.Name = s.ID
	}
}

// MaxName is the longest task name, in bytes.
const MaxName = 128

// Validate checks a normalized spec. now is the time of the call (end
// times must lie after it).
func (s *Spec) Validate(now time.Time) error {
	if err := flow.CheckID("id", s.ID); err != nil {
		return err
	}
	if len(s.Name) > MaxName {
		return lifecycle.Invalidf("name", "is %d bytes long: at most %d", len(s.Name), MaxName)
	}
	if strings.ContainsFunc(s.Name, unicode.IsControl) || !utf8.ValidString(s.Name) {
		return lifecycle.Invalidf("name", "%q holds control characters or is not UTF-8", s.Name)
	}
	switch {
	case s.Source.URL != "" && len(s.Source.Playlist) > 0:
		return lifecycle.Invalidf("source", "set either url (a live source) or playlist (files), not both")
	case s.Source.URL != "":
		if err := flow.CheckTarget("source.url", s.Source.URL, "read", "rtmp", "rtmps", "srt", "http", "https"); err != nil {
			return err
		}
		if s.Loop != 1 {
			return lifecycle.Invalidf("loop", "%d: loop counts apply to playlists; a live source (url) plays once: remove loop", s.Loop)
		}
	case len(s.Source.Playlist) == 0:
		return lifecycle.Invalidf("source", "required: set url (a live rtmp, srt or http-flv URL) or playlist (up to %d MP4/FLV files)", MaxPlaylist)
	case len(s.Source.Playlist) > MaxPlaylist:
		return lifecycle.Invalidf("source.playlist", "%d items is more than %d", len(s.Source.Playlist), MaxPlaylist)
	}
	for i, p := range s.Source.Playlist {
		at := fmt.Sprintf("source.playlist[%d]", i)
		if strings.Contains(p, "://") {
			if err := flow.CheckURL(at, p, "http", "https"); err != nil {
				return err
			}
		} else if !filepath.IsAbs(p) {
			return lifecycle.Invalidf(at, "%q is neither an http(s) URL nor an absolute path", p)
		}
		if ext := urlExt(p); ext != ".mp4" && ext != ".m4v" && ext != ".mov" && ext != ".flv" {
			// the URL's path decides, never a query or fragment ("…/metrics#.mp4")
			return lifecycle.Invalidf(at, "%q is not an .mp4, .m4v, .mov or .flv file (by the extension of its path)", p)
		}
		if len(p) > maxItemLen {
			return lifecycle.Invalidf(at, "is %d bytes long, more than %d", len(p), maxItemLen)
		}
	}
	if s.Loop < -1 {
		return lifecycle.Invalidf("loop", "%d: write a count of 1 or more, or -1 to loop forever", s.Loop)
	}
	if err := flow.CheckTarget("destination.url", s.Destination.URL, "publish", "rtmp", "rtmps", "srt"); err != nil {
		return err
	}
	if err := flow.CheckSRTTarget("destination.", s.Destination.URL, s.Destination.LatencyMS, s.Destination.Passphrase, s.Destination.PBKeyLen); err != nil {
		return err
	}
	if p := s.Destination.Passphrase; p != "" && (len(p) < 10 || len(p) > 79) {
		return lifecycle.Invalidf("destination.passphrase", "is %d bytes long: SRT passphrases have 10 to 79", len(p))
	}
	if k := s.Destination.PBKeyLen; k != 0 && k != 16 && k != 24 && k != 32 {
		return lifecycle.Invalidf("destination.pbkeylen", "%d is not 16, 24 or 32", k)
	}
	if err := lifecycle.CheckWindow(s.Start, s.End, now); err != nil {
		return err
	}
	if s.Callback != "" {
		if err := flow.CheckURL("callback", s.Callback, "http", "https"); err != nil {
			return err
		}
	}
	return nil
}

// Changed returns the edit parts that differ between two specs.
func Changed(a, b *Spec) []lifecycle.Part {
	var out []lifecycle.Part
	if a.Name != b.Name {
		out = append(out, lifecycle.PartName)
	}
	if !lifecycle.SameTime(a.Start, b.Start) || !lifecycle.SameTime(a.End, b.End) {
		out = append(out, lifecycle.PartWindow)
	}
	if a.Callback != b.Callback {
		out = append(out, lifecycle.PartCallback)
	}
	if a.Source.URL != b.Source.URL || strings.Join(a.Source.Playlist, "\n") != strings.Join(b.Source.Playlist, "\n") || a.Loop != b.Loop {
		out = append(out, lifecycle.PartSource)
	}
	if a.Destination != b.Destination {
		out = append(out, lifecycle.PartTarget)
	}
	return out
}

func isRemote(p string) bool {
	u, err := url.Parse(p)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// Filter selects tasks for GET /v1/tasks: each set field must equal the
// task's (id, name, destination URL).
type Filter struct {
	ID, Name, Destination string
}

// FilterKeys are the query parameters ParseFilter takes.
var FilterKeys = []string{"id", "name", "destination"}

// ParseFilter reads a Filter from query parameters; an unknown parameter
// is refused (rather than ignored and everything listed).
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, v := range q {
		if len(v) != 1 {
			return f, lifecycle.Invalidf(k, "given %d times: give it once", len(v))
		}
		switch k {
		case "id":
			f.ID = v[0]
		case "name":
			f.Name = v[0]
		case "destination":
			f.Destination = v[0]
		default:
			return f, lifecycle.Invalidf(k, "tasks are filtered by %s, not %q", strings.Join(FilterKeys, ", "), k)
		}
	}
	return f, nil
}

// Match reports whether a task passes the filter.
func (f Filter) Match(v *View) bool {
	return (f.ID == "" || v.ID == f.ID) && (f.Name == "" || v.Name == f.Name) &&
		(f.Destination == "" || v.Destination.URL == f.Destination)
}
